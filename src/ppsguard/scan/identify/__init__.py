"""Service identification: name the service, product and version behind open ports, with evidence.

`identify_services` is the entry point `pps scan --service` uses. The pure parts (probe table,
signatures, handshake parsers, escaping, classification) live beside the async engine in
`runner.py` and the TLS reader in `tls.py`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ppsguard.model.net import IPAddress, Protocol
from ppsguard.model.scan import ServiceInfo
from ppsguard.scan.identify.runner import identify_all

__all__ = ["identify_services"]


async def identify_services(
    targets: Sequence[tuple[IPAddress, int, Protocol]],
    *,
    timeout: float = 2.0,  # noqa: ASYNC109 - a per-port budget, not one deadline for the call
    intrusive: bool = False,
    concurrency: int = 256,
    expect: Mapping[tuple[IPAddress, int, Protocol], str] | None = None,
) -> dict[tuple[IPAddress, int, Protocol], ServiceInfo]:
    """Identify the service on each (address, port, protocol); `timeout` is the per-port budget
    in seconds, `intrusive` allows probes such as SNMP community "public", `concurrency` caps
    the open connections, `expect` gives the registry's service per target (a mismatch is
    judged against it, else against the port's well-known service). Never raises for a port's
    failure: it becomes data in its ServiceInfo."""
    return await identify_all(
        targets, budget=timeout, intrusive=intrusive, concurrency=concurrency, expect=expect
    )
