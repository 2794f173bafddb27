"""Put what service identification found into a scan result — the one implementation that
`pps scan -sV`, the library's `scan(identify=True)` and the audit's outside view share.

Pure: takes a ScanResult and the identified services, returns a new ScanResult. It must not
probe anything (`scan.identify.identify_open_ports` does that, through the scope gate).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from ppsguard.model.net import IPAddress, Protocol
from ppsguard.model.scan import Confidence, PortResult, ScanResult, ServiceInfo
from ppsguard.scan.identify.ports import asks, settle

PortKey = tuple[IPAddress, int, Protocol]


def open_ports(result: ScanResult, limit: int | None = None) -> list[PortKey]:
    """(address, port, protocol) of every port identification asks (`ports.asks`: open ones and
    silent open|filtered UDP), in result order, at most `limit`."""
    wanted = [
        (h.address, p.port, p.protocol)
        for h in result.hosts
        for p in h.ports
        if asks(p) and h.address is not None
    ]
    return wanted if limit is None else wanted[:limit]


def merge_service(port: PortResult, found: ServiceInfo | None) -> ServiceInfo | None:
    """The identified service; the port-number guess keeps its name when nothing matched."""
    if found is None:
        return port.service
    if found.name is None and port.service is not None and port.service.name:
        return dataclasses.replace(found, name=port.service.name, confidence=Confidence.GUESSED)
    return found


def merge_services(
    result: ScanResult, found: Mapping[PortKey, ServiceInfo], *, keep_silent: bool = True
) -> ScanResult:
    """`result` with every identified port's service merged in (`merge_service`); an answered
    open|filtered UDP port becomes open (`ports.settle`, the host's summary follows), a silent
    one is dropped unless `keep_silent` (the scan listed it only for identification to ask)."""
    if not found and keep_silent:
        return result
    hosts = []
    for host in result.hosts:
        address = host.address
        if address is None:  # a name that did not resolve has no ports
            hosts.append(host)
            continue
        ports = []
        summary = dict(host.summary)
        for p in host.ports:
            info = merge_service(p, found.get((address, p.port, p.protocol)))
            settled = settle(p, info, all_states=keep_silent)
            if settled is None:
                continue
            ports.append(settled)
            if settled.state is not p.state:  # an answer proved an open|filtered port open
                summary[p.state.value] = summary.get(p.state.value, 1) - 1
                summary[settled.state.value] = summary.get(settled.state.value, 0) + 1
        summary = {state: count for state, count in summary.items() if count > 0}
        hosts.append(dataclasses.replace(host, ports=tuple(ports), summary=summary))
    return dataclasses.replace(result, hosts=tuple(hosts))
