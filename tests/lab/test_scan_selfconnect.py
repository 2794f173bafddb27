"""The connect engine's self-connect guard, triggered for real.

In a lab namespace whose ephemeral port range is the single port 40000, a connect() to
127.0.0.1:40000 can only use source port 40000: the socket connects to itself (TCP simultaneous
open). The engine must not report that port open, must not retry it forever, and must still see
a real listener and a closed port in the same run.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from ppsguard.model.scan import PortState, Reason
from ppsguard.scan import ScanOptions, scan
from ppsguard.scan.engines.connect import _self_connect

pytestmark = pytest.mark.lab


def test_self_connect_is_detected_and_bounded(lab_factory: Any) -> None:
    lab = lab_factory(["scanner"])
    host = lab["scanner"]
    host.run(["sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=40000 40000"])
    host.listen(8000, address="127.0.0.1")
    opts = ScanOptions(engine="connect", timing=4, all_states=True, skip_discovery=True)

    def run() -> Any:
        return asyncio.run(scan(["127.0.0.1"], "8000,40000,40001", options=opts))

    result = host.call(run, timeout=120)
    [found] = result.hosts
    states = {p.port: (p.state, p.reason) for p in found.ports}
    assert states[8000] == (PortState.OPEN, Reason.SYN_ACK)
    assert states[40000] == (PortState.CLOSED, Reason.LOCALHOST_RESPONSE)  # guard, not "open"
    assert states[40001] == (PortState.CLOSED, Reason.CONN_REFUSED)
    assert result.stats.probes_sent < 20  # bounded: no endless re-probing of the self-connect


def test_self_connect_decision_on_real_sockets() -> None:
    """A socket bound to port P connecting to its own address:P is a self-connect."""
    with socket.socket() as me:
        me.bind(("127.0.0.1", 0))
        me.connect(me.getsockname())
        assert _self_connect(me)
    with socket.create_server(("127.0.0.1", 0)) as server, socket.socket() as client:
        client.connect(server.getsockname())
        assert not _self_connect(client)
