"""Classification rules of socket records: state names, roles, exposure, address text."""

from __future__ import annotations

import ipaddress

import pytest

from ppsguard.model.net import Protocol
from ppsguard.model.sockets import (
    Exposure,
    Role,
    SocketState,
    exposure_of,
    format_address,
    role_of,
    state_of,
)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("0.0.0.0", Exposure.ANY),
        ("::", Exposure.ANY),
        ("::ffff:0.0.0.0", Exposure.ANY),
        ("127.0.0.1", Exposure.LOOPBACK),
        ("127.1.2.3", Exposure.LOOPBACK),
        ("::1", Exposure.LOOPBACK),
        ("::ffff:127.0.0.1", Exposure.LOOPBACK),
        ("198.18.0.2", Exposure.SPECIFIC),
        ("2001:db8::2", Exposure.SPECIFIC),
        ("::ffff:198.18.0.2", Exposure.SPECIFIC),
        ("fe80::1", Exposure.SPECIFIC),
    ],
)
def test_exposure(address: str, expected: Exposure) -> None:
    assert exposure_of(ipaddress.ip_address(address)) is expected


@pytest.mark.parametrize(
    ("protocol", "number", "state", "role"),
    [
        (Protocol.TCP, 10, SocketState.LISTEN, Role.PASSIVE),
        (Protocol.TCP, 1, SocketState.ESTABLISHED, Role.ACTIVE),
        (Protocol.TCP, 6, SocketState.TIME_WAIT, Role.ACTIVE),
        (Protocol.TCP, 3, SocketState.SYN_RECV, Role.ACTIVE),
        (Protocol.TCP, 12, SocketState.NEW_SYN_RECV, Role.ACTIVE),
        (Protocol.TCP, 7, SocketState.CLOSE, Role.ACTIVE),
        (Protocol.UDP, 7, SocketState.BOUND, Role.PASSIVE),
        (Protocol.UDP, 1, SocketState.CONNECTED, Role.ACTIVE),
        (Protocol.RAW, 7, SocketState.BOUND, Role.PASSIVE),
    ],
)
def test_state_and_role(protocol: Protocol, number: int, state: SocketState, role: Role) -> None:
    assert state_of(protocol, number) is state
    assert role_of(state) is role


@pytest.mark.parametrize(
    ("address", "text"),
    [("::ffff:127.0.0.1", "::ffff:127.0.0.1"), ("::1", "::1"), ("198.18.0.5", "198.18.0.5")],
)
def test_format_address_like_ss(address: str, text: str) -> None:
    assert format_address(ipaddress.ip_address(address)) == text


def test_state_values_are_upper_case_kernel_names() -> None:
    assert all(s.value == s.name for s in SocketState)


def test_fast_record_constructor_equals_the_dataclass() -> None:
    import dataclasses

    from ppsguard.inventory.records import make_record
    from ppsguard.model.net import Family, RangeClass
    from ppsguard.model.sockets import NetnsInfo, Owner, SocketRecord

    values = (
        Protocol.TCP, Family.IPV6, SocketState.LISTEN, Role.PASSIVE,
        ipaddress.ip_address("::"), 22, ipaddress.ip_address("::"), 0, Exposure.ANY, 1234, 0,
        "root", NetnsInfo(1, "x", 2), (Owner(5, "sshd", "/usr/sbin/sshd", ("sshd",), "root"),),
        False, "/system.slice/ssh.service", "ssh.service", RangeClass.SYSTEM, "ssh", False,
    )  # fmt: skip
    assert len(values) == len(dataclasses.fields(SocketRecord))
    fast = make_record(*values)
    assert fast == SocketRecord(*values)
    assert dataclasses.astuple(fast) == dataclasses.astuple(SocketRecord(*values))
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.local_port = 23  # type: ignore[misc]
