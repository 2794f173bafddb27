"""Which scanned ports service identification asks, and what its answer does to a port. Pure.

An `open|filtered` UDP port is silence to the discovery's payload (or its empty datagram); the
identification's protocol payloads (DNS, SNMPv3, NTP, IKE, OpenVPN) may still get an answer, and
an answer proves the port open. Ports that stay silent keep their state and are dropped again
unless every state was asked for. It must not do I/O.
"""

from __future__ import annotations

import dataclasses

from ppsguard.model.net import Protocol
from ppsguard.model.scan import Confidence, PortResult, PortState, Reason, ServiceInfo


def asks(port: PortResult) -> bool:
    """True for ports identification should ask: open ones and silent (open|filtered) UDP."""
    return port.state is PortState.OPEN or (
        port.protocol is Protocol.UDP and port.state is PortState.OPEN_FILTERED
    )


def settle(port: PortResult, info: ServiceInfo | None, *, all_states: bool) -> PortResult | None:
    """`port` with what identification found; an answered open|filtered UDP port becomes open
    (reason udp-response); a still silent one is None unless `all_states`."""
    if port.state is not PortState.OPEN_FILTERED or port.protocol is not Protocol.UDP:
        return dataclasses.replace(port, service=info) if info is not None else port
    answered = info is not None and info.confidence is not Confidence.GUESSED
    if answered:
        return dataclasses.replace(
            port, state=PortState.OPEN, reason=Reason.UDP_RESPONSE, service=info
        )
    return port if all_states else None
