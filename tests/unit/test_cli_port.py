"""`pps port` end to end, in a real subprocess: JSON and cards on stdout, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from ppsguard.knowledge.ranges import host_ephemeral_range
from ppsguard.testing.pytest_plugin import LabFactory


def pps(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ppsguard", "port", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def pps_json(*args: str) -> list[dict[str, Any]]:
    done = pps(*args, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert isinstance(result, list)
    for match in result:
        assert list(match) == ["port", "protocol", "range", "ephemeral", "services", "risks"]
        for risk in match["risks"]:
            assert list(risk) == ["id", "severity", "reason", "remedy"]
    return result


def test_port_25() -> None:
    (match,) = pps_json("25")
    assert match["port"] == 25 and match["protocol"] == "tcp" and match["range"] == "system"
    assert match["ephemeral"] is False
    assert match["services"][0] == "smtp"


def test_port_telnet() -> None:
    (match,) = pps_json("telnet")
    assert (match["port"], match["protocol"], match["range"]) == (23, "tcp", "system")
    assert match["services"][0] == "telnet"
    (risk,) = match["risks"]
    assert risk["id"] == "cleartext-telnet" and risk["severity"] == "high"
    assert "SSH" in risk["remedy"]


def test_port_50000_is_dynamic_and_ephemeral_on_linux_default() -> None:
    matches = pps_json("50000")
    assert [(m["port"], m["protocol"]) for m in matches] == [(50000, "tcp"), (50000, "udp")]
    for match in matches:
        assert match["range"] == "dynamic"
        assert match["ephemeral"] is (50000 in host_ephemeral_range())
        assert match["risks"] == []


def test_port_6443() -> None:
    (match,) = pps_json("6443")
    assert (match["port"], match["protocol"], match["range"]) == (6443, "tcp", "registered")
    assert match["ephemeral"] is False
    assert match["services"][0] == "kubernetes-api"
    assert [r["id"] for r in match["risks"]] == ["exposed-kubernetes-api"]


def test_port_by_name_returns_all_ports() -> None:
    assert [(m["port"], m["protocol"]) for m in pps_json("mysql")] == [(3306, "tcp"), (3306, "udp")]
    assert [(m["port"], m["protocol"]) for m in pps_json("53/udp")] == [(53, "udp")]


def test_human_card_goes_to_stdout() -> None:
    done = pps("3306", "--json")
    assert done.stderr == ""
    done = pps("3306")
    assert done.returncode == 0
    assert done.stderr == ""
    for text in ("3306/tcp", "registered", "1024-49151", "mysql", "exposed-database-mysql", "fix:"):
        assert text in done.stdout
    assert not set("┃│─╭╰━") & set(done.stdout)  # piped: no box drawing


def test_unassigned_card() -> None:
    done = pps("1337")
    assert done.returncode == 0
    assert "unassigned" in done.stdout and "1337/udp" in done.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("nosuchservice",), "nosuchservice"),
        (("nosuchservice", "--json"), "nosuchservice"),
        (("mysq",), "did you mean 'mysql'"),
        (("70000",), "70000"),
        (("23/xyz",), "23/xyz"),
        (("x" * 300,), "too long"),
    ],
)
def test_bad_queries_exit_2_with_one_line(args: tuple[str, ...], needle: str) -> None:
    done = pps(*args)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert needle in lines[0] and "Traceback" not in done.stderr


def test_help() -> None:
    done = pps("--help")
    assert done.returncode == 0
    assert "PORT/PROTO" in done.stdout and "--json" in done.stdout


@pytest.mark.lab
def test_ephemeral_follows_the_network_namespace(lab_factory: LabFactory) -> None:
    """A real namespace with its own ip_local_port_range: `pps port` run inside it reads that."""
    host = lab_factory(["a"])["a"]
    host.run(["sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=40000 45000"])
    assert host.run(["cat", "/proc/sys/net/ipv4/ip_local_port_range"]).stdout.split() == [
        "40000",
        "45000",
    ]
    for port, expected in (("50000", False), ("42000", True), ("40000", True), ("45001", False)):
        done = host.run([sys.executable, "-m", "ppsguard", "port", f"{port}/tcp", "--json"])
        (match,) = json.loads(done.stdout)
        assert match["ephemeral"] is expected, (port, match)
    done = host.run([sys.executable, "-m", "ppsguard", "port", "42000/udp"])
    assert "in this host's 40000-45000" in done.stdout
