"""IPv6-only, dual-stack, IPv4, loopback and specific binds carry the right exposure; UDP bound
and connected sockets are told apart (real sockets created inside a lab host)."""

from __future__ import annotations

import socket

import pytest

from ppsguard.inventory import collect
from ppsguard.model.sockets import Exposure, Role, SocketState
from ppsguard.testing.pytest_plugin import LabFactory

pytestmark = pytest.mark.lab


def _tcp(address: str, port: int, *, v6only: bool | None = None) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    if v6only is not None:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(v6only))
    sock.bind((address, port))
    sock.listen()
    return sock


def test_exposure_and_udp_states(lab_factory: LabFactory) -> None:
    lab = lab_factory(["a", "b"])
    a, b = lab["a"], lab["b"]
    b.listen(7299, "udp", "0.0.0.0")

    def plant() -> list[socket.socket]:
        made = [
            _tcp("::", 7201, v6only=True),
            _tcp("::", 7202, v6only=False),
            _tcp("0.0.0.0", 7203),
            _tcp("127.0.0.1", 7204),
            _tcp("::1", 7205, v6only=True),
            _tcp(str(a.ipv4), 7206),
            _tcp(str(a.ipv6), 7207),
            _tcp("::ffff:127.0.0.1", 7208, v6only=False),
        ]
        bound = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        bound.bind(("0.0.0.0", 7210))
        connected = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        connected.bind(("0.0.0.0", 7211))
        connected.connect((str(b.ipv4), 7299))
        return [*made, bound, connected]

    sockets = a.call(plant)
    try:
        inventory = collect(netns=a.netns, listening=True, active=True)
        got = {(r.protocol.value, r.local_port): r for r in inventory.records}
        expected = {
            7201: (Exposure.ANY, True),
            7202: (Exposure.ANY, False),
            7203: (Exposure.ANY, None),
            7204: (Exposure.LOOPBACK, None),
            7205: (Exposure.LOOPBACK, True),
            7206: (Exposure.SPECIFIC, None),
            7207: (Exposure.SPECIFIC, True),
            7208: (Exposure.LOOPBACK, False),
        }
        for port, (exposure, v6only) in expected.items():
            record = got[("tcp", port)]
            assert (port, record.exposure, record.v6only) == (port, exposure, v6only)
            assert record.state is SocketState.LISTEN
        bound, connected = got[("udp", 7210)], got[("udp", 7211)]
        assert (bound.state, bound.role) == (SocketState.BOUND, Role.PASSIVE)
        assert (connected.state, connected.role) == (SocketState.CONNECTED, Role.ACTIVE)
        assert (str(connected.remote_address), connected.remote_port) == (str(b.ipv4), 7299)
        listening_only = {r.local_port for r in collect(netns=a.netns).records}
        assert 7210 in listening_only
        assert 7211 not in listening_only
    finally:
        for sock in sockets:
            sock.close()
