"""The conntrack event source: every connection the kernel tracks, as `Event`s. I/O edge.

`ConntrackSource(local_addresses)` binds the NEW, UPDATE and DESTROY groups of ctnetlink in the
calling thread's network namespace, with a large receive buffer (16 MiB: 2,000 connections in
0.2 s overflowed the default 1 MiB here). A NEW message becomes an OPENED event, an UPDATE that
shows the connection was answered (TCP handshake completed, or a UDP reply) ANSWERED, a TCP update
to CLOSE before the handshake completed REFUSED (a RST from either side: a refused port, or the
half-open probe of a SYN scan), and DESTROY becomes CLOSED with the packet and byte counters.
That logic is `ConntrackTracker` (no socket, tested on messages built byte by byte): updates that
can give no event (five of the seven messages of a short TCP connection) are dropped after one
walk of their top-level attributes, and most of them never reach the socket: a BPF program
(`monitor.ctfilter`) drops them in the kernel. The source reads in batches: once messages are
there it waits `COALESCE` seconds for more, then drains the socket and parses what it read.

Loss is never silent: when the kernel reports an overrun (ENOBUFS), the source counts it, dumps
the whole table on a second socket and emits OPENED for every connection it had not heard of,
then a LOST event with that count ("lost N events, resynchronised from a table dump").

Connection tracking is lazy in the kernel: a namespace whose rule set never mentions `ct` tracks
nothing. `enable_tracking()` loads a tiny table (`inet ppsguard_watch`) with a `ct state`
expression so that tracking starts, and turns on byte/packet accounting
(net.netfilter.nf_conntrack_acct); `disable_tracking()` removes the table again.
"""

from __future__ import annotations

import errno
import functools
import select
import socket
import subprocess
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path

from ppsguard.errors import KernelFeatureMissing, PermissionDenied
from ppsguard.model.events import Direction, Event, EventKind, EvidenceSource
from ppsguard.model.net import IPAddress
from ppsguard.monitor import ctnetlink as ct
from ppsguard.monitor.communityid import community_id
from ppsguard.monitor.ctfilter import attach, update_filter

RECEIVE_BUFFER = 16 << 20
_PROTOCOL_NAMES = {6: "tcp", 17: "udp", 1: "icmp", 58: "ipv6-icmp", 132: "sctp"}
# A TCP attempt counts as answered once the handshake completed. A SYN-ACK that the originator
# answers with RST (the half-open probe of a SYN scan) never gets there: for the scan detectors it
# is a failed first contact, as a refused one is.
_ANSWERED_STATES = {
    ct.TcpState.ESTABLISHED,
    ct.TcpState.FIN_WAIT,
    ct.TcpState.CLOSE_WAIT,
    ct.TcpState.LAST_ACK,
    ct.TcpState.TIME_WAIT,
}
WATCH_TABLE = "ppsguard_watch"
SETTLE = 1.0  # seconds after its answer from which a connection's updates are skipped
_MAX_KNOWN = 1_000_000
# Seconds a source waits, once messages are there, for more to come with them: each wake-up of
# the reader and of the watch loop then handles a batch. benchmarks/watch.py (full run, ~700
# short connections/s, 2026-12-03): 3.90-4.03 s of CPU at 5 ms, 2.64 s at 20 ms, 2.62 s at
# 50 ms. Events are stamped when read, so at most this late; the scan alert's target is 1 s.
COALESCE = 0.02
_DRAIN = 1024  # datagrams read per call at most (a 16 MiB buffer holds ~20,000 messages)


def direction_of(
    orig: IPAddress | None, resp: IPAddress | None, local: frozenset[IPAddress]
) -> Direction:
    if orig is None or resp is None:
        return Direction.UNKNOWN
    o, r = orig in local or orig.is_loopback, resp in local or resp.is_loopback
    if o and r:
        return Direction.LOCAL
    if r:
        return Direction.INBOUND
    if o:
        return Direction.OUTBOUND
    return Direction.TRANSIT


@functools.lru_cache(maxsize=1 << 16)
def _flow_id(
    protocol: int,
    source: IPAddress,
    destination: IPAddress,
    source_port: int | None,
    destination_port: int | None,
) -> str:
    """Community ID, cached: one connection's several messages share it."""
    return community_id(protocol, source, destination, source_port, destination_port)


def to_event(message: ct.CtMessage, now: float, local: frozenset[IPAddress]) -> Event | None:
    """The event a conntrack message records, or None for updates that say nothing new."""
    orig = message.orig
    protocol = _PROTOCOL_NAMES.get(orig.protocol, str(orig.protocol))
    tcp = orig.protocol == 6
    state = message.tcp_state
    answered = (state in _ANSWERED_STATES) if tcp else message.seen_reply
    if tcp and message.status & ct.IPS_ASSURED:
        answered = True
    if message.event in (ct.CtEvent.NEW, ct.CtEvent.DUMP):
        kind = EventKind.OPENED
    elif message.event is ct.CtEvent.DESTROY:
        kind = EventKind.CLOSED
    elif tcp and state is ct.TcpState.CLOSE:
        kind = EventKind.REFUSED  # a reset: refused, or aborted right after the handshake
    elif answered:
        kind = EventKind.ANSWERED
    else:
        return None
    # A TCP connection whose first state is not SYN_SENT was picked up mid-stream (a stray
    # SYN-ACK or RST: backscatter), never an attempt by its `orig` side.
    initiated = not tcp or message.event is not ct.CtEvent.NEW or state is ct.TcpState.SYN_SENT
    cid = None
    if orig.source is not None and orig.destination is not None:
        cid = _flow_id(
            orig.protocol, orig.source, orig.destination, orig.source_port, orig.destination_port
        )
    return Event(
        time=now,
        kind=kind,
        source=EvidenceSource.CONNTRACK,
        protocol=protocol,
        orig=orig.source,
        orig_port=orig.source_port,
        resp=orig.destination,
        resp_port=orig.destination_port,
        direction=direction_of(orig.source, orig.destination, local),
        initiated=initiated,
        answered=answered,
        state=state.name if state is not None else None,
        orig_packets=message.orig_packets,
        orig_bytes=message.orig_bytes,
        resp_packets=message.reply_packets,
        resp_bytes=message.reply_bytes,
        community_id=cid,
        detail="resync" if message.event is ct.CtEvent.DUMP else None,
    )


def _netlink_socket(groups: int, receive_buffer: int) -> socket.socket:
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, ct.NETLINK_NETFILTER)
    except PermissionError as exc:
        raise PermissionDenied("conntrack events need CAP_NET_ADMIN (run as root)") from exc
    except OSError as exc:
        raise KernelFeatureMissing(f"no NETLINK_NETFILTER socket: {exc}") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, 33, receive_buffer)  # SO_RCVBUFFORCE (root)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    try:
        sock.bind((0, groups))
    except PermissionError as exc:
        sock.close()
        raise PermissionDenied("conntrack events need CAP_NET_ADMIN (run as root)") from exc
    return sock


class ConntrackTracker:
    """Conntrack messages to events, one datagram at a time: which connections are live, which
    were already answered, and which updates can be dropped unread. Pure (no socket)."""

    def __init__(self, local_addresses: Iterable[IPAddress]) -> None:
        self.local = frozenset(local_addresses)
        self.messages = 0
        # live connections -> whether ANSWERED was already emitted for them
        self.known: OrderedDict[tuple[object, ...], bool] = OrderedDict()
        # conntrack ids whose ANSWERED was emitted, and when: their later updates say nothing
        # new and are dropped before their tuples are decoded
        self.settled: OrderedDict[int, float] = OrderedDict()
        self.skipped = 0
        self._now = 0.0

    @staticmethod
    def _key(message: ct.CtMessage) -> tuple[object, ...]:
        o = message.orig
        return (o.protocol, o.source, o.source_port, o.destination, o.destination_port)

    def remember(self, message: ct.CtMessage) -> bool:
        """Track live connections; True when this one was not known before."""
        key = self._key(message)
        if message.event is ct.CtEvent.DESTROY:
            self.known.pop(key, None)
            return False
        if key in self.known:
            return False
        self.known[key] = False
        if len(self.known) > _MAX_KNOWN:
            self.known.popitem(last=False)
        return True

    def skip(
        self, event: ct.CtEvent, ct_id: int | None, status: int, state: ct.TcpState | None
    ) -> bool:
        """Whether an update can be dropped before its tuples are decoded, because it would
        give no event: a TCP update neither answered nor closed (SYN_RECV), or any update of
        a connection already answered, except a TCP reset within `SETTLE` seconds of the
        answer (an abort right after the handshake is a refusal). A flood of short TCP
        connections sends seven messages each; five are dropped so."""
        if event is not ct.CtEvent.UPDATE:
            return False
        tcp_unanswered = state not in _ANSWERED_STATES and not status & ct.IPS_ASSURED
        if state is not None and state is not ct.TcpState.CLOSE and tcp_unanswered:
            self.skipped += 1  # a TCP update neither answered nor closed
            return True
        answered_at = self.settled.get(ct_id) if ct_id is not None else None
        if answered_at is None:
            return False
        if state is ct.TcpState.CLOSE and self._now - answered_at < SETTLE:
            return False
        self.skipped += 1
        return True

    def _first_answer(self, message: ct.CtMessage) -> bool:
        """True the first time a connection is seen answered (later states repeat nothing)."""
        key = self._key(message)
        if self.known.get(key):
            return False
        self.known[key] = True
        return True

    def events(self, data: bytes, now: float) -> list[Event]:
        """The events of one datagram of conntrack messages."""
        self._now = now
        before = self.skipped
        messages, _, _ = ct.parse_messages(data, skip=self.skip)
        self.messages += len(messages) + self.skipped - before
        out: list[Event] = []
        for message in messages:
            self.remember(message)
            event = to_event(message, now, self.local)
            if event is None:
                continue
            if event.kind is EventKind.ANSWERED:
                if not self._first_answer(message):
                    continue
                if message.conntrack_id is not None:
                    self.settled[message.conntrack_id] = now
                    if len(self.settled) > _MAX_KNOWN:
                        self.settled.popitem(last=False)
            elif event.kind is EventKind.CLOSED and message.conntrack_id is not None:
                self.settled.pop(message.conntrack_id, None)
            out.append(event)
        return out


class ConntrackSource:
    """Reads conntrack events in the calling thread's namespace (see the module docstring)."""

    name = "conntrack"

    def __init__(
        self, local_addresses: Iterable[IPAddress], *, receive_buffer: int = RECEIVE_BUFFER
    ) -> None:
        groups = (
            (1 << (ct.GROUP_NEW - 1)) | (1 << (ct.GROUP_UPDATE - 1)) | (1 << (ct.GROUP_DESTROY - 1))
        )
        self.tracker = ConntrackTracker(local_addresses)
        self.sock = _netlink_socket(groups, receive_buffer)
        self.overruns = 0
        self.lost = 0
        try:  # updates that give no event are dropped in the kernel (`ctfilter`)
            attach(self.sock, update_filter())
            self.filtered = True
        except OSError:
            self.filtered = False  # the tracker drops them after reading instead

    @property
    def messages(self) -> int:
        """Conntrack messages received, those dropped unread included."""
        return self.tracker.messages

    def read(self, timeout: float, clock: Callable[[], float] = time.time) -> list[Event]:
        """Events available within `timeout` seconds (empty when none arrived), stamped with
        `clock()` once they are there. When messages arrive, the source waits `COALESCE`
        seconds more and reads what came meanwhile too: one wake-up of this thread and of the
        watch loop per batch, not per message."""
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if not ready:
            return []
        if timeout > 0:
            time.sleep(COALESCE)
        now = clock()
        out: list[Event] = []
        received: list[bytes] = []  # read first, then parsed: no system call between parses
        receive = self.sock.recv
        for _ in range(_DRAIN):  # drain what is queued, bounded per call
            try:
                received.append(receive(1 << 16, socket.MSG_DONTWAIT))
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise
                self.overruns += 1
                for data in received:
                    out.extend(self.tracker.events(data, now))
                received = []
                out.extend(self.resync(now))
        for data in received:
            out.extend(self.tracker.events(data, now))
        return out

    def resync(self, now: float) -> list[Event]:
        """After an overrun: dump the table, emit what was missed, and a LOST event."""
        missed: list[Event] = []
        for message in dump_table():
            if self.tracker.remember(message):
                event = to_event(message, now, self.tracker.local)
                if event is not None:
                    missed.append(event)
        self.lost += len(missed)
        missed.append(
            Event(
                time=now,
                kind=EventKind.LOST,
                source=EvidenceSource.CONNTRACK,
                protocol="",
                count=len(missed),
                detail=(
                    f"receive buffer overrun #{self.overruns} (ENOBUFS); resynchronised from a "
                    f"table dump: {len(missed)} connections had been missed"
                ),
            )
        )
        return missed

    def close(self) -> None:
        self.sock.close()


def dump_table() -> list[ct.CtMessage]:
    """Every tracked connection of the calling thread's namespace, IPv4 then IPv6."""
    out: list[ct.CtMessage] = []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, ct.NETLINK_NETFILTER) as sock:
        sock.settimeout(5.0)
        for sequence, family in enumerate((socket.AF_INET, socket.AF_INET6), start=1):
            sock.send(ct.dump_request(family, sequence))
            while True:
                messages, done, error = ct.parse_messages(sock.recv(1 << 20), dump=True)
                out.extend(messages)
                if done or error:
                    break
    return out


def enable_tracking(nft: str = "nft") -> list[str]:
    """Make the kernel track connections here (see the module docstring); what was done."""
    done: list[str] = []
    ruleset = (
        f"table inet {WATCH_TABLE} {{\n"
        "  chain input {\n    type filter hook input priority -310; policy accept;\n"
        "    ct state new counter\n  }\n"
        "  chain output {\n    type filter hook output priority -310; policy accept;\n"
        "    ct state new counter\n  }\n"
        "}\n"
    )
    result = subprocess.run(
        [nft, "-f", "-"], input=ruleset, capture_output=True, text=True, timeout=10, check=False
    )
    if result.returncode == 0:
        done.append(f"loaded table inet {WATCH_TABLE} so that the kernel tracks connections")
    acct = Path("/proc/sys/net/netfilter/nf_conntrack_acct")
    try:
        if acct.read_text().strip() != "1":
            acct.write_text("1\n")
            done.append("turned on conntrack accounting (packet and byte counters)")
    except OSError:
        pass
    return done


def disable_tracking(nft: str = "nft") -> None:
    subprocess.run(
        [nft, "delete", "table", "inet", WATCH_TABLE],
        capture_output=True,
        timeout=10,
        check=False,
    )
