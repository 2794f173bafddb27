"""The scope gate against real lab hosts: the real nmap honours --scope, --exclude, -T and
--max-rate, a dry run sends nothing, and the audit's outside view scans only inside --scope.

Packet counters in each target's own nftables table prove what reached it (and what did not).
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from ppsguard.audit import audit_machine
from ppsguard.lab.hosts import Host

pytestmark = pytest.mark.lab

COUNTER = """
table inet gatecount {
  chain input {
    type filter hook input priority -10; policy accept;
    tcp dport 80 counter
  }
}
"""


def _counted(host: Host) -> int:
    """TCP packets to port 80 that reached `host` so far."""
    listing = json.loads(host.run(["nft", "-j", "list", "table", "inet", "gatecount"]).stdout)
    for item in listing["nftables"]:
        for expression in item.get("rule", {}).get("expr", []):
            if "counter" in expression:
                return int(expression["counter"]["packets"])
    raise AssertionError("no counter in the gatecount table")


def _pps(host: Host, *args: str) -> Any:
    return host.run([sys.executable, "-m", "ppsguard", *args], timeout=300, check=False)


@pytest.fixture
def three(lab_factory: Any, tmp_path: Path) -> tuple[Host, Host, Host, Path]:
    lab = lab_factory(["inside", "other", "scanner"])
    inside, other, scanner = lab["inside"], lab["other"], lab["scanner"]
    for host in (inside, other):
        host.listen(80)
        host.nft(COUNTER)
    scope = tmp_path / "scope.txt"
    scope.write_text(f"# the one host we may scan\n{inside.ipv4}/32\n", "utf-8")
    return inside, other, scanner, scope


def test_real_nmap_honours_scope_exclude_timing_and_rate(
    three: tuple[Host, Host, Host, Path], tmp_path: Path
) -> None:
    if shutil.which("nmap") is None:
        pytest.skip("nmap is not installed (make test installs it)")
    inside, other, scanner, scope = three
    # outside the scope: refused before nmap runs, nothing reaches the other host
    refused = _pps(scanner, "scan", "--nmap", "--scope", str(scope), "-p", "80", str(other.ipv4))
    assert refused.returncode == 2, refused.stderr
    assert "--scope" in refused.stderr and str(other.ipv4) in refused.stderr
    # a dry run shows the nmap command and sends nothing either
    dry = _pps(scanner, "scan", "--nmap", "--dry-run", "-p", "80", str(inside.ipv4))
    assert dry.returncode == 0, dry.stderr
    assert "would run: " in dry.stdout and f" {inside.ipv4}" in dry.stdout  # the plan: stdout
    assert _counted(inside) == 0 and _counted(other) == 0
    # --exclude: nmap gets the admitted set only, and the exclusion on its own command line
    xml = tmp_path / "nmap.xml"
    done = _pps(
        scanner, "scan", "--nmap", "--json", "-oX", str(xml), "-T4", "--max-rate", "200",
        "--exclude", str(other.ipv4), "-Pn", "-p", "80", str(inside.ipv4), str(other.ipv4),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert [h["address"] for h in doc["hosts"]] == [str(inside.ipv4)]
    assert [p["port"] for p in doc["hosts"][0]["ports"]] == [80]
    args = ET.parse(xml).getroot().get("args", "")
    assert "-T4" in args and "--max-rate 200" in args and f"--exclude {other.ipv4}" in args
    assert _counted(inside) > 0 and _counted(other) == 0


def test_own_engine_dry_run_and_exclude_send_nothing_to_the_excluded(
    three: tuple[Host, Host, Host, Path],
) -> None:
    inside, other, scanner, scope = three
    low, high = sorted(ipaddress.ip_address(h.ipv4) for h in (inside, other))
    wide = f"{low}-{high}"  # the scanned host and the other, and whatever lies between
    refused = _pps(scanner, "scan", "--connect", "--scope", str(scope), "-p", "80", wide)
    dry = _pps(scanner, "scan", "--connect", "--dry-run", "--scope", str(scope), "-p", "80", wide)
    assert refused.returncode == dry.returncode == 2 and refused.stderr == dry.stderr
    done = _pps(
        scanner, "scan", "--connect", "-sV", "--json", "--exclude", str(other.ipv4), "-p", "80",
        str(inside.ipv4), str(other.ipv4),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [h["address"] for h in json.loads(done.stdout)["hosts"]] == [str(inside.ipv4)]
    assert _counted(inside) > 0 and _counted(other) == 0


def test_audit_outside_view_scans_only_inside_scope(three: tuple[Host, Host, Host, Path]) -> None:
    inside, _other, scanner, _scope = three
    only_v4 = [ipaddress.ip_network(f"{inside.ipv4}/32")]
    report = audit_machine(
        None, netns=inside.netns, scan=True, scan_from=scanner.netns, scope=only_v4
    ).report
    assert any(
        "outside the --scope allow-list" in gap and str(inside.ipv6) in gap for gap in report.gaps
    ), report.gaps
    reached = {d.port for d in report.doors if d.reachable}
    assert 80 in reached  # the IPv4 address was scanned
    assert _counted(inside) > 0
