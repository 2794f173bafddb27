"""`pps audit` and `pps registry init` on this machine: exit codes, bad input, files, nmap import.

These read the local socket inventory (real, whatever this machine runs), so they assert the
shape of what comes out, not its content; the lab tests assert content.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ppsguard.audit import baseline_for, evaluate
from ppsguard.audit.views import Observations, Vantage, outside_from_scan
from ppsguard.registry.load import parse_registry
from ppsguard.scan.nmap_import import load_nmap_xml

NMAP_XML = """<?xml version="1.0"?>
<nmaprun scanner="nmap" args="nmap -sV 198.18.0.9" start="1780000000" version="7.93">
<scaninfo type="syn" protocol="tcp" numservices="3" services="22,23,3306"/>
<host><status state="up" reason="echo-reply"/>
<address addr="198.18.0.9" addrtype="ipv4"/>
<ports>
<port protocol="tcp" portid="22"><state state="open" reason="syn-ack"/>
<service name="ssh" product="OpenSSH" method="probed" conf="10"/></port>
<port protocol="tcp" portid="23"><state state="open" reason="syn-ack"/>
<service name="telnet" method="probed" conf="10"/></port>
<port protocol="tcp" portid="3306"><state state="open" reason="syn-ack"/>
<service name="mysql" method="probed" conf="10"/></port>
</ports></host>
<runstats><finished time="1780000010" elapsed="10.0"/></runstats>
</nmaprun>
"""
REGISTRY = """
version: 1
hosts:
  web:
    addresses: [198.18.0.9]
    denies: [{id: mysql, service: mysql}]
    provides:
      - {id: ssh, port: 22/tcp, from: anywhere}
      - {id: http, port: 80/tcp, from: anywhere}
"""


def pps(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ppsguard", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def test_nmap_file_as_the_only_view() -> None:
    view = outside_from_scan(load_nmap_xml(NMAP_XML, "web.xml"), Vantage.NMAP)
    baseline, _ = baseline_for(parse_registry(REGISTRY, "r.yaml"), "web")
    obs = Observations("web", dt.datetime(2026, 6, 1, tzinfo=dt.UTC), None, view)
    report = evaluate(obs, baseline, registry_file="r.yaml", host="web", netns=None)
    found = {(f.type.value, f.port) for f in report.findings}
    assert found == {
        ("reachable-undocumented", 23),
        ("risky-service", 23),
        ("firewall-not-enforcing", 3306),
    }  # 80 was not probed by this nmap run, so it says nothing about http
    assert {d.port for d in report.doors} == {22, 23, 3306}


def test_audit_json_and_reports(tmp_path: Path) -> None:
    out = pps(
        "audit",
        "--no-scan",
        "--fail-on",
        "critical",
        "--json",
        "--html",
        str(tmp_path / "a.html"),
        "--markdown",
        str(tmp_path / "a.md"),
        "--csv",
        str(tmp_path / "a.csv"),
    )
    assert out.returncode in (0, 1), out.stderr
    document = json.loads(out.stdout)
    assert {"host", "observed_at", "findings", "summary"} <= set(document)
    assert document["summary"]["fail_on"] == "critical"
    assert (tmp_path / "a.html").read_text().startswith("<!DOCTYPE html>")
    assert "# ppsguard audit" in (tmp_path / "a.md").read_text()
    assert (tmp_path / "a.csv").read_text().startswith("direction,boundary crossing,source")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--fail-on", "loud"], "loud"),
        (["no-such-registry.yaml"], "no-such-registry.yaml"),
        (["--netns", "ppsguard-no-such-namespace"], "ppsguard-no-such-namespace"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], needle: str) -> None:
    out = pps("audit", "--no-scan", *args)
    assert out.returncode == 2, out.stderr
    assert needle in out.stderr and "Traceback" not in out.stderr


def test_bad_registry_names_file_line_column(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\nhosts:\n  web:\n    provides:\n      - {port: 99999/tcp, from: anywhere}\n"
    )
    out = pps("audit", str(bad), "--no-scan")
    assert out.returncode == 2
    assert f"{bad}:5:" in out.stderr and "Traceback" not in out.stderr


# Run as root, init and audit see a private network namespace holding one listener of the test's
# own, so listeners that other programs open and close meanwhile cannot change the draft's truth.
_ALONE = """
import json, socket, subprocess, sys
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
door = socket.create_server(("127.0.0.1", 0))
runs = [subprocess.run([sys.executable, "-m", "ppsguard", *args], capture_output=True,
                       text=True, timeout=120) for args in json.loads(sys.argv[1])]
print(json.dumps([[r.returncode, r.stdout, r.stderr] for r in runs]))
print(door.getsockname()[1])
"""


def _alone(*commands: list[str]) -> tuple[list[subprocess.CompletedProcess[str]], int | None]:
    """Run pps commands one after the other, in a network namespace of their own when root
    (with the port of the one listener there)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return [pps(*command) for command in commands], None
    run = subprocess.run(
        ["unshare", "--net", sys.executable, "-c", _ALONE, json.dumps(commands)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    results, port = run.stdout.splitlines()
    return [
        subprocess.CompletedProcess(command, code, out, err)
        for (code, out, err), command in zip(json.loads(results), commands, strict=True)
    ], int(port)


def test_registry_init_writes_a_loadable_draft_and_refuses_to_overwrite(tmp_path: Path) -> None:
    draft = tmp_path / "draft.yaml"
    (made, again, audited), port = _alone(
        ["registry", "init", "--host", "this-machine", "-o", str(draft)],
        ["registry", "init", "-o", str(draft)],
        ["audit", str(draft), "--no-scan", "--json"],
    )
    assert made.returncode == 0, made.stderr
    text = draft.read_text()
    assert "this-machine:" in text and "default: deny" in text
    parse_registry(text, str(draft))
    assert port is None or f"{port}/tcp" in text, text
    assert again.returncode == 2 and "--force" in again.stderr
    types = {f["type"] for f in json.loads(audited.stdout)["findings"]}
    assert "unregistered-listener" not in types


def test_help_explains_the_finding_types() -> None:
    out = pps("audit", "--help")
    assert out.returncode == 0
    for word in ("unregistered-listener", "firewall-not-enforcing", "--fail-on", "--from-nmap"):
        assert word in out.stdout


def test_audit_of_another_machine_from_its_nmap_file(tmp_path: Path) -> None:
    registry = tmp_path / "r.yaml"
    registry.write_text(REGISTRY)
    scan = tmp_path / "web.xml"
    scan.write_text(NMAP_XML)
    out = pps("audit", str(registry), "--from-nmap", str(scan), "--json")
    assert out.returncode == 1, out.stderr
    document = json.loads(out.stdout)
    found = {(f["type"], f["port"]) for f in document["findings"]}
    assert found == {
        ("reachable-undocumented", 23),
        ("risky-service", 23),
        ("firewall-not-enforcing", 3306),
    }
    assert any("not this machine" in gap for gap in document["summary"]["gaps"])
    hostile = tmp_path / "hostile.xml"
    hostile.write_text(
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><nmaprun>&a;</nmaprun>'
    )
    refused = pps("audit", "--from-nmap", str(hostile))
    assert refused.returncode == 2 and "hostile.xml" in refused.stderr
