"""What a scan will do, decided before anything is sent: the dry run, and every scan's first step.

`plan_scan` parses the targets, has the scope gate (`scan.scope`) admit them — the whole
expanded set against `--scope`, minus `--exclude`, ranges checked before any name is looked up
and resolved names after — picks the engine and the ports and works out the rate ceiling.
`pps scan --dry-run` prints the plan, `scan()` executes it, `--nmap` turns it into nmap's
arguments: one path to the gate for all of them. Planning sends no probe (name lookups aside).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ppsguard.errors import InputError, PermissionDenied, UsageError
from ppsguard.model.net import IPAddress, IPNetwork, Protocol
from ppsguard.scan.options import ScanOptions
from ppsguard.scan.ports import PortSpec, parse_ports, top_ports
from ppsguard.scan.scope import ScopeGate, Targets
from ppsguard.scan.targets import parse_networks, parse_targets, split_tokens

ENGINES = ("connect", "syn", "udp")
RESOLVE_TIMEOUT_S = 10.0


def can_raw() -> bool:
    """Whether raw sockets are allowed here (root with CAP_NET_RAW)."""
    try:
        socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP).close()
    except OSError:
        return False
    return True


def pick_engine(requested: str | None) -> str:
    """The engine to use: SYN when raw sockets are allowed, else connect; `--syn` demands raw."""
    if requested is None:
        return "syn" if can_raw() else "connect"
    if requested not in ENGINES:
        raise UsageError("unknown scan engine", token=requested)
    if requested == "syn" and not can_raw():
        raise PermissionDenied(
            "--syn needs root with CAP_NET_RAW (raw sockets); "
            "use --connect for an unprivileged scan"
        )
    return requested


def resolve_ports(
    ports: str | PortSpec | None, top: int | None, engine: str, udp: bool
) -> PortSpec:
    default = Protocol.UDP if engine == "udp" else Protocol.TCP
    if isinstance(ports, PortSpec):
        return ports
    if ports is not None:
        if top is not None:
            raise UsageError("give either -p or --top-ports, not both")
        return parse_ports(ports, default=default, both=udp and engine != "udp")
    n = 1000 if top is None else top
    tcp = top_ports(n, Protocol.TCP) if engine != "udp" else ()
    udp_ports = (
        top_ports(n if top is not None else 100, Protocol.UDP) if (engine == "udp" or udp) else ()
    )
    return PortSpec(tcp, udp_ports)


def gate_for(options: ScanOptions) -> ScopeGate:
    """The scope gate a scan with `options` goes through."""
    excluded = parse_networks(list(options.exclude), source="exclude") if options.exclude else ()
    return ScopeGate(
        scope=options.scope,
        exclude=excluded,
        timing=options.timing,
        max_rate=options.max_rate,
        dry_run=options.dry_run,
    )


MAX_SCOPE_BYTES = 16 * 1024 * 1024


def load_scope_file(path: Path) -> list[IPNetwork]:
    """The networks of a `--scope` allow-list file (CIDRs or addresses, whitespace or comma
    separated, `#` comments); a bad file or entry raises InputError naming the file."""
    from ppsguard.infile import read_text  # the one bounded reader: regular files, <= 16 MB

    text = read_text(path, limit=MAX_SCOPE_BYTES, what="scope file")
    try:
        return parse_networks(split_tokens(text), source="scope")
    except InputError as exc:
        raise InputError(exc.message, file=path, token=exc.token) from None


async def resolve_names(names: Iterable[str]) -> dict[str, IPAddress | str]:
    """Each host name's first address, or the error text when it does not resolve (each name
    gets RESOLVE_TIMEOUT_S)."""
    loop = asyncio.get_running_loop()
    found: dict[str, IPAddress | str] = {}
    for name in dict.fromkeys(names):
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(name, None, type=socket.SOCK_STREAM), timeout=RESOLVE_TIMEOUT_S
            )
            found[name] = ipaddress.ip_address(str(infos[0][4][0]).split("%")[0])
        except (TimeoutError, OSError) as exc:
            found[name] = f"cannot resolve: {exc}"
    return found


async def admit_targets(gate: ScopeGate, tokens: Sequence[str]) -> Targets:
    """Target tokens as the gate admits them (UsageError for a bad token or one out of scope)."""
    specs = parse_targets(tokens)
    gate.admit_ranges(specs)  # refuse before any lookup
    names = await resolve_names(s.hostname for s in specs if s.hostname is not None)
    return gate.admit(specs, names)


@dataclass(frozen=True, slots=True)
class ScanPlan:
    """A scan before it runs: whom, which ports, which engine, how fast. The typed dry run."""

    targets: Targets
    ports: PortSpec
    engine: str
    gate: ScopeGate
    max_rate: float | None  # packets/s ceiling over all targets (None: unlimited)

    @property
    def probes(self) -> int:
        """First probes: every admitted address times every port (retries and discovery extra)."""
        return self.targets.count * len(self.ports)


async def plan_scan(
    targets: Sequence[str],
    ports: str | PortSpec | None = None,
    *,
    top: int | None = None,
    options: ScanOptions,
    engine: str | None = None,
) -> ScanPlan:
    """Plan a scan of `targets`; `engine` overrides the options' (e.g. "nmap" for display)."""
    gate = gate_for(options)
    chosen = pick_engine(options.engine)
    spec = resolve_ports(ports, top, chosen, options.udp)
    admitted = await admit_targets(gate, targets)
    return ScanPlan(admitted, spec, engine or chosen, gate, gate.rate_ceiling(admitted))
