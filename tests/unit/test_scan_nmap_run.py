"""`pps scan --nmap`: the port list reaches nmap intact (-p- included); option-like input does not.

A stand-in `nmap` on PATH records its argv and prints a small XML document, so these tests check
exactly what we hand to nmap. The real nmap runs in tests/lab/test_scan_service.py.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ppsguard.cli.app import app
from ppsguard.errors import UsageError
from ppsguard.scan.nmap_import import run_nmap

_XML = """<?xml version="1.0"?>
<nmaprun scanner="nmap" args="nmap" start="1767225600" version="7.93">
<host><status state="up" reason="user-set"/>
<address addr="198.18.0.2" addrtype="ipv4"/>
<ports><extraports state="closed" count="65534"/>
<port protocol="tcp" portid="22"><state state="open" reason="syn-ack"/>
<service name="ssh" product="OpenSSH" version="9.2p1" method="probed" conf="10"/></port>
</ports></host>
<runstats><finished time="1767225601" elapsed="1.00"/></runstats>
</nmaprun>
"""


@pytest.fixture
def fake_nmap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in nmap that records argv (one per line) in the returned file."""
    record = tmp_path / "argv.txt"
    (tmp_path / "reply.xml").write_text(_XML, "utf-8")
    script = tmp_path / "nmap"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys, pathlib\n"
        f"pathlib.Path({str(record)!r}).write_text('\\n'.join(sys.argv[1:]))\n"
        f"sys.stdout.write(pathlib.Path({str(tmp_path / 'reply.xml')!r}).read_text())\n",
        "utf-8",
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    return record


@pytest.mark.parametrize(
    ("ports", "expected"),
    [
        ("-", "-p-"),
        ("22,80", "-p22,80"),
        ("1-1024, 8080", "-p1-1024,8080"),
        ("T:22,U:53", "-pT:22,U:53"),
    ],
)
def test_port_list_reaches_nmap(fake_nmap: Path, ports: str, expected: str) -> None:
    result = run_nmap(["198.18.0.2"], ports)
    argv = fake_nmap.read_text("utf-8").splitlines()
    assert expected in argv
    assert argv[-1] == "198.18.0.2"
    [host] = result.hosts
    assert [p.port for p in host.ports] == [22]
    assert host.summary.get("closed") == 65534


@pytest.mark.parametrize("ports", ["-sS", "--script=x", "-oN/tmp/x", "22;id", "", "70000"])
def test_option_like_or_bad_port_list_is_refused(fake_nmap: Path, ports: str) -> None:
    with pytest.raises(UsageError):
        run_nmap(["198.18.0.2"], ports)
    assert not fake_nmap.exists()  # nmap never ran


@pytest.mark.parametrize("target", ["-iL/etc/passwd", "--script=x", ""])
def test_option_like_target_is_refused(fake_nmap: Path, target: str) -> None:
    with pytest.raises(UsageError):
        run_nmap([target], None)
    assert not fake_nmap.exists()


def test_cli_nmap_all_ports(fake_nmap: Path) -> None:
    result = CliRunner().invoke(app, ["scan", "--nmap", "-p-", "--json", "198.18.0.2"])
    assert result.exit_code == 0, result.output
    assert "-p-" in fake_nmap.read_text("utf-8").splitlines()
    doc = json.loads(result.stdout)
    assert [p["port"] for p in doc["hosts"][0]["ports"]] == [22]
    assert doc["hosts"][0]["ports"][0]["service"]["product"] == "OpenSSH"
