"""Collect a host's observations: local sockets, the outside view, the live firewall. I/O edge.

`sources.py` wraps each of these in an `ObservationSource`; the collection itself is here:

- local: `ppsguard.inventory.collect` (in `--netns` NAME when given);
- outside: a TCP connect scan of the host's own non-loopback addresses (loopback is local by
  definition) on every listening and documented port, run in a thread inside the namespace to
  scan from (the audited one, or `scan_from` to look from another host), through the scope gate
  (`--scope`: addresses outside it are not scanned and are named as a gap), or an imported nmap
  XML file;
- firewall: `firewall.enforcement.read_enforcement` — the one judgement that `pps policy status` and
  the apply's drift check use too: ppsguard's table is "enforced" when it is present and either
  matches the fingerprint recorded at apply time or, with no record, carries every entry the
  registry's policy renders, and no other table (any family, hook or priority, iptables-legacy
  too) drops what an entry allows ("overridden" otherwise, each place named).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import subprocess
from collections.abc import Iterable
from pathlib import Path

from ppsguard.audit.baseline import Baseline
from ppsguard.audit.views import (
    FirewallState,
    FirewallView,
    ForeignEffect,
    Listener,
    OutsideView,
    Vantage,
    listeners_from_inventory,
    normalise,
    outside_from_scan,
)
from ppsguard.model.net import IPAddress, Protocol
from ppsguard.model.registry import HostPolicy
from ppsguard.model.scan import ScanResult
from ppsguard.model.sockets import Exposure
from ppsguard.scan.scope import ScopeGate

MAX_SCAN_PORTS = 4096
SCAN_DEADLINE_S = 120.0
IDENTIFY_TIMEOUT_S = 3.0


def local_listeners(netns: str | None) -> tuple[tuple[Listener, ...], tuple[str, ...]]:
    """Every passive TCP/UDP socket of the host (or namespace), grouped per bind."""
    from ppsguard.inventory import collect

    inventory = collect(listening=True, active=False, netns=netns, owners=True)
    return listeners_from_inventory(inventory), inventory.gaps


def host_addresses(netns: str | None) -> tuple[IPAddress, ...]:
    """The non-loopback, non-link-local addresses of the host or namespace (`ip -j addr`)."""
    argv = ["ip", "-j", "addr", "show"]
    if netns:
        argv = ["ip", "-n", netns, "-j", "addr", "show"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ()
    if done.returncode != 0:
        return ()
    return parse_ip_addr_json(done.stdout)


def parse_ip_addr_json(text: str) -> tuple[IPAddress, ...]:
    """Addresses from `ip -j addr show` output, minus loopback and link-local."""
    try:
        interfaces = json.loads(text)
    except json.JSONDecodeError:
        return ()
    found: list[IPAddress] = []
    for interface in interfaces if isinstance(interfaces, list) else ():
        if not isinstance(interface, dict):
            continue
        for info in interface.get("addr_info", []) or []:
            if not isinstance(info, dict):
                continue
            try:
                address = normalise(ipaddress.ip_address(str(info.get("local"))))
            except ValueError:
                continue
            if address.is_loopback or address.is_link_local or address.is_unspecified:
                continue
            if address not in found:
                found.append(address)
    return tuple(found)


def ports_to_scan(
    listeners: Iterable[Listener], baseline: Baseline, extra: Iterable[int] = ()
) -> tuple[int, ...]:
    """TCP ports worth probing: every non-loopback listener, every documented or denied port."""
    ports = {
        item.port
        for item in listeners
        if item.protocol is Protocol.TCP and item.exposure is not Exposure.LOOPBACK
    }
    for entry in baseline.entries:
        for sp in entry.ports:
            if sp.protocol is Protocol.TCP and len(sp.ports) <= 64:
                ports.update(range(sp.ports.first, sp.ports.last + 1))
    ports.update(extra)
    return tuple(sorted(ports))[:MAX_SCAN_PORTS]


def scan_outside(
    addresses: tuple[IPAddress, ...],
    ports: tuple[int, ...],
    *,
    from_netns: str | None,
    vantage: Vantage,
    identify: bool = True,
    gate: ScopeGate | None = None,
) -> OutsideView:
    """Connect-scan `addresses` on TCP `ports` from inside `from_netns` (None: here), then
    identify the service behind each open port (non-intrusive probes: banners, handshakes).
    Both pass the scope `gate` (by default one that allows everything at -T4)."""
    from ppsguard.inventory import netns as netns_mod
    from ppsguard.scan.engine import ScanOptions, scan
    from ppsguard.scan.identify import identify_open_ports
    from ppsguard.scan.ports import PortSpec

    gate = gate or ScopeGate(timing=4)
    if not addresses or not ports:
        return OutsideView(vantage, addresses, frozenset(), ())
    options = ScanOptions(
        engine="connect",
        skip_discovery=True,
        all_states=True,
        timing=gate.timing,
        max_rate=gate.max_rate,
        scope=gate.scope,
        exclude=[str(n) for n in gate.exclude],
        deadline=SCAN_DEADLINE_S,
        arguments="pps audit",
    )
    targets = [str(a) for a in addresses]

    async def scan_and_identify() -> ScanResult:
        result = await scan(targets, PortSpec(ports, ()), options=options)
        if identify:
            result = await identify_open_ports(
                result, gate=gate, timeout=IDENTIFY_TIMEOUT_S, limit=MAX_SCAN_PORTS
            )
        return result

    def run() -> object:
        return asyncio.run(scan_and_identify())

    if from_netns:
        namespace = netns_mod.resolve(from_netns)
        result = netns_mod.run_in_netns(namespace, run, timeout=SCAN_DEADLINE_S + 60)
    else:
        result = run()
    assert isinstance(result, ScanResult)
    return outside_from_scan(result, vantage, [(Protocol.TCP, p) for p in ports])


def outside_from_nmap(path: Path) -> OutsideView:
    """An imported nmap XML file as the outside view (taken from wherever nmap ran)."""
    from ppsguard.infile import read_text
    from ppsguard.scan.nmap_import import MAX_NMAP_BYTES, load_nmap_xml

    text = read_text(path, limit=MAX_NMAP_BYTES, what="nmap XML", errors="replace")
    result = load_nmap_xml(text, str(path))
    return outside_from_scan(result, Vantage.NMAP)


def firewall_view(netns: str | None, policy: HostPolicy | None) -> FirewallView:
    """Read the live rule set and judge it against the registry's policy (`firewall.state`)."""
    from ppsguard.firewall.coexist import coexistence
    from ppsguard.firewall.enforcement import read_enforcement
    from ppsguard.firewall.nft import Runner
    from ppsguard.firewall.others import read_managers
    from ppsguard.firewall.state import describe_effects
    from ppsguard.firewall.statedir import StateDir

    found = read_enforcement(Runner(netns=netns, timeout=30), StateDir.for_netns(netns), policy)
    overriding = tuple(
        f"{c.family} {c.table} chain {c.name} (hook {c.hook}, policy {c.policy}, "
        f"{c.drop_rules} drop/reject rules) can drop what ppsguard accepts"
        for c in found.overriding
    )
    notes = list(found.notes)
    if found.legacy_rules:
        notes.append(f"{len(found.legacy_rules)} iptables-legacy rules are active (not in nft)")
    if found.recorded_fingerprint and found.drift and found.live and found.live.owned_present:
        notes.append("inet ppsguard differs from what ppsguard last applied")
    if found.missing_entries:
        notes.append("rules missing for entries: " + ", ".join(sorted(found.missing_entries)))
    foreign = tuple(
        ForeignEffect(
            entry_id=entry,
            where=effect.where,
            rule=effect.rule,
            verdict=effect.verdict,
            certainty=effect.certainty,
            description=line,
            protocol=effect.packets.protocol,
            port=effect.packets.ports[0][0] if effect.packets.ports else None,
        )
        for entry, effect, line in describe_effects(found.effects)
    )
    managers, unread = read_managers(Runner(netns=netns, timeout=30))
    notes.extend(unread)
    lines = coexistence(managers, policy)
    return FirewallView(
        FirewallState(found.state.value),
        found.missing_entries,
        overriding,
        tuple(notes),
        foreign,
        evaluated=policy is not None and found.live is not None,
        managers=tuple(m.name for m in managers),
        conflicts=tuple(line for line in lines if " which the registry " in line),
    )


def expected_entry_ids(policy: HostPolicy) -> frozenset[str]:
    """Entry ids the nftables rendering of `policy` names in its rule comments."""
    from ppsguard.firewall.state import expected_entry_ids as expected

    return expected(policy)
