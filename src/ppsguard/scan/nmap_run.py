"""`pps scan --nmap`: run the user's installed nmap through the scope gate and read its XML back.

nmap gets exactly what the gate admitted (`scan.plan`), never the raw targets: the admitted
addresses as CIDR blocks (a host name as the address it resolved to, so nmap cannot resolve it
to something else), `--exclude` with the excluded networks (belt and braces: they are already
cut out), `-T` and `--max-rate` with the gate's ceiling, and the options both tools share (`-p`
or `--top-ports`, `-sT`/`-sS`/`-sU`, `-Pn`, `--max-retries`, `--min-rate`, `--host-timeout`).
`nmap_argv` builds the command (pure, so a dry run can print it); `run_nmap` asks the gate to
clear the send — a dry run never starts nmap — and runs one nmap per address family (nmap takes
IPv6 targets only with -6). We never read nmap's data files; `load_nmap_xml` parses its output.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import shutil
import subprocess
from collections.abc import Sequence

from ppsguard.errors import RuntimeFailure
from ppsguard.model.net import IPAddress, IPNetwork
from ppsguard.model.scan import HostResult, HostState, ScanResult, ScanStats
from ppsguard.scan.engine import ScanOptions
from ppsguard.scan.identify.escape import escape_text
from ppsguard.scan.nmap_import import load_nmap_xml
from ppsguard.scan.plan import ScanPlan
from ppsguard.scan.ports import parse_ports

NMAP_TIMEOUT_S = 6 * 3600  # a bound, not an estimate: a -sV scan of many hosts can take hours
_SCAN_TYPES = {"connect": "-sT", "syn": "-sS"}


def _block(network: IPNetwork) -> str:
    """A CIDR block as nmap takes it; a single address without its /32 or /128."""
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return str(network)


# Linux refuses one argument longer than 128 KiB and a command line beyond ARG_MAX; a scattered
# target list past this size (a few thousand blocks) is given to nmap on stdin with -iL -.
INLINE_TARGETS_MAX = 32 * 1024


def _number(value: float) -> str:
    return f"{value:g}" if value < 1e6 else str(round(value))


def nmap_argv(
    plan: ScanPlan,
    options: ScanOptions,
    ports: str | None,
    top: int | None = None,
    *,
    executable: str = "nmap",
    extra_args: Sequence[str] = (),
) -> list[list[str]]:
    """The nmap command lines (one per address family with targets) that carry out `plan`;
    `extra_args` (for programs, never from the command line) go before the targets."""
    commands = nmap_commands(
        plan, options, ports, top, executable=executable, extra_args=extra_args
    )
    return [[*argv, *targets] for argv, targets in commands]


def nmap_commands(
    plan: ScanPlan,
    options: ScanOptions,
    ports: str | None,
    top: int | None = None,
    *,
    executable: str = "nmap",
    extra_args: Sequence[str] = (),
) -> list[tuple[list[str], list[str]]]:
    """`nmap_argv`'s commands as (options, target blocks), so a long target list can be given
    to nmap on its standard input (-iL -) instead of a command line the kernel would refuse."""
    common = [executable, "-sV", "-oX", "-"]
    if ports is not None:
        # our own parser admits only digits, commas, ranges, T:/U: and "-" (all ports): nothing
        # nmap could take for an option; joined to -p so "-" (nmap's -p-) stays -p's value
        parse_ports(ports)
        common.append("-p" + "".join(ports.split()))
    elif top is not None:
        common += ["--top-ports", str(top)]
    if options.engine in _SCAN_TYPES:
        common.append(_SCAN_TYPES[options.engine])
    if options.udp or options.engine == "udp":
        common.append("-sU")
    common.append(f"-T{plan.gate.timing}")
    if plan.max_rate is not None:
        common += ["--max-rate", _number(plan.max_rate)]
    if options.min_rate is not None:
        common += ["--min-rate", _number(options.min_rate)]
    if options.max_retries is not None:
        common += ["--max-retries", str(options.max_retries)]
    if options.host_timeout is not None:
        common += ["--host-timeout", f"{math.ceil(options.host_timeout * 1000)}ms"]
    if options.skip_discovery:
        common.append("-Pn")
    common.extend(extra_args)
    commands: list[tuple[list[str], list[str]]] = []
    for version in (4, 6):
        blocks = [_block(n) for n in plan.targets.networks() if n.version == version]
        if not blocks:
            continue
        argv = [*common, "-6"] if version == 6 else list(common)
        excluded = [_block(n) for n in plan.gate.exclude if n.version == version]
        if excluded:
            argv += ["--exclude", ",".join(excluded)]
        commands.append((argv, blocks))
    return commands


def _run(argv: list[str], targets: list[str], timeout: float) -> ScanResult:
    """Run one nmap command; targets beyond `INLINE_TARGETS_MAX` characters go on stdin."""
    stdin: str | None = None
    if sum(len(t) + 1 for t in targets) > INLINE_TARGETS_MAX:
        argv, stdin = [*argv, "-iL", "-"], "".join(f"{t}\n" for t in targets)
    else:
        argv = [*argv, *targets]
    try:
        completed = subprocess.run(
            argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise RuntimeFailure(f"nmap did not finish within {timeout:g} s") from error
    except OSError as error:
        raise RuntimeFailure(f"cannot run nmap: {error.strerror or error}") from None
    if completed.returncode != 0:
        last = (completed.stderr.strip().splitlines() or ["no message"])[-1]
        raise RuntimeFailure(f"nmap exited {completed.returncode}: {escape_text(last, 200)}")
    return load_nmap_xml(completed.stdout, "nmap -oX -")


def nmap_scan(
    targets: Sequence[str],
    ports: str | None = None,
    *,
    top: int | None = None,
    options: ScanOptions | None = None,
    extra_args: Sequence[str] = (),
) -> ScanResult:
    """Plan `targets` through the scope gate, then run nmap on them (the library's --nmap)."""
    from ppsguard.scan.engine import run_sync
    from ppsguard.scan.plan import plan_scan

    opts = options or ScanOptions()
    plan = run_sync(plan_scan(targets, ports, top=top, options=opts, engine="nmap"))
    return run_nmap(plan, opts, ports, top, extra_args=extra_args)


def run_nmap(
    plan: ScanPlan,
    options: ScanOptions,
    ports: str | None,
    top: int | None = None,
    *,
    extra_args: Sequence[str] = (),
) -> ScanResult:
    """Run the installed nmap (with -sV) on what `plan` admitted and parse its XML."""
    executable = shutil.which("nmap")
    if executable is None:
        raise RuntimeFailure("nmap is not installed (install it, or scan with pps scan --service)")
    commands = nmap_commands(
        plan, options, ports, top, executable=executable, extra_args=extra_args
    )
    plan.gate.clear_to_send("nmap")
    timeout = NMAP_TIMEOUT_S if options.deadline is None else min(NMAP_TIMEOUT_S, options.deadline)
    results = [_run(argv, targets, timeout) for argv, targets in commands]
    names: dict[IPAddress, str] = {}
    for target in plan.targets.entries:
        if target.hostname is not None and target.first is not None:
            names.setdefault(target.first, target.hostname)
    hosts = [
        dataclasses.replace(h, hostname=h.hostname or names.get(h.address))
        if h.address is not None
        else h
        for result in results
        for h in result.hosts
    ]
    hosts += [
        HostResult(None, t.hostname, HostState.UNKNOWN, error=t.error) for t in plan.targets.failed
    ]
    if not results:  # every target excluded or unresolved: nothing was sent
        stats = ScanStats(dt.datetime.now(dt.UTC), 0.0, 0, 0, 0)
        return ScanResult(tuple(hosts), stats, engine="nmap", arguments=options.arguments)
    first = results[0]
    return dataclasses.replace(
        first,
        hosts=tuple(hosts),
        stats=dataclasses.replace(
            first.stats, elapsed_s=round(sum(r.stats.elapsed_s for r in results), 3)
        ),
        arguments=" ; ".join(r.arguments for r in results),
    )
