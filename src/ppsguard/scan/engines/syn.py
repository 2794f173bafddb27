"""TCP SYN engine (root): raw sockets, a keyed stateless cookie in the sequence number.

SYNs go out through SOCK_RAW/IPPROTO_TCP sockets (the kernel builds the IP header); replies are
read from the same raw sockets (IPv4 delivers the IP header, IPv6 does not) and from raw ICMP /
ICMPv6 sockets. A reply counts only if its acknowledgement (or the sequence number quoted in an
ICMP error) matches the keyed hash of (destination, source port, destination port): no per-probe
state but the retransmission queue. The local kernel answers SYN-ACKs with RST itself, which
tears the half-open connection down. Unanswered probes are retransmitted — but, as nmap does, only
up to one try past the highest try that has ever been answered, so dropped ports cost two probes,
not `max_retries + 1`.
"""

from __future__ import annotations

import errno
import ipaddress
import secrets
import select
import socket
import time
from collections import deque
from collections.abc import Iterable

from ppsguard.errors import PermissionDenied
from ppsguard.model.net import IPAddress
from ppsguard.model.scan import PortState, Reason
from ppsguard.scan.engines.base import (
    Emit,
    EngineConfig,
    EngineStats,
    Pacer,
    ProbeQueue,
    sockaddr,
    source_address,
)
from ppsguard.scan.engines.packets import (
    MSS_OPTION,
    SEGMENT,
    CookieJar,
    Reply,
    SynBuilder,
    parse_icmp4,
    parse_icmp6,
)
from ppsguard.scan.timing import CongestionWindow, RttEstimator

_RCVBUF = 32 * 1024 * 1024
# a send the kernel refuses for one address is that probe's result, never the scan's end
_SEND_REFUSED = {
    errno.EHOSTUNREACH: Reason.HOST_UNREACH,
    errno.ENETUNREACH: Reason.NET_UNREACH,
    errno.EACCES: Reason.ADMIN_PROHIBITED,
    errno.EPERM: Reason.ADMIN_PROHIBITED,
}
_BATCH = 512


def _raw(family: socket.AddressFamily, proto: int) -> socket.socket:
    try:
        sock = socket.socket(family, socket.SOCK_RAW | socket.SOCK_NONBLOCK, proto)
    except PermissionError:
        raise PermissionDenied(
            "--syn needs root (raw sockets); use --connect for an unprivileged scan"
        ) from None
    for opt in (getattr(socket, "SO_RCVBUFFORCE", 33), socket.SO_RCVBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, opt, _RCVBUF)
            break
        except OSError:
            continue
    return sock


class _Sockets:
    def __init__(self) -> None:
        self.tcp: dict[int, socket.socket] = {}
        self.icmp: dict[int, socket.socket] = {}

    def ensure(self, version: int) -> socket.socket:
        sock = self.tcp.get(version)
        if sock is None:
            if version == 4:
                sock = self.tcp[4] = _raw(socket.AF_INET, socket.IPPROTO_TCP)
                self.icmp[4] = _raw(socket.AF_INET, socket.IPPROTO_ICMP)
            else:
                sock = self.tcp[6] = _raw(socket.AF_INET6, socket.IPPROTO_TCP)
                self.icmp[6] = _raw(socket.AF_INET6, socket.IPPROTO_ICMPV6)
        return sock

    def all(self) -> list[socket.socket]:
        return [*self.tcp.values(), *self.icmp.values()]

    def close(self) -> None:
        for sock in self.all():
            sock.close()


def run(
    probes: Iterable[tuple[IPAddress, int]], config: EngineConfig, emit: Emit, stats: EngineStats
) -> None:
    """Probe every (address, port) with a SYN and emit one outcome each."""
    preset = config.preset
    jar = CookieJar(secrets.token_bytes(16))
    sport = 40000 + secrets.randbelow(20000)
    builders: dict[bytes, SynBuilder] = {}
    parser = SynBuilder(jar, ipaddress.IPv4Address(0), 4, sport)
    socks = _Sockets()
    # no file descriptor per probe: the window only bounds the retransmission queue
    cwnd = CongestionWindow(
        config.window or preset.max_window * 4, minimum=config.min_window(preset, 16)
    )
    pacer = Pacer(config.max_rate, burst=_BATCH)
    queue = ProbeQueue(probes)
    retry, source = queue.retry, queue.source
    # (packed address, port) -> (attempt, sent at, address object)
    outstanding: dict[tuple[bytes, int], tuple[int, float, IPAddress]] = {}
    timers: deque[tuple[float, bytes, int, int]] = deque()
    # per address object: (packed, builder, sockaddr, rtt estimator, the object itself)
    info: dict[
        int,
        tuple[
            bytes, int, int, tuple[str, int] | tuple[str, int, int, int], RttEstimator, IPAddress
        ],
    ] = {}
    pack = SEGMENT.pack
    best_try = 0  # highest attempt number that was ever answered
    buffer = bytearray(65536)
    v6_cache: dict[str, bytes] = {}
    ports = jar.ports

    def answer(
        key: tuple[bytes, int], state: PortState, reason: Reason, ttl: int | None, now: float
    ) -> None:
        nonlocal best_try
        entry = outstanding.pop(key, None)
        if entry is None:
            return
        attempt, sent, address = entry
        # ICMP errors are rate-limited by design (and mean "filtered" either way): a late one is
        # not evidence of loss, so only TCP answers tune the window and the retry limit
        if state is not PortState.FILTERED:
            best_try = max(best_try, attempt)
            if attempt == 0:
                stats.estimator(address, preset).sample(now - sent)
                cwnd.on_answer()
            else:
                cwnd.on_loss()
        emit(address, key[1], state, reason, ttl)

    def handle(reply: Reply | None, now: float) -> None:
        if reply is not None and reply.cookie_ok:
            answer((reply.address.packed, reply.port), reply.state, reply.reason, reply.ttl, now)

    def tcp_reply(
        seg: memoryview | bytearray, off: int, src: bytes, ttl: int | None, now: float
    ) -> None:
        if len(seg) < off + 20 or ((seg[off + 2] << 8) | seg[off + 3]) != sport:
            return
        flags = seg[off + 13]
        if flags & 0x12 == 0x12:
            state, reason = PortState.OPEN, Reason.SYN_ACK
        elif flags & 0x04:
            state, reason = PortState.CLOSED, Reason.RESET
        else:
            return
        rport = (seg[off] << 8) | seg[off + 1]
        ack = int.from_bytes(seg[off + 8 : off + 12], "big")
        if ack != ((jar.host(src) ^ ports[rport]) + 1) & 0xFFFFFFFF:
            return
        answer((src, rport), state, reason, ttl, now)

    def drain(now: float) -> None:
        for version, sock in socks.tcp.items():
            while True:
                try:
                    n, addr = sock.recvfrom_into(buffer)
                except (BlockingIOError, InterruptedError):
                    break
                if version == 4:
                    if n < 40 or buffer[9] != 6:
                        continue
                    tcp_reply(buffer, (buffer[0] & 0x0F) * 4, bytes(buffer[12:16]), buffer[8], now)
                else:
                    src = v6_cache.get(addr[0])
                    if src is None:
                        src = v6_cache[addr[0]] = ipaddress.IPv6Address(
                            str(addr[0]).split("%")[0]
                        ).packed
                    tcp_reply(memoryview(buffer)[:n], 0, src, None, now)
        for version, sock in socks.icmp.items():
            while True:
                try:
                    n, _addr = sock.recvfrom_into(buffer)
                except (BlockingIOError, InterruptedError):
                    break
                data = bytes(buffer[:n])
                handle(
                    parse_icmp4(data, parser) if version == 4 else parse_icmp6(data, parser), now
                )

    try:
        while not config.stopping(now := time.monotonic()):
            budget = min(cwnd.allowed - len(outstanding), pacer.allowance(now), _BATCH)
            batch_timeouts: dict[int, float] = {}
            batch_expired: dict[int, bool] = {}  # host deadline looked up once per host per batch
            while budget > 0:
                if retry:  # ProbeQueue.take, inline: no call per probe
                    address, port, attempt = retry.popleft()
                elif (nxt := next(source, None)) is not None:
                    address, port = nxt
                    attempt = 0
                else:
                    queue.exhausted = True
                    break
                if attempt == 0 and config.host_expired is not None:
                    expired = batch_expired.get(id(address))
                    if expired is None:
                        expired = batch_expired[id(address)] = config.host_expired(address, now)
                    if expired:
                        continue
                meta = info.get(id(address))
                if meta is None:
                    packed = address.packed
                    try:  # EACCES: a broadcast address; ENETUNREACH: no route
                        src_address = source_address(address)
                    except OSError as exc:
                        reason = _SEND_REFUSED.get(exc.errno or 0, Reason.UNKNOWN)
                        emit(address, port, PortState.FILTERED, reason, None)
                        continue
                    builder = builders.get(packed) or SynBuilder(
                        jar, src_address, address.version, sport
                    )
                    builders[packed] = builder
                    builder.segment(address, 0)  # primes the checksum base
                    meta = (packed, jar.host(packed), builder.base(packed), sockaddr(address, 0),
                            stats.estimator(address, preset), address)  # fmt: skip
                    info[id(address)] = meta
                    socks.ensure(address.version)
                packed, hostval, csum_base, dest, estimator, _ = meta
                timeout = batch_timeouts.get(id(address))
                if timeout is None:
                    timeout = batch_timeouts[id(address)] = estimator.timeout
                # the segment of SynBuilder.segment_packed, inlined for speed (unit-tested equal)
                seq = hostval ^ ports[port]
                total = csum_base + port + (seq >> 16) + (seq & 0xFFFF)
                total = (total & 0xFFFF) + (total >> 16)
                total = (total & 0xFFFF) + (total >> 16)
                segment = (
                    pack(sport, port, seq, 0, 0x60, 0x02, 1024, ~total & 0xFFFF, 0) + MSS_OPTION
                )
                try:
                    socks.tcp[address.version].sendto(segment, dest)
                except OSError as exc:
                    if exc.errno in (errno.ENOBUFS, errno.EAGAIN):
                        retry.appendleft((address, port, attempt))
                        break
                    reason = _SEND_REFUSED.get(exc.errno or 0, Reason.NET_UNREACH)
                    emit(address, port, PortState.FILTERED, reason, None)
                    continue
                stats.probes_sent += 1
                stats.retransmissions += attempt > 0
                pacer.spend()
                budget -= 1
                outstanding[(packed, port)] = (attempt, now, address)
                timers.append((now + timeout, packed, port, attempt))
            if queue.done(len(outstanding)):
                break
            # sleep only when nothing may be sent now: a batch that used its whole budget of
            # _BATCH is no reason to wait (that wait cost ~20 ms per 512 retransmissions)
            first_timer = timers[0][0] if timers else None
            wait = queue.wait(len(outstanding), cwnd.allowed, 0.02, first_timer, now, pacer)
            readable = socks.all()
            if readable:
                select.select(readable, [], [], wait)
            now = time.monotonic()
            drain(now)
            # timers are appended in send order; timeouts only vary slowly, so the head is due first
            while timers and timers[0][0] <= now:
                _, packed, port, attempt = timers.popleft()
                entry = outstanding.get((packed, port))
                if entry is None or entry[0] != attempt:
                    continue
                del outstanding[(packed, port)]
                if attempt < min(config.retries, best_try + 1):
                    retry.append((entry[2], port, attempt + 1))
                else:
                    emit(entry[2], port, PortState.FILTERED, Reason.NO_RESPONSE, None)
    finally:
        socks.close()
