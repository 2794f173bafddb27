"""Scan orchestration: targets → discovery → permuted probes → engine → confirmation → results.

Accuracy guards live here: every open port is re-probed (confirmation pass), a host that answers
"open" on an implausible share of ports is flagged instead of listed port by port, dead hosts are
skipped after discovery, and global/per-host deadlines bound the run.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import ipaddress
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from ppsguard.knowledge.services import service_name
from ppsguard.model.net import IPAddress, Protocol
from ppsguard.model.scan import (
    Confidence,
    HostResult,
    HostState,
    PortResult,
    PortState,
    Reason,
    ScanResult,
    ScanStats,
    ServiceInfo,
)
from ppsguard.scan import discovery, neighbours
from ppsguard.scan.engines.base import EngineConfig, EngineStats, UdpAnswers
from ppsguard.scan.observer import NullObserver, ScanObserver
from ppsguard.scan.options import ScanOptions
from ppsguard.scan.permutation import KeyedPermutation, new_seed
from ppsguard.scan.plan import ENGINES, ScanPlan, can_raw, pick_engine, plan_scan, resolve_ports
from ppsguard.scan.ports import PortSpec
from ppsguard.scan.timing import DEFAULT_REMOTE_RATE, TimingPreset

__all__ = [
    "ENGINES",
    "ScanOptions",
    "can_raw",
    "pick_engine",
    "resolve_ports",
    "run_plan",
    "run_sync",
    "scan",
    "scan_sync",
]

_T = TypeVar("_T")
IMPLAUSIBLE_MIN_PORTS = 1000
IMPLAUSIBLE_SHARE = 0.5
_SHUFFLE_MAX = 1 << 22


_Outcome = tuple[PortState, Reason, "int | None"]


@dataclass(slots=True)
class _Host:
    address: IPAddress
    hostname: str | None
    # protocol -> port -> outcome: int keys, no Enum.__hash__ per port result
    results: dict[Protocol, dict[int, _Outcome]] = field(default_factory=dict)
    error: str | None = None
    up: bool = True
    expired: bool = False
    state: HostState = HostState.UP
    reason: Reason | None = None
    note: str | None = None  # why an address was not scanned or probed


def _run_engine(
    name: str,
    probes: Sequence[tuple[IPAddress, int]],
    cfg: EngineConfig,
    emit: Callable[..., None],
    stats: EngineStats,
) -> None:
    if name == "syn":
        from ppsguard.scan.engines import syn

        syn.run(probes, cfg, emit, stats)
    elif name == "udp":
        from ppsguard.scan.engines import udp

        udp.run(probes, cfg, emit, stats)
    else:
        from ppsguard.scan.engines import connect

        connect.run(probes, cfg, emit, stats)


class _Probes(Sequence[tuple[IPAddress, int]]):
    """hosts × ports in keyed-permutation order, computed lazily."""

    def __init__(self, hosts: Sequence[IPAddress], ports: Sequence[int], seed: int) -> None:
        self.hosts, self.ports = list(hosts), list(ports)
        self.perm = KeyedPermutation(len(self.hosts) * len(self.ports), seed)
        self.order: list[int] | None = None
        if len(self.perm) <= _SHUFFLE_MAX:  # small: a seeded shuffle is ~100x faster than Feistel
            self.order = list(range(len(self.perm)))
            random.Random(seed).shuffle(self.order)

    def __len__(self) -> int:
        return len(self.perm)

    def __getitem__(self, i: int) -> tuple[IPAddress, int]:  # type: ignore[override]
        j = self.order[i] if self.order is not None else self.perm[i]
        return self.hosts[j % len(self.hosts)], self.ports[j // len(self.hosts)]

    def __iter__(self) -> Iterator[tuple[IPAddress, int]]:
        hosts, ports, n = self.hosts, self.ports, len(self.hosts)
        for j in self.order if self.order is not None else self.perm:
            yield hosts[j % n], ports[j // n]


async def scan(
    targets: Sequence[str],
    ports: str | PortSpec | None = None,
    *,
    top: int | None = None,
    options: ScanOptions | None = None,
    observer: ScanObserver | None = None,
) -> ScanResult:
    """Scan `targets` (tokens as on the command line) on `ports`; see ScanOptions for knobs.

    Every target passes the scope gate first (`plan_scan`); with `options.identify` the open
    ports' services are identified too (silent UDP ports are asked as well: an answer makes one
    open), and the elapsed time covers both phases.
    """
    opts = options or ScanOptions()
    started = dt.datetime.now(dt.UTC)
    t0 = time.monotonic()
    plan = await plan_scan(targets, ports, top=top, options=opts)
    answers: UdpAnswers = {}
    result = await run_plan(
        plan, opts, observer or NullObserver(), started=started, t0=t0, answers=answers
    )
    if opts.identify:
        from ppsguard.scan.identify import identify_open_ports

        result = await identify_open_ports(
            result,
            gate=plan.gate,
            timeout=opts.service_timeout,
            intrusive=opts.intrusive,
            window=opts.window,
            keep_silent=opts.all_states,
            answers=answers,
        )
    return result


def scan_sync(
    targets: Sequence[str],
    ports: str | PortSpec | None = None,
    *,
    top: int | None = None,
    options: ScanOptions | None = None,
    observer: ScanObserver | None = None,
) -> ScanResult:
    """`scan()` for callers without an event loop (it runs one; not from inside a running one)."""
    return run_sync(scan(targets, ports, top=top, options=options, observer=observer))


def run_sync(coro: Coroutine[Any, Any, _T]) -> _T:
    """`asyncio.run(coro)` without handing the result back through the task.

    Python 3.11's `asyncio.run` calls `signal.getsignal(SIGINT)` after the main task finished,
    which formats a ValueError with the repr of that task — and so of its result: a
    65,535-port ScanResult cost ~0.5-1 s of dataclass reprs. The task here returns None.
    """
    box: list[_T] = []

    async def main() -> None:
        box.append(await coro)

    asyncio.run(main())
    return box[0]


async def run_plan(
    plan: ScanPlan,
    opts: ScanOptions,
    obs: ScanObserver,
    *,
    started: dt.datetime | None = None,
    t0: float | None = None,
    answers: UdpAnswers | None = None,
) -> ScanResult:
    """Discovery, probes and confirmation for a plan the gate admitted. `answers`, when given,
    receives the UDP answers heard (for -sV to reuse)."""
    plan.gate.clear_to_send(f"the {plan.engine} scan")
    preset = plan.gate.preset
    engine, spec = plan.engine, plan.ports
    started = started or dt.datetime.now(dt.UTC)
    t0 = time.monotonic() if t0 is None else t0
    hosts = [_Host(address, hostname) for address, hostname in plan.targets.hosts()]
    failed = [
        _Host(ipaddress.IPv4Address(0), t.hostname, error=t.error, up=False)
        for t in plan.targets.failed
    ]
    seed = new_seed() if opts.seed is None else opts.seed
    stats = EngineStats(udp_answers=answers)
    stop = threading.Event()
    deadline = None if opts.deadline is None else t0 + opts.deadline
    by_addr = {h.address: h for h in hosts}
    methods = discovery.parse_methods(opts.discovery)
    if hosts:
        progress = obs.on_progress if opts.skip_discovery else _phase(obs, "discovery")
        await asyncio.to_thread(
            _discover, hosts, preset, stats, opts, methods, deadline, progress, plan.gate.fixed_rate
        )
    live = [h.address for h in hosts if h.up]
    max_rate = plan.gate.rate_ceiling(live)
    host_deadline: dict[IPAddress, float] = {}
    host_timeout = opts.host_timeout if opts.host_timeout is not None else preset.host_timeout

    def host_expired(address: IPAddress, now: float) -> bool:
        if host_timeout is None:
            return False
        first = host_deadline.setdefault(address, now + host_timeout)
        if now >= first:
            by_addr[address].expired = True
            return True
        return False

    phases: list[tuple[str, Protocol, tuple[int, ...]]] = []
    if spec.tcp and engine != "udp" and not opts.ping_only:
        phases.append((engine, Protocol.TCP, spec.tcp))
    if spec.udp and not opts.ping_only:
        phases.append(("udp", Protocol.UDP, spec.udp))
    total = sum(len(live) * len(p) for _, _, p in phases)
    _phase(obs, "ports")
    obs.on_start(total, seed)
    done = 0
    # per-port callbacks build a PortResult each (~1.5 us): only for observers that want them
    wants_ports = bool(
        getattr(obs, "wants_ports", not isinstance(obs, NullObserver) or _overrides_on_port(obs))
    )

    for name, proto, plist in phases:
        if not live:
            break
        probes = _Probes(live, plist, seed)
        # the engines hand back the address objects they were given: one table per object
        tables = {id(h.address): h.results.setdefault(proto, {}) for h in hosts if h.up}

        def emit(  # noqa: PLR0917 - the engines' callback signature
            address: IPAddress,
            port: int,
            state: PortState,
            reason: Reason,
            ttl: int | None,
            proto: Protocol = proto,
            tables: dict[int, dict[int, _Outcome]] = tables,
        ) -> None:
            nonlocal done
            table = tables.get(id(address))
            if table is None:
                table = by_addr[address].results.setdefault(proto, {})
            table[port] = (state, reason, ttl)
            done += 1
            if wants_ports:
                obs.on_port(address, PortResult(port, proto, state, reason, reason_ttl=ttl))
            if done & 1023 == 0:
                obs.on_progress(done, total)

        cfg = EngineConfig(
            preset,
            opts.max_retries,
            opts.min_rate,
            max_rate,
            opts.window,
            deadline,
            stop,
            host_expired,
            intrusive=opts.intrusive,
        )
        await asyncio.to_thread(_run_engine, name, probes, cfg, emit, stats)
        if opts.confirm:
            await _confirm(name, proto, hosts, cfg, stats)
    obs.on_progress(total, total)
    results = tuple(_host_result(h, opts) for h in [*hosts, *failed])
    for host in results:
        obs.on_host(host)
    elapsed = time.monotonic() - t0
    return ScanResult(
        hosts=results,
        stats=ScanStats(started, round(elapsed, 3), stats.probes_sent, stats.retransmissions, seed),
        engine=engine,
        arguments=opts.arguments,
    )


async def _confirm(
    name: str, proto: Protocol, hosts: Sequence[_Host], cfg: EngineConfig, stats: EngineStats
) -> None:
    """Re-probe every open port; a port that does not answer open again takes the new state."""
    opened = [
        (h.address, port)
        for h in hosts
        for port, (state, _r, _t) in h.results.get(proto, {}).items()
        if state is PortState.OPEN
    ]
    if not opened or len(opened) > 4096:
        return
    second: dict[tuple[IPAddress, int], tuple[PortState, Reason, int | None]] = {}

    def emit(
        address: IPAddress, port: int, state: PortState, reason: Reason, ttl: int | None
    ) -> None:
        second[(address, port)] = (state, reason, ttl)

    cfg2 = replace(cfg, host_expired=None)
    await asyncio.to_thread(_run_engine, name, opened, cfg2, emit, stats)
    by_addr = {h.address: h for h in hosts}
    for (address, port), outcome in second.items():
        by_addr[address].results.setdefault(proto, {})[port] = outcome


def _phase(obs: ScanObserver, name: str) -> Callable[[int, int], None]:
    """Tell an observer that can show phases (`on_phase`) that one begins; its progress sink."""
    on_phase = getattr(obs, "on_phase", None)
    if on_phase is not None:
        on_phase(name)
    return obs.on_progress


def _discover(  # noqa: PLR0917
    hosts: Sequence[_Host],
    preset: TimingPreset,
    stats: EngineStats,
    opts: ScanOptions,
    methods: frozenset[discovery.Method],
    deadline: float | None,
    progress: Callable[[int, int], None],
    max_rate: float | None,
) -> None:
    """Discovery's verdict on every host (with -Pn only the not-scannable addresses are out);
    every send within the scope gate's `max_rate`, remote addresses also within the default."""
    addresses = [h.address for h in hosts]
    links = neighbours.load_links()
    if opts.skip_discovery:
        verdicts = discovery.special_addresses(addresses, links)
    else:
        verdicts = list(
            discovery.discover(
                addresses, preset, stats, links=links, methods=methods, raw=can_raw(),
                deadline=deadline, max_rate=max_rate, remote_rate=DEFAULT_REMOTE_RATE,
                progress=progress,
            )
        )  # fmt: skip
    for h, verdict in zip(hosts, verdicts, strict=True):
        if verdict is None:
            h.reason = Reason.USER_SET
            continue
        h.up, h.state, h.reason = verdict.state is HostState.UP, verdict.state, verdict.reason
        h.note = verdict.note


def _guess(port: int, proto: Protocol) -> ServiceInfo | None:
    name = service_name(port, proto)
    return ServiceInfo(name=str(name), confidence=Confidence.GUESSED) if name else None


def _host_result(h: _Host, opts: ScanOptions) -> HostResult:
    if h.error is not None:  # a hostname that did not resolve: no address to report
        return HostResult(None, h.hostname, HostState.UNKNOWN, error=h.error)
    if not h.up:
        return HostResult(h.address, h.hostname, h.state, error=h.note, reason=h.reason)
    counts: Counter[PortState] = Counter()
    for table in h.results.values():
        counts.update(outcome[0] for outcome in table.values())
    summary = {str(state): n for state, n in counts.items()}
    probed = counts.total()
    flags: list[str] = []
    implausible = (
        probed >= IMPLAUSIBLE_MIN_PORTS and counts[PortState.OPEN] > IMPLAUSIBLE_SHARE * probed
    )
    if implausible:
        flags.append("implausible-open-share")
    ports: list[PortResult] = []
    guess_open = opts.guess_services and not implausible
    collecting = gc.isenabled()
    gc.disable()  # 65k fresh objects would trigger several full collections of a big heap
    try:
        for proto in sorted(h.results, key=_protocol_name):  # protocol-major, then port
            table = h.results[proto]
            if opts.all_states:
                listed = sorted(table)
            elif implausible:
                continue
            else:
                wanted = {PortState.OPEN}
                if (opts.keep_open_filtered or opts.identify) and proto is Protocol.UDP:
                    wanted.add(PortState.OPEN_FILTERED)
                listed = sorted(port for port, o in table.items() if o[0] in wanted)
            for port in listed:
                state, reason, ttl = table[port]
                guess = _guess(port, proto) if guess_open and state is PortState.OPEN else None
                ports.append(PortResult(port, proto, state, reason, guess, ttl))
    finally:
        if collecting:
            gc.enable()
    if h.expired:
        flags.append("host-timeout")
    return HostResult(
        h.address, h.hostname, HostState.UP, tuple(ports), summary, tuple(flags), None, h.reason
    )


def _protocol_name(protocol: Protocol) -> str:
    return protocol.value


def _overrides_on_port(obs: ScanObserver) -> bool:
    return type(obs).on_port is not NullObserver.on_port
