"""Golden files per renderer and per example registry; each checked by the tool that loads it.

Update with PPSGUARD_UPDATE_GOLDEN=1. Every nftables golden file must pass `nft -c`; every
iptables file `iptables-restore --test` / `ip6tables-restore --test` (run inside a scratch
network namespace so nothing touches the host).
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from ppsguard.firewall.render import renderer
from ppsguard.model.net import PortRange, Protocol
from ppsguard.model.registry import (
    ANY_SOURCES,
    Action,
    EntryKind,
    HostPolicy,
    Rule,
    SourceLocation,
)
from ppsguard.policy.compile import compile_host_policy
from ppsguard.registry.load import load_registry

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
UPDATE = os.environ.get("PPSGUARD_UPDATE_GOLDEN") == "1"
AT = SourceLocation("mixed.yaml", 1, 1)


def _rule(
    entry_id: str,
    action: Action,
    protocol: Protocol,
    ports: list[tuple[int, int]],
    sources: tuple = ANY_SOURCES,
    destinations: tuple = ANY_SOURCES,
    log: bool = False,
) -> Rule:
    return Rule(
        entry_id,
        EntryKind.PROVIDES,
        action,
        log,
        protocol,
        tuple(PortRange(a, b) for a, b in ports),
        sources,
        destinations,
        AT,
    )


def mixed_policy() -> HostPolicy:
    """A policy touching every feature: v4+v6, tcp/udp/sctp, ranges, reject, log, destinations."""
    net = ipaddress.ip_network
    return HostPolicy(
        host="mixed",
        addresses=(),
        rules=(
            _rule("deny-telnet", Action.REJECT, Protocol.TCP, [(23, 23)], log=True),
            _rule("dns-reject", Action.REJECT, Protocol.UDP, [(53, 53)]),
            _rule(
                "admin-ssh",
                Action.ALLOW,
                Protocol.TCP,
                [(22, 22)],
                sources=(net("198.18.0.0/28"), net("2001:db8::/120")),
            ),
            _rule("range", Action.ALLOW, Protocol.TCP, [(8000, 8100), (9000, 9000)], log=True),
            _rule("overlap", Action.DENY, Protocol.TCP, [(8050, 8200)]),
            _rule(
                "syslog-v6",
                Action.ALLOW,
                Protocol.UDP,
                [(514, 514)],
                sources=(net("2001:db8::/64"),),
            ),
            _rule(
                "bound",
                Action.ALLOW,
                Protocol.TCP,
                [(443, 443)],
                destinations=(net("198.18.0.1/32"),),
            ),
            _rule("sctp", Action.REJECT, Protocol.SCTP, [(2905, 2905)]),
            _rule("nothing", Action.ALLOW, Protocol.TCP, [(7, 7)], sources=()),
        ),
        outbound=(),
        default_action=Action.REJECT,
        default_log=True,
        default_location=None,
    )


def cases() -> list[tuple[str, HostPolicy]]:
    out = [("mixed", mixed_policy())]
    for path in EXAMPLES:
        registry = load_registry(path)
        for host in registry.hosts:
            name = path.stem if len(registry.hosts) == 1 else f"{path.stem}-{host.name}"
            out.append((name, compile_host_policy(registry, host.name)))
    return out


CASES = cases()


def _check_golden(path: Path, text: str) -> None:
    if UPDATE or not path.exists():
        if not UPDATE:
            pytest.fail(f"missing golden file {path}; run with PPSGUARD_UPDATE_GOLDEN=1")
        path.write_text(text)
    assert text == path.read_text()


@pytest.mark.parametrize(("name", "policy"), CASES, ids=[c[0] for c in CASES])
def test_nftables_golden(name: str, policy: HostPolicy) -> None:
    rendered = renderer("nftables").render(policy)
    assert len(rendered.files) == 1
    _check_golden(GOLDEN / "nftables" / f"{name}.nft", rendered.files[0].text)


@pytest.mark.parametrize(("name", "policy"), CASES, ids=[c[0] for c in CASES])
def test_iptables_golden(name: str, policy: HostPolicy) -> None:
    rendered = renderer("iptables").render(policy)
    for item in rendered.files:
        _check_golden(GOLDEN / "iptables" / f"{name}.{item.suffix}.rules", item.text)


def _root_tools(*tools: str) -> None:
    if os.geteuid() != 0 or any(shutil.which(t) is None for t in tools):
        pytest.skip(f"needs root and {', '.join(tools)}")


@pytest.mark.parametrize("path", sorted((GOLDEN / "nftables").glob("*.nft")), ids=lambda p: p.name)
def test_every_nftables_golden_passes_nft_check(path: Path) -> None:
    _root_tools("nft")
    text = path.read_text()
    assert text.splitlines()[2:4] == ["table inet ppsguard {}", "delete table inet ppsguard"]
    done = subprocess.run(
        ["nft", "-c", "-f", "-"],  # the compiled file alone, as a user loads it
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def scratch_netns() -> object:
    _root_tools("ip", "iptables-restore", "ip6tables-restore")
    name = f"ppst-golden-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=30)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, timeout=30)


@pytest.mark.parametrize(
    "path", sorted((GOLDEN / "iptables").glob("*.rules")), ids=lambda p: p.name
)
def test_every_iptables_golden_passes_restore_test(path: Path, scratch_netns: str) -> None:
    tool = "ip6tables-restore" if path.name.endswith(".v6.rules") else "iptables-restore"
    done = subprocess.run(
        ["ip", "netns", "exec", scratch_netns, tool, "--test"],
        input=path.read_text(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
