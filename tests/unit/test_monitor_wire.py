"""ctnetlink messages built byte by byte parse into the right values; Community ID agrees with the
reference package on random flows; the socket-table diff is debounced."""

from __future__ import annotations

import ipaddress
import struct

import communityid
from hypothesis import given
from hypothesis import strategies as st

from ppsguard.model.events import Direction, EventKind
from ppsguard.monitor import ctnetlink as ct
from ppsguard.monitor.communityid import community_id
from ppsguard.monitor.conntrack import SETTLE, ConntrackTracker, to_event
from ppsguard.monitor.listeners import ListenerDiff, Listening


def attr(kind: int, payload: bytes, nested: bool = False) -> bytes:
    raw = struct.pack("=HH", 4 + len(payload), kind | (0x8000 if nested else 0)) + payload
    return raw + b"\0" * (-len(raw) % 4)


def tuple_attr(kind: int, src: str, dst: str, sport: int, dport: int, proto: int = 6) -> bytes:
    ip = attr(1, ipaddress.ip_address(src).packed) + attr(2, ipaddress.ip_address(dst).packed)
    pr = (
        attr(1, bytes([proto]))
        + attr(2, struct.pack("!H", sport))
        + attr(3, struct.pack("!H", dport))
    )
    return attr(kind, attr(1, ip, True) + attr(2, pr, True), True)


def message(
    msg: int,
    flags: int,
    state: int | None,
    status: int,
    counters: bool = False,
    *,
    ct_id: int | None = None,
    sport: int = 40000,
    proto: int = 6,
) -> bytes:
    body = struct.pack("=BBH", 2, 0, 0)
    body += tuple_attr(1, "198.18.0.1", "198.18.0.2", sport, 22, proto)
    body += tuple_attr(2, "198.18.0.2", "198.18.0.1", 22, sport, proto)
    body += attr(3, struct.pack("!I", status))
    if state is not None:
        body += attr(4, attr(1, attr(1, bytes([state])), True), True)
    if ct_id is not None:
        body += attr(12, struct.pack("!I", ct_id))
    if counters:
        body += attr(9, attr(1, struct.pack("!Q", 3)) + attr(2, struct.pack("!Q", 180)), True)
        body += attr(10, attr(1, struct.pack("!Q", 2)) + attr(2, struct.pack("!Q", 120)), True)
    kind = (1 << 8) | msg
    return struct.pack("=IHHII", 16 + len(body), kind, flags, 0, 0) + body


LOCAL = frozenset({ipaddress.ip_address("198.18.0.2")})


def test_new_update_destroy_become_opened_answered_closed() -> None:
    data = (
        message(ct.IPCTNL_MSG_CT_NEW, ct.NLM_F_CREATE, ct.TcpState.SYN_SENT, 8)
        + message(ct.IPCTNL_MSG_CT_NEW, 0, ct.TcpState.ESTABLISHED, 8 | 2 | 4)
        + message(ct.IPCTNL_MSG_CT_DELETE, 0, ct.TcpState.TIME_WAIT, 8 | 2 | 4, counters=True)
    )
    messages, done, error = ct.parse_messages(data)
    assert (done, error) == (False, 0)
    assert [m.event for m in messages] == [ct.CtEvent.NEW, ct.CtEvent.UPDATE, ct.CtEvent.DESTROY]
    first = messages[0]
    assert first.orig.source == ipaddress.ip_address("198.18.0.1")
    assert (first.orig.source_port, first.orig.destination_port, first.orig.protocol) == (
        40000,
        22,
        6,
    )
    assert messages[2].orig_packets == 3 and messages[2].reply_bytes == 120
    events = [to_event(m, 1.0, LOCAL) for m in messages]
    assert [e.kind for e in events if e] == [EventKind.OPENED, EventKind.ANSWERED, EventKind.CLOSED]
    assert all(e is not None and e.direction is Direction.INBOUND for e in events)
    assert events[2] is not None and events[2].answered is True


def test_a_reset_before_any_answer_is_refused_and_a_stray_synack_is_backscatter() -> None:
    refused = to_event(
        ct.parse_messages(message(ct.IPCTNL_MSG_CT_NEW, 0, ct.TcpState.CLOSE, 8 | 2))[0][0],
        1.0,
        LOCAL,
    )
    assert refused is not None and refused.kind is EventKind.REFUSED
    stray = to_event(
        ct.parse_messages(message(ct.IPCTNL_MSG_CT_NEW, ct.NLM_F_CREATE, ct.TcpState.SYN_RECV, 8))[
            0
        ][0],
        1.0,
        LOCAL,
    )
    assert stray is not None and stray.initiated is False


@given(st.binary(max_size=600))
def test_garbage_never_raises(data: bytes) -> None:
    ct.parse_messages(data)


addresses = st.one_of(
    st.ip_addresses(v=4, network="198.18.0.0/15"), st.ip_addresses(v=6, network="2001:db8::/32")
)


@given(
    st.sampled_from([6, 17, 132]),
    st.data(),
    st.integers(0, 65535),
    st.integers(0, 65535),
)
def test_community_id_matches_the_reference(
    proto: int, data: st.DataObject, sport: int, dport: int
) -> None:
    src = data.draw(addresses)
    dst = data.draw(
        st.ip_addresses(
            v=src.version, network="198.18.0.0/15" if src.version == 4 else "2001:db8::/32"
        )
    )
    reference = communityid.CommunityID()
    make = {
        6: communityid.FlowTuple.make_tcp,
        17: communityid.FlowTuple.make_udp,
        132: communityid.FlowTuple.make_sctp,
    }[proto]
    expected = reference.calc(make(str(src), str(dst), sport, dport))
    assert community_id(proto, src, dst, sport, dport) == expected
    assert community_id(proto, dst, src, dport, sport) == expected


@given(st.integers(0, 255), st.integers(0, 255))
def test_icmp_community_id_matches_the_reference(icmp_type: int, code: int) -> None:
    src, dst = ipaddress.ip_address("198.18.0.2"), ipaddress.ip_address("198.18.0.1")
    expected = communityid.CommunityID().calc(
        communityid.FlowTuple.make_icmp(str(src), str(dst), icmp_type, code)
    )
    assert community_id(1, src, dst, icmp_type, code) == expected


def listening(port: int, pid: int, process: str = "nginx", address: str = "0.0.0.0") -> Listening:
    return Listening("tcp", ipaddress.ip_address(address), port, process, pid)


def test_listener_diff_is_quiet_on_restart_and_reports_new_widened_and_gone() -> None:
    diff = ListenerDiff(debounce=1.0)
    assert diff.update([listening(80, 10)], 0.0) == []  # baseline
    assert diff.update([], 0.5) == []  # restarting: gone for a moment
    assert diff.update([listening(80, 11)], 0.9) == []  # back with a new pid: silent
    added = diff.update([listening(80, 11), listening(4444, 12, "nc")], 1.0)
    assert [(e.kind, e.resp_port) for e in added] == [(EventKind.LISTENER_ADDED, 4444)]
    widened = diff.update(
        [
            listening(80, 11),
            listening(4444, 12, "nc"),
            listening(5432, 13, "postgres", "127.0.0.1"),
        ],
        1.5,
    )
    assert [e.kind for e in widened] == [EventKind.LISTENER_ADDED]
    wider = diff.update(
        [
            listening(80, 11),
            listening(4444, 12, "nc"),
            listening(5432, 13, "postgres", "127.0.0.1"),
            listening(5432, 14, "postgres"),
        ],
        2.0,
    )
    assert [e.kind for e in wider] == [EventKind.LISTENER_CHANGED]
    assert diff.update([listening(80, 11)], 2.5) == []
    gone = diff.update([listening(80, 11)], 3.6)
    assert sorted(e.resp_port or 0 for e in gone) == [4444, 5432, 5432]
    assert {e.kind for e in gone} == {EventKind.LISTENER_REMOVED}


def test_skip_drops_updates_before_their_tuples_are_decoded() -> None:
    data = message(ct.IPCTNL_MSG_CT_NEW, ct.NLM_F_CREATE, ct.TcpState.SYN_SENT, 8) + message(
        ct.IPCTNL_MSG_CT_NEW, 0, ct.TcpState.TIME_WAIT, 8 | 2 | 4
    )
    asked: list[ct.CtEvent] = []

    def skip(event: ct.CtEvent, _id: int | None, status: int, _state: object) -> bool:
        asked.append(event)
        return event is ct.CtEvent.UPDATE and bool(status & ct.IPS_ASSURED)

    messages, _, _ = ct.parse_messages(data, skip=skip)
    assert [m.event for m in messages] == [ct.CtEvent.NEW]
    assert asked == [ct.CtEvent.NEW, ct.CtEvent.UPDATE]
    assert messages[0].reply is None  # reply tuples only on request
    assert ct.parse_messages(data, replies=True)[0][0].reply is not None


# an update is IPCTNL_MSG_CT_NEW without NLM_F_CREATE
NEW, UPDATE, DELETE = ct.IPCTNL_MSG_CT_NEW, ct.IPCTNL_MSG_CT_NEW, ct.IPCTNL_MSG_CT_DELETE
SEEN, ASSURED = 8 | 2, 8 | 2 | 4
S = ct.TcpState


def short_connection(ct_id: int, sport: int = 40000) -> list[bytes]:
    """The messages conntrack sends for one short TCP connection, in order."""
    return [
        message(NEW, ct.NLM_F_CREATE, S.SYN_SENT, 8, ct_id=ct_id, sport=sport),
        message(UPDATE, 0, S.SYN_RECV, SEEN, ct_id=ct_id, sport=sport),
        message(UPDATE, 0, S.ESTABLISHED, ASSURED, ct_id=ct_id, sport=sport),
        message(UPDATE, 0, S.FIN_WAIT, ASSURED, ct_id=ct_id, sport=sport),
        message(UPDATE, 0, S.CLOSE_WAIT, ASSURED, ct_id=ct_id, sport=sport),
        message(UPDATE, 0, S.LAST_ACK, ASSURED, ct_id=ct_id, sport=sport),
        message(UPDATE, 0, S.TIME_WAIT, ASSURED, ct_id=ct_id, sport=sport),
        message(DELETE, 0, S.TIME_WAIT, ASSURED, True, ct_id=ct_id, sport=sport),
    ]


class SettledOnly(ConntrackTracker):
    """The tracker reading every update except those of a connection answered more than
    `SETTLE` seconds before (the rule before updates were also judged by their TCP state)."""

    def skip(self, event: ct.CtEvent, ct_id: int | None, status: int, state: object) -> bool:
        answered_at = self.settled.get(ct_id) if ct_id is not None else None
        if event is not ct.CtEvent.UPDATE or answered_at is None:
            return False
        return self._now - answered_at >= SETTLE


def test_a_short_connection_gives_three_events_and_five_messages_dropped_unread() -> None:
    tracker = ConntrackTracker(LOCAL)
    events = [e for data in short_connection(7) for e in tracker.events(data, 100.0)]
    assert [e.kind for e in events] == [EventKind.OPENED, EventKind.ANSWERED, EventKind.CLOSED]
    assert (tracker.messages, tracker.skipped) == (8, 5)
    assert events[2].orig_packets == 3 and events[2].resp_bytes == 120


def test_a_reset_right_after_the_answer_is_a_refusal_and_a_late_one_is_dropped() -> None:
    tracker = ConntrackTracker(LOCAL)
    opened = short_connection(1)[:3]
    reset = message(UPDATE, 0, S.CLOSE, ASSURED, ct_id=1)
    kinds = [e.kind for data in [*opened, reset] for e in tracker.events(data, 50.0)]
    assert kinds == [EventKind.OPENED, EventKind.ANSWERED, EventKind.REFUSED]
    late = ConntrackTracker(LOCAL)
    for data in opened:
        late.events(data, 50.0)
    assert late.events(reset, 50.0 + SETTLE + 0.1) == []
    assert late.skipped == 2  # SYN_RECV and the late reset


_MESSAGES = st.tuples(
    st.sampled_from([NEW, DELETE]),
    st.sampled_from([0, ct.NLM_F_CREATE]),
    st.one_of(st.none(), st.sampled_from(list(S))),
    st.sampled_from([0, 8, SEEN, ASSURED]),
    st.integers(1, 4),  # conntrack id: it names one connection (its port and protocol)
    st.floats(0, 3),  # seconds since the previous message
)


@given(st.lists(_MESSAGES, max_size=40))
def test_dropping_updates_unread_changes_no_event(
    sequence: list[tuple[int, int, ct.TcpState | None, int, int, float]],
) -> None:
    """Whatever the messages, the tracker emits exactly what it would reading every update
    but the settled ones."""
    fast, full = ConntrackTracker(LOCAL), SettledOnly(LOCAL)
    now = 10.0
    for msg, flags, state, status, ident, gap in sequence:
        now += gap
        proto = 17 if ident == 4 else 6
        tcp_state = state if proto == 6 else None
        data = message(msg, flags, tcp_state, status, ct_id=ident, sport=40000 + ident, proto=proto)
        assert fast.events(data, now) == full.events(data, now)
    assert fast.messages == len(sequence)
