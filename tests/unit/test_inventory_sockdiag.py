"""Netlink sock_diag: request layout, message parsing from crafted bytes, and the real kernel
compared with the /proc/net fallback on this machine (loopback sockets only)."""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ppsguard.errors import KernelFeatureMissing
from ppsguard.inventory import collect, sockdiag
from ppsguard.inventory.raw import AddressCache, RawSocket
from ppsguard.model.net import Protocol


def _message(
    family: int, state: int, local: str, lport: int, remote: str, rport: int, uid: int, inode: int
) -> bytes:
    def packed(text: str) -> bytes:
        return ipaddress.ip_address(text).packed.ljust(16, b"\0")

    body = struct.pack("=BBBB", family, state, 0, 0)
    body += struct.pack("!HH", lport, rport) + packed(local) + packed(remote)
    body += struct.pack("=I8sIIIII", 0, b"", 0, 0, 0, uid, inode)
    attribute = b""
    if family == socket.AF_INET6:
        attribute = struct.pack("=HHB3x", 5, sockdiag.INET_DIAG_SKV6ONLY, 1)
    header = struct.pack("=IHHII", 16 + len(body) + len(attribute), 20, 2, 1, 0)
    return header + body + attribute


def _done(code: int = 0) -> bytes:
    return struct.pack("=IHHIIi", 20, sockdiag.NLMSG_DONE, 2, 1, 0, code)


def test_request_layout() -> None:
    request = sockdiag.build_request(socket.AF_INET6, Protocol.TCP, 1 << 10, 7)
    assert len(request) == 16 + 56
    length, kind, flags, sequence, _ = struct.unpack_from("=IHHII", request)
    assert (length, kind, sequence) == (72, 20, 7)
    assert flags == sockdiag.NLM_F_REQUEST | sockdiag.NLM_F_DUMP
    family, protocol, _ext, raw_protocol, states = struct.unpack_from("=BBBBI", request, 16)
    assert (family, protocol, raw_protocol, states) == (socket.AF_INET6, 6, 0, 1 << 10)
    raw = sockdiag.build_request(socket.AF_INET, Protocol.RAW, 1 << 7)
    assert struct.unpack_from("=BBBB", raw, 16)[1::2] == (255, 255)


def test_parse_messages() -> None:
    data = _message(socket.AF_INET, 10, "127.0.0.1", 8080, "0.0.0.0", 0, 1000, 42)
    data += _message(socket.AF_INET6, 1, "::1", 443, "::1", 51000, 0, 43)
    out: list[RawSocket] = []
    assert not sockdiag.parse_messages(data, Protocol.TCP, AddressCache(), out)
    assert sockdiag.parse_messages(_done(), Protocol.TCP, AddressCache(), out)
    assert out[0] == RawSocket(
        Protocol.TCP,
        ipaddress.ip_address("127.0.0.1"),
        8080,
        ipaddress.ip_address("0.0.0.0"),
        0,
        10,
        1000,
        42,
        None,
    )
    assert (str(out[1].local_address), out[1].remote_port, out[1].v6only) == ("::1", 51000, True)


@pytest.mark.parametrize("code", [-2, -95])
def test_done_with_error_means_unsupported(code: int) -> None:
    with pytest.raises(sockdiag.ProtocolNotSupported):
        sockdiag.parse_messages(_done(code), Protocol.SCTP, AddressCache(), [])


def test_truncated_message_is_an_error_not_a_crash() -> None:
    data = _message(socket.AF_INET, 10, "127.0.0.1", 1, "0.0.0.0", 0, 0, 1)
    with pytest.raises(KernelFeatureMissing):
        sockdiag.parse_messages(data[:-8], Protocol.TCP, AddressCache(), [])


def _general_loop_only(data: bytes, monkeypatch: pytest.MonkeyPatch) -> list[RawSocket]:
    with monkeypatch.context() as patch:
        patch.setattr(sockdiag, "_UNIFORM_MIN", 10**9)  # disables the iter_unpack fast path
        out: list[RawSocket] = []
        sockdiag.parse_messages(data, Protocol.TCP, AddressCache(), out)
    return out


def _run(family: int, count: int, first_port: int = 20000) -> bytes:
    local, remote = (
        ("198.18.1.3", "198.18.9.7") if family == socket.AF_INET else ("2001:db8::1", "::")
    )
    return b"".join(
        _message(family, 1 + n % 12, local, first_port + n, remote, 443, n, 1000 + n)
        for n in range(count)
    )


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(_run(socket.AF_INET, 40), id="ipv4-run"),
        pytest.param(_run(socket.AF_INET6, 40), id="ipv6-run-with-attribute"),
        pytest.param(_run(socket.AF_INET, 30) + _done(), id="run-then-done"),
        pytest.param(_run(socket.AF_INET, 12) + _run(socket.AF_INET6, 12), id="family-changes"),
        pytest.param(_run(socket.AF_INET6, 3) + _run(socket.AF_INET, 20), id="short-run-first"),
    ],
)
def test_uniform_fast_path_equals_general_loop(
    data: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast: list[RawSocket] = []
    done = sockdiag.parse_messages(data, Protocol.TCP, AddressCache(), fast)
    assert done == data.endswith(_done())
    assert fast == _general_loop_only(data, monkeypatch)
    assert sockdiag._parse_uniform_run(data, Protocol.TCP, AddressCache(), []) > 0  # it was used
    assert len(fast) == sum(1 for r in fast if r.inode >= 1000) > 0


@given(
    st.lists(
        st.tuples(
            st.sampled_from([socket.AF_INET, socket.AF_INET6]),
            st.integers(1, 12),
            st.integers(0, 65535),
            st.integers(0, 65535),
            st.integers(0, 2**32 - 1),
        ),
        max_size=40,
    ),
    st.booleans(),
)
def test_fast_path_matches_general_loop_on_any_sequence(
    rows: list[tuple[int, int, int, int, int]], done: bool
) -> None:
    data = b"".join(
        _message(family, state, "127.0.0.1" if family == socket.AF_INET else "::1", lport,
                 "0.0.0.0" if family == socket.AF_INET else "::", rport, 0, inode)
        for family, state, lport, rport, inode in rows
    ) + (_done() if done else b"")  # fmt: skip
    fast: list[RawSocket] = []
    finished = sockdiag.parse_messages(data, Protocol.TCP, AddressCache(), fast)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sockdiag, "_UNIFORM_MIN", 10**9)
        slow: list[RawSocket] = []
        sockdiag.parse_messages(data, Protocol.TCP, AddressCache(), slow)
    assert fast == slow
    assert finished == done
    assert [(r.local_port, r.remote_port, r.inode) for r in fast] == [
        (lport, rport, inode) for _, _, lport, rport, inode in rows
    ]


def test_truncated_message_after_a_run_is_an_error() -> None:
    data = _run(socket.AF_INET, 20)
    with pytest.raises(KernelFeatureMissing):
        sockdiag.parse_messages(data[:-8], Protocol.TCP, AddressCache(), [])


@pytest.fixture
def loopback_sockets() -> Iterator[list[socket.socket]]:
    """A TCP listener (v4 and v6), a connection with both ends, a bound and a connected UDP."""
    made: list[socket.socket] = []
    try:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        six = socket.socket(socket.AF_INET6)
        six.bind(("::1", 0))
        six.listen()
        client = socket.create_connection(listener.getsockname(), timeout=5)
        server, _ = listener.accept()
        bound = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        bound.bind(("127.0.0.1", 0))
        connected = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        connected.connect(bound.getsockname())
        made += [listener, six, client, server, bound, connected]
        yield made
    finally:
        for sock in made:
            sock.close()


def _keys(inventory_records: object) -> set[tuple[object, ...]]:
    return {
        (
            r.protocol,
            r.local_address,
            r.local_port,
            r.remote_address,
            r.remote_port,
            r.state,
            r.inode,
        )
        for r in inventory_records  # type: ignore[attr-defined]
        if r.inode  # TIME_WAIT rows of earlier tests may expire between the two reads
    }


def test_netlink_and_procfs_agree(loopback_sockets: list[socket.socket]) -> None:
    ours = {s.getsockname()[1] for s in loopback_sockets}
    for _ in range(3):  # other processes open and close sockets meanwhile: retry a changed table
        netlink = collect(listening=True, active=True, owners=False, source="netlink")
        procfs = collect(listening=True, active=True, owners=False, source="procfs")
        if _keys(netlink.records) == _keys(procfs.records):
            break
    assert netlink.source == "netlink"
    assert procfs.source == "procfs"
    assert _keys(netlink.records) == _keys(procfs.records)
    assert ours <= {r.local_port for r in netlink.records}


def test_listening_filter_is_applied_in_the_kernel(loopback_sockets: list[socket.socket]) -> None:
    sock = sockdiag.open_socket()
    try:
        rows = sockdiag.dump(sock, Protocol.TCP, states=1 << 10)
    finally:
        sock.close()
    assert rows
    assert all(r.state == 10 for r in rows)
    assert loopback_sockets[0].getsockname()[1] in {r.local_port for r in rows}


@pytest.mark.skipif(os.geteuid() != 0, reason="raw sockets need root (CAP_NET_RAW)")
def test_raw_sockets_listed_with_protocol_as_port() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as raw:
        inode = os.fstat(raw.fileno()).st_ino
        inventory = collect(protocols=[Protocol.RAW])
        (record,) = [r for r in inventory.records if r.inode == inode]
        assert (record.local_port, record.state.value, record.service) == (1, "BOUND", None)
        assert [o.pid for o in record.owners] == [os.getpid()]


def test_netlink_and_procfs_agree_on_a_full_datagram() -> None:
    """~120 sockets: whole datagrams go through the iter_unpack fast path on the real kernel."""
    made: list[socket.socket] = []
    try:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        made.append(listener)
        for _ in range(60):
            made.append(socket.create_connection(listener.getsockname(), timeout=5))
            made.append(listener.accept()[0])
        port = listener.getsockname()[1]
        ours = {(s.getsockname()[1], os.fstat(s.fileno()).st_ino) for s in made}
        netlink = collect(listening=True, active=True, owners=False, source="netlink", port=port)
        procfs = collect(listening=True, active=True, owners=False, source="procfs", port=port)
        assert ours <= {(r.local_port, r.inode) for r in netlink.records}
        assert _keys(r for r in netlink.records if r.inode in {i for _, i in ours}) == _keys(
            r for r in procfs.records if r.inode in {i for _, i in ours}
        )
    finally:
        for sock in made:
            sock.close()
