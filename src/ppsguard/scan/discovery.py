"""Host discovery that fits the path to each target: is anybody there before we spend port
probes on it?

- loopback, our own addresses: asked nothing; up, `localhost-response`.
- network/broadcast address of an attached IPv4 subnet (/30 or wider): not scanned; down.
- on a directly attached link: ARP (IPv4) or neighbour solicitation (IPv6) over raw sockets;
  up with `arp-response` / `nd-response`, else down with `no-response`.
- elsewhere, or without raw sockets: ICMP echo (plus timestamp as root), then TCP to 443 and 80
  (SYN as root, connect otherwise); up with `echo-reply`, `timestamp-reply`, `syn-ack`, `reset`
  or `conn-refused`.

A host on the link that does not answer ARP/ND is down (nmap's rule: nothing else gets through a
link without it). `--discovery` narrows the methods (`arp`, `nd`, `icmp`, `tcp`); a target whose
methods were all switched off counts as down. `-Pn` skips this module except for the
network/broadcast check. Sends the kernel refuses for one address are that address's result.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from ppsguard.errors import UsageError
from ppsguard.model.net import IPAddress
from ppsguard.model.scan import HostState, PortState, Reason
from ppsguard.scan import neighbours, ping
from ppsguard.scan.engines.base import EngineConfig, EngineStats
from ppsguard.scan.links import Links
from ppsguard.scan.timing import TimingPreset

_TCP_PORTS = (443, 80)


class Method(StrEnum):
    ARP = "arp"
    ND = "nd"
    ICMP = "icmp"
    TCP = "tcp"


ALL_METHODS = frozenset(Method)


def parse_methods(text: str) -> frozenset[Method]:
    """`auto` (every method, by path) or a comma list of arp, nd, icmp, tcp."""
    words = [w.strip().lower() for w in text.split(",") if w.strip()]
    if not words or words == ["auto"]:
        return ALL_METHODS
    methods: set[Method] = set()
    for word in words:
        try:
            methods.add(Method(word))
        except ValueError:
            raise UsageError(
                "unknown discovery method (auto, or a list of arp, nd, icmp, tcp)", token=word
            ) from None
    return frozenset(methods)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What discovery concluded about one address; `note` explains an address not scanned."""

    state: HostState
    reason: Reason
    note: str | None = None
    rtt: float | None = None


Progress = Callable[[int, int], None]  # (done, total)


def special_addresses(addresses: Sequence[IPAddress], links: Links) -> dict[IPAddress, Verdict]:
    """The network and broadcast addresses of attached IPv4 subnets among `addresses`."""
    found: dict[IPAddress, Verdict] = {}
    for address in addresses:
        kind = links.special(address)
        if kind is not None:
            found[address] = Verdict(HostState.DOWN, Reason.NO_RESPONSE, f"not scanned: {kind}")
    return found


def discover(
    addresses: Sequence[IPAddress],
    preset: TimingPreset,
    stats: EngineStats,
    *,
    links: Links,
    methods: frozenset[Method] = ALL_METHODS,
    raw: bool = False,
    deadline: float | None = None,
    max_rate: float | None = None,
    progress: Progress | None = None,
) -> dict[IPAddress, Verdict]:
    """A verdict for every address in `addresses`."""
    verdicts = special_addresses(addresses, links)
    for address in addresses:
        if address not in verdicts and (address.is_loopback or address in links.local):
            verdicts[address] = Verdict(HostState.UP, Reason.LOCALHOST_RESPONSE)
            stats.estimator(address, preset).sample(0.0)  # no wire: never the initial timeout
    groups: dict[tuple[str, int], list[IPAddress]] = {}
    elsewhere: list[IPAddress] = []
    use_neighbours = raw and neighbours.available()
    for address in addresses:
        if address in verdicts:
            continue
        route = links.attached(address)
        wanted = Method.ARP if address.version == 4 else Method.ND
        if route is not None and use_neighbours and wanted in methods:
            groups.setdefault((route.interface, address.version), []).append(address)
        else:
            elsewhere.append(address)
    tries = 2 if preset.initial_timeout <= 0.5 else 3
    icmp_on, tcp_on = Method.ICMP in methods, Method.TCP in methods
    total = len(elsewhere) * (tries * icmp_on + 2 * tcp_on) + sum(map(len, groups.values())) * tries
    counter = _Counter(total, progress)
    if groups:
        config = neighbours.SweepConfig(
            tries=tries,
            wait=min(1.0, max(0.1, preset.initial_timeout / 2)),
            deadline=deadline,
            max_rate=max_rate,
            progress=counter.add,
        )
        answered, unaskable = neighbours.sweep(groups, config)
        for key, members in groups.items():
            reason = Reason.ARP_RESPONSE if key[1] == 4 else Reason.ND_RESPONSE
            for address in members:
                if address in answered:
                    rtt = answered[address]
                    stats.estimator(address, preset).sample(rtt)  # seeds the port scan's timeouts
                    verdicts[address] = Verdict(HostState.UP, reason, rtt=rtt)
                elif address in unaskable:
                    elsewhere.append(address)
                else:
                    verdicts[address] = _silent(deadline)
    if elsewhere:
        _probe(elsewhere, preset, stats, verdicts, raw, icmp_on, tcp_on, deadline, counter)
    for address in addresses:
        verdicts.setdefault(address, _silent(deadline))
    counter.finish()
    return verdicts


def _silent(deadline: float | None) -> Verdict:
    if deadline is not None and time.monotonic() >= deadline:
        return Verdict(HostState.UNKNOWN, Reason.NO_RESPONSE, "not probed: --deadline reached")
    return Verdict(HostState.DOWN, Reason.NO_RESPONSE)


class _Counter:
    def __init__(self, total: int, progress: Progress | None) -> None:
        self.done, self.total, self.progress = 0, total, progress
        self.last = 0.0

    def add(self, n: int) -> None:
        self.done = min(self.total, self.done + n)
        now = time.monotonic()
        if self.progress is not None and now - self.last > 0.1:
            self.last = now
            self.progress(self.done, self.total)

    def finish(self) -> None:
        if self.progress is not None:
            self.progress(self.total, self.total)


def _probe(  # noqa: PLR0917
    hosts: list[IPAddress],
    preset: TimingPreset,
    stats: EngineStats,
    verdicts: dict[IPAddress, Verdict],
    raw: bool,
    icmp_on: bool,
    tcp_on: bool,
    deadline: float | None,
    counter: _Counter,
) -> None:
    """ICMP echo/timestamp, then TCP to 443 and 80, for hosts not on a link we can ask."""
    timeout = min(1.0, max(preset.initial_timeout, 0.5))
    tries = 2 if preset.initial_timeout <= 0.5 else 3
    if icmp_on:
        for address, (reason, rtt) in ping.ping(
            hosts, timeout, tries, raw, deadline, counter.add
        ).items():
            stats.estimator(address, preset).sample(rtt)
            verdicts[address] = Verdict(HostState.UP, Reason(reason), rtt=rtt)
    rest = [h for h in hosts if h not in verdicts]
    if not rest or not tcp_on:
        return

    def emit(
        address: IPAddress, port: int, state: PortState, reason: Reason, ttl: int | None
    ) -> None:
        counter.add(1)
        if address not in verdicts and (
            state in (PortState.OPEN, PortState.CLOSED) or reason is Reason.ADMIN_PROHIBITED
        ):
            verdicts[address] = Verdict(HostState.UP, reason)

    cfg = EngineConfig(preset=preset, max_retries=1, window=256)
    cfg.deadline = time.monotonic() + 3 * timeout
    if deadline is not None:
        cfg.deadline = min(cfg.deadline, deadline)
    probes = ((h, p) for p in _TCP_PORTS for h in rest)
    if raw:
        from ppsguard.scan.engines import syn

        syn.run(probes, cfg, emit, stats)
    else:
        from ppsguard.scan.engines import connect

        connect.run(probes, cfg, emit, stats)
