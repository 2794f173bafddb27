"""Host discovery that fits the path to each target: is anybody there before we spend port
probes on it?

- loopback, our own addresses: asked nothing; up, `localhost-response`.
- network/broadcast address of an attached IPv4 subnet (/30 or wider): not scanned; down.
- on a directly attached link: ARP (IPv4) or neighbour solicitation (IPv6) over raw sockets, or
  without them the kernel's own resolution read from its neighbour table (kernel_neighbours.py);
  up with `arp-response` / `nd-response`, else down with `no-response`.
- elsewhere, or without raw sockets: all at once, ICMP echo (plus timestamp as root), TCP SYN to
  443 and a TCP ACK to 80 as root (connects to 443 and 80 otherwise); up with `echo-reply`,
  `timestamp-reply`, `syn-ack`, `reset` or `conn-refused`.

A host on the link that does not answer ARP/ND is down (nmap's rule: nothing else gets through a
link without it). `--discovery` narrows the methods (`arp`, `nd`, `icmp`, `tcp`); a target whose
methods were all switched off counts as down. `-Pn` skips this module except for the
network/broadcast check. Sends the kernel refuses for one address are that address's result.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from ppsguard.errors import UsageError
from ppsguard.model.net import IPAddress
from ppsguard.model.scan import HostState, PortState, Reason
from ppsguard.scan import kernel_neighbours, neighbours, ping, tcpping
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


def special_addresses(addresses: Sequence[IPAddress], links: Links) -> list[Verdict | None]:
    """Per address: a down verdict for the network and broadcast addresses of attached IPv4
    subnets ("not scanned: broadcast address"), None for every other address."""
    found: list[Verdict | None] = []
    for address in addresses:
        kind = links.special(address)
        found.append(
            None
            if kind is None
            else Verdict(HostState.DOWN, Reason.NO_RESPONSE, f"not scanned: {kind}")
        )
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
    remote_rate: float | None = None,
    progress: Progress | None = None,
) -> list[Verdict]:
    """A verdict for every address in `addresses`, in order. `max_rate` bounds every send;
    `remote_rate` also the probes to addresses that are neither private nor loopback.

    Works by index and by packed address: hashing 65,536 `ipaddress` objects (hex() each time)
    cost more than the ARP sweep of a /16 itself."""
    verdicts: list[Verdict | None] = special_addresses(addresses, links)
    groups: dict[tuple[str, int], list[int]] = {}
    by_kernel: list[int] = []  # on a link, without raw sockets: the kernel resolves them
    elsewhere: list[int] = []
    use_neighbours = raw and neighbours.available()
    local = links.local
    for i, address in enumerate(addresses):
        if verdicts[i] is not None:
            continue
        if address.is_loopback or address in local:
            verdicts[i] = Verdict(HostState.UP, Reason.LOCALHOST_RESPONSE)
            stats.estimator(address, preset).sample(0.0)  # no wire: never the initial timeout
            continue
        route = links.attached(address)
        wanted = Method.ARP if address.version == 4 else Method.ND
        if route is not None and wanted in methods:
            if use_neighbours:
                groups.setdefault((route.interface, address.version), []).append(i)
            else:
                by_kernel.append(i)
        else:
            elsewhere.append(i)
    tries = 2 if preset.initial_timeout <= 0.5 else 3
    icmp_on, tcp_on = Method.ICMP in methods, Method.TCP in methods
    # progress units per probed host: ICMP tries, then SYN (one outcome) + ACK tries as root,
    # or one outcome per connect to 443 and 80 without root
    per_probe = tries * icmp_on + tcp_on * ((1 + tries) if raw else 2)
    total = len(elsewhere) * per_probe + sum(map(len, groups.values())) * tries + len(by_kernel)
    counter = _Counter(total, progress)
    if groups:
        config = neighbours.SweepConfig(
            tries=tries,
            wait=min(1.0, max(0.1, preset.initial_timeout / 2)),
            deadline=deadline,
            max_rate=max_rate,
            progress=counter.add,
        )
        asked = {key: [addresses[i] for i in members] for key, members in groups.items()}
        answered, unaskable = neighbours.sweep(asked, config)
        silent = _silent(deadline)  # every pass done in time: the silent ones are down
        for key, members in groups.items():
            reason = Reason.ARP_RESPONSE if key[1] == 4 else Reason.ND_RESPONSE
            for i in members:
                rtt = answered.get(addresses[i].packed) if answered else None
                if rtt is not None:
                    stats.estimator(addresses[i], preset).sample(rtt)  # seeds port timeouts
                    verdicts[i] = Verdict(HostState.UP, reason, rtt=rtt)
                elif unaskable and addresses[i].packed in unaskable:
                    elsewhere.append(i)
                else:
                    verdicts[i] = silent
    if by_kernel:
        known, failed = kernel_neighbours.resolve(
            [addresses[i] for i in by_kernel], deadline, counter.add
        )
        for i in by_kernel:
            packed = addresses[i].packed
            if packed in known:
                reason = Reason.ARP_RESPONSE if addresses[i].version == 4 else Reason.ND_RESPONSE
                verdicts[i] = Verdict(HostState.UP, reason)
            elif packed in failed:
                verdicts[i] = _DOWN
    if elsewhere:
        rest = [addresses[i] for i in elsewhere]
        rate = max_rate
        if remote_rate is not None and any(not (a.is_private or a.is_loopback) for a in rest):
            rate = remote_rate if rate is None else min(rate, remote_rate)
        found = _probe(rest, preset, stats, raw, icmp_on, tcp_on, deadline, rate, counter)
        silent = _silent(deadline)
        for i in elsewhere:
            verdicts[i] = found.get(addresses[i].packed, silent)
    silent = _silent(deadline)  # shared objects: 65,536 down hosts need no 65,536 verdicts
    counter.finish()
    return [silent if v is None else v for v in verdicts]


_DOWN = Verdict(HostState.DOWN, Reason.NO_RESPONSE)
_UNDECIDED = Verdict(HostState.UNKNOWN, Reason.NO_RESPONSE, "undecided: --deadline reached")


def _silent(deadline: float | None) -> Verdict:
    """Down, or undecided when the deadline cut the asking short."""
    return _UNDECIDED if deadline is not None and time.monotonic() >= deadline else _DOWN


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
    raw: bool,
    icmp_on: bool,
    tcp_on: bool,
    deadline: float | None,
    rate: float | None,
    counter: _Counter,
) -> dict[bytes, Verdict]:
    """For hosts not on a link we can ask, all at once as nmap does: ICMP echo (and timestamp as
    root), TCP SYN to 443 and, as root, a TCP ACK to 80 (without root: connects to 443 and 80).
    Verdicts of the hosts that answered, by packed address; ICMP answers count first."""
    timeout = min(1.0, max(preset.initial_timeout, 0.5))
    tries = 2 if preset.initial_timeout <= 0.5 else 3
    end = time.monotonic() + 3 * timeout * tries
    end = end if deadline is None else min(end, deadline)
    by_icmp: dict[bytes, Verdict] = {}
    by_tcp: dict[bytes, Verdict] = {}
    by_ack: dict[bytes, Verdict] = {}

    def icmp() -> None:
        for address, (reason, rtt) in ping.ping(
            hosts, timeout, tries, raw, deadline, rate, counter.add
        ).items():
            stats.estimator(address, preset).sample(rtt)
            by_icmp[address.packed] = Verdict(HostState.UP, Reason(reason), rtt=rtt)

    def emit(
        address: IPAddress, port: int, state: PortState, reason: Reason, ttl: int | None
    ) -> None:
        counter.add(1)
        if address.packed not in by_tcp and (
            state in (PortState.OPEN, PortState.CLOSED) or reason is Reason.ADMIN_PROHIBITED
        ):
            by_tcp[address.packed] = Verdict(HostState.UP, reason)

    def tcp() -> None:
        cfg = EngineConfig(preset=preset, max_retries=tries - 1, window=256, max_rate=rate)
        cfg.deadline = end
        if raw:
            from ppsguard.scan.engines import syn

            syn.run(((h, 443) for h in hosts), cfg, emit, stats)
        else:
            from ppsguard.scan.engines import connect

            connect.run(((h, p) for p in _TCP_PORTS for h in hosts), cfg, emit, stats)

    def ack() -> None:
        for packed, rtt in tcpping.ack_ping(hosts, 80, timeout, tries, end, counter.add).items():
            by_ack[packed] = Verdict(HostState.UP, Reason.RESET, rtt=rtt)

    jobs = [job for job, on in ((icmp, icmp_on), (tcp, tcp_on), (ack, tcp_on and raw)) if on]
    threads = [threading.Thread(target=job, daemon=True) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {**by_ack, **by_tcp, **by_icmp}
