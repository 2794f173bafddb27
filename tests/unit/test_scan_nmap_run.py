"""`pps scan --nmap`: the port list reaches nmap intact (-p- included); option-like input does not;
nmap passes the scope gate like our own engines (scope, exclude, -T, --max-rate, --dry-run).

A stand-in `nmap` on PATH records its argv and prints a small XML document, so these tests check
exactly what we hand to nmap — and that on a dry run or a scope refusal it never ran. The real
nmap runs in tests/lab/test_scan_service.py and tests/lab/test_scan_gate.py.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ppsguard.cli.app import app, main
from ppsguard.errors import UsageError
from ppsguard.model.scan import ScanResult
from ppsguard.scan.engine import ScanOptions, run_sync
from ppsguard.scan.nmap_run import run_nmap
from ppsguard.scan.plan import plan_scan


def _nmap(targets: list[str], ports: str | None, **options: object) -> ScanResult:
    opts = ScanOptions(engine="connect", **options)  # type: ignore[arg-type]
    plan = run_sync(plan_scan(targets, ports, options=opts, engine="nmap"))
    return run_nmap(plan, opts, ports)


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
    result = _nmap(["198.18.0.2"], ports)
    argv = fake_nmap.read_text("utf-8").splitlines()
    assert expected in argv
    assert argv[-1] == "198.18.0.2"
    [host] = result.hosts
    assert [p.port for p in host.ports] == [22]
    assert host.summary.get("closed") == 65534


@pytest.mark.parametrize("ports", ["-sS", "--script=x", "-oN/tmp/x", "22;id", "", "70000"])
def test_option_like_or_bad_port_list_is_refused(fake_nmap: Path, ports: str) -> None:
    with pytest.raises(UsageError):
        _nmap(["198.18.0.2"], ports)
    assert not fake_nmap.exists()  # nmap never ran


@pytest.mark.parametrize("target", ["-iL/etc/passwd", "--script=x", ""])
def test_option_like_target_is_refused(fake_nmap: Path, target: str) -> None:
    with pytest.raises(UsageError):
        _nmap([target], None)
    assert not fake_nmap.exists()


def test_cli_nmap_all_ports(fake_nmap: Path) -> None:
    result = CliRunner().invoke(app, ["scan", "--nmap", "-p-", "--json", "198.18.0.2"])
    assert result.exit_code == 0, result.output
    assert "-p-" in fake_nmap.read_text("utf-8").splitlines()
    doc = json.loads(result.stdout)
    assert [p["port"] for p in doc["hosts"][0]["ports"]] == [22]
    assert doc["hosts"][0]["ports"][0]["service"]["product"] == "OpenSSH"


def _argv(record: Path) -> list[str]:
    return record.read_text("utf-8").splitlines()


def test_dry_run_never_runs_nmap_and_shows_its_command(fake_nmap: Path) -> None:
    result = CliRunner().invoke(
        app, ["scan", "--nmap", "--dry-run", "-T2", "-p", "22", "198.18.0.0/30"]
    )
    assert result.exit_code == 0, result.output
    assert not fake_nmap.exists()  # nmap never ran
    assert "up to 4 probes" in result.output
    [command] = [line for line in result.output.splitlines() if line.startswith("would run: ")]
    assert command.endswith(" -sV -oX - -p22 -T2 --max-rate 100 198.18.0.0/30")


def test_dry_run_gate_refuses_to_start_nmap(fake_nmap: Path) -> None:
    """Even handed a dry-run plan directly, run_nmap sends nothing."""
    with pytest.raises(UsageError, match="dry run"):
        _nmap(["198.18.0.2"], "22", dry_run=True)
    assert not fake_nmap.exists()


@pytest.mark.parametrize("dry_run", [False, True])
def test_scope_violation_is_refused_before_nmap_runs(
    fake_nmap: Path, tmp_path: Path, dry_run: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    scope = tmp_path / "scope.txt"
    scope.write_text("198.18.0.0/25\n198.18.1.0/24\n", "utf-8")
    # both ends inside the scope, the middle (198.18.0.128-255) outside
    args = ["scan", "--nmap", "--scope", str(scope), "-p", "22", "198.18.0.0-198.18.1.255"]
    assert main(args + (["--dry-run"] if dry_run else [])) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "--scope" in line and "198.18.0.128" in line
    assert not fake_nmap.exists()


def test_nmap_gets_exclude_timing_rate_and_only_admitted_targets(
    fake_nmap: Path, tmp_path: Path
) -> None:
    scope = tmp_path / "scope.txt"
    scope.write_text("198.18.0.0/24\n", "utf-8")
    result = CliRunner().invoke(
        app,
        [
            "scan", "--nmap", "--json", "--scope", str(scope), "--exclude", "198.18.0.5",
            "-T4", "--max-rate", "250", "--max-retries", "1", "-Pn", "-p", "22",
            "198.18.0.0/29", "198.18.0.2",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    argv = _argv(fake_nmap)
    assert argv[argv.index("--exclude") + 1] == "198.18.0.5"
    assert "-T4" in argv and argv[argv.index("--max-rate") + 1] == "250"
    assert argv[argv.index("--max-retries") + 1] == "1" and "-Pn" in argv
    # the admitted set, duplicates and the excluded address removed, as CIDR blocks
    assert argv[-3:] == ["198.18.0.0/30", "198.18.0.4", "198.18.0.6/31"]


def test_nmap_gets_the_default_remote_rate_and_one_run_per_family(fake_nmap: Path) -> None:
    from ppsguard.scan.nmap_run import nmap_argv

    plan = run_sync(plan_scan(["2001:db8::2", "198.18.0.9"], "22", options=ScanOptions()))
    assert plan.max_rate is None  # the lab's ranges count as local
    commands = nmap_argv(plan, ScanOptions(), "22")
    assert [c[-1] for c in commands] == ["198.18.0.9", "2001:db8::2"]
    assert "-6" not in commands[0] and "-6" in commands[1]
    # planned only, never sent: 240.0.0.0/4 is reserved and unroutable, and not local
    remote = run_sync(plan_scan(["240.0.0.1"], "22", options=ScanOptions()))
    assert nmap_argv(remote, ScanOptions(), "22")[0][-3:-1] == ["--max-rate", "5000"]


def test_a_long_scattered_target_list_goes_to_nmap_on_stdin(
    fake_nmap: Path, tmp_path: Path
) -> None:
    """Thousands of scattered addresses would overflow the command line: nmap reads them (-iL -)."""
    stdin_copy = tmp_path / "stdin.txt"
    script = tmp_path / "nmap"
    script.write_text(
        script.read_text("utf-8").replace(
            "import sys, pathlib\n",
            "import sys, pathlib\n"
            f"pathlib.Path({str(stdin_copy)!r}).write_text(sys.stdin.read())\n",
        ),
        "utf-8",
    )
    targets = [f"198.18.{i // 128}.{(i % 128) * 2}" for i in range(6000)]  # no two adjacent
    _nmap(targets, "22")
    argv = _argv(fake_nmap)
    assert argv[-2:] == ["-iL", "-"]
    assert not any(a.startswith("198.18.") for a in argv)
    assert stdin_copy.read_text("utf-8").splitlines() == targets


def test_a_short_target_list_stays_on_the_command_line(fake_nmap: Path, tmp_path: Path) -> None:
    _nmap(["198.18.0.2", "198.18.0.9"], "22")
    argv = _argv(fake_nmap)
    assert "-iL" not in argv and argv[-2:] == ["198.18.0.2", "198.18.0.9"]
