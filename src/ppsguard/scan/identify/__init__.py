"""Service identification: name the service, product and version behind open ports, with evidence.

`identify_open_ports` identifies every open port of a scan result through the scope gate (the
path `pps scan -sV`, `scan(identify=True)` and the audit take); `identify_services` probes a
given list of ports. The pure parts (probe table, signatures, handshake parsers, escaping,
classification, merging into results) live beside the async engine in `runner.py` and the TLS
reader in `tls.py`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from time import monotonic as _clock

from ppsguard.model.net import IPAddress, Protocol
from ppsguard.model.scan import ScanResult, ServiceInfo
from ppsguard.scan.engines.base import UdpAnswers
from ppsguard.scan.identify.merge import PortKey, merge_services, open_ports
from ppsguard.scan.identify.runner import identify_all
from ppsguard.scan.scope import ScopeGate

__all__ = ["identify_open_ports", "identify_services"]

MAX_CONCURRENCY = 256


async def identify_services(
    targets: Sequence[tuple[IPAddress, int, Protocol]],
    *,
    timeout: float = 2.0,  # noqa: ASYNC109 - a per-port budget, not one deadline for the call
    intrusive: bool = False,
    concurrency: int = MAX_CONCURRENCY,
    rate: float | None = None,
    expect: Mapping[PortKey, str] | None = None,
    answers: UdpAnswers | None = None,
) -> dict[PortKey, ServiceInfo]:
    """Identify the service on each (address, port, protocol); `timeout` is the per-port budget
    in seconds, `intrusive` allows probes such as SNMP community "public", `concurrency` caps
    the open connections, `rate` the connections (and datagrams) started per second, `expect`
    gives the registry's service per target (a mismatch is judged against it, else against the
    port's well-known service), `answers` the UDP answers the port scan already heard (reused:
    one that names the product costs no datagram, one that names less is the fallback). Never
    raises for a port's failure: it becomes data in its ServiceInfo. Callers with a scope to
    honour use `identify_open_ports`, which asks the gate first."""
    return await identify_all(
        targets,
        budget=timeout,
        intrusive=intrusive,
        concurrency=concurrency,
        rate=rate,
        expect=expect,
        answers=answers,
    )


async def identify_open_ports(
    result: ScanResult,
    *,
    gate: ScopeGate | None = None,
    timeout: float = 2.0,  # noqa: ASYNC109 - a per-port budget, not one deadline for the call
    intrusive: bool = False,
    window: int | None = None,
    limit: int | None = None,
    keep_silent: bool = True,
    expect: Mapping[PortKey, str] | None = None,
    answers: UdpAnswers | None = None,
) -> ScanResult:
    """`result` with the service behind each open port identified (at most `limit` ports).

    Silent open|filtered UDP ports are asked too: an answer makes one open, and one that stays
    silent is dropped unless `keep_silent` (pass False when the scan listed them only for this,
    `ScanOptions.keep_open_filtered` without `all_states`). `expect` is the registry's service
    per port, the reference for mismatches; `answers` the UDP answers the scan heard. The gate
    drops excluded addresses, refuses (UsageError) an address outside its scope and refuses on a
    dry run; its -T preset caps the concurrency (with `window`) and its rate ceiling paces the
    connections. The identification time is added to the result's elapsed.
    """
    gate = gate or ScopeGate()
    wanted = open_ports(result, limit)
    admitted = set(gate.admit_addresses(address for address, _, _ in wanted))
    wanted = [key for key in wanted if key[0] in admitted]
    if not wanted:
        return merge_services(result, {}, keep_silent=keep_silent)
    gate.clear_to_send("service identification")
    concurrency = min(MAX_CONCURRENCY, window or gate.preset.max_window)
    started = _clock()
    found = await identify_services(
        wanted,
        timeout=timeout,
        intrusive=intrusive,
        concurrency=concurrency,
        rate=gate.rate_ceiling(admitted),
        expect=expect,
        answers=answers,
    )
    merged = merge_services(result, found, keep_silent=keep_silent)
    elapsed = round(merged.stats.elapsed_s + _clock() - started, 3)
    return dataclasses.replace(merged, stats=dataclasses.replace(merged.stats, elapsed_s=elapsed))
