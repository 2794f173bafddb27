"""UDP engine: one connected datagram socket per probe in a bounded epoll window.

A reply datagram means open (udp-response); ICMP port-unreachable arrives as ECONNREFUSED on the
connected socket and means closed; other ICMP errors mean filtered; silence after the retries
means open|filtered. Targets rate-limit ICMP errors (Linux: about one per second per source after
a small burst), so closed ports may need retries — `--max-retries` bounds them.
"""

from __future__ import annotations

import errno
import heapq
import select
import socket
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ppsguard.model.net import IPAddress
from ppsguard.model.scan import PortState, Reason
from ppsguard.scan.engines.base import Emit, EngineConfig, EngineStats, Pacer, family, sockaddr
from ppsguard.scan.engines.connect import window_size
from ppsguard.scan.timing import CongestionWindow
from ppsguard.scan.udp_payloads import payload_for

_BATCH = 128
_BACKOFF = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.EAGAIN}
_ERRORS: dict[int, tuple[PortState, Reason]] = {
    errno.ECONNREFUSED: (PortState.CLOSED, Reason.PORT_UNREACH),
    errno.EHOSTUNREACH: (PortState.FILTERED, Reason.HOST_UNREACH),
    errno.ENETUNREACH: (PortState.FILTERED, Reason.NET_UNREACH),
    errno.EACCES: (PortState.FILTERED, Reason.ADMIN_PROHIBITED),
    errno.EPERM: (PortState.FILTERED, Reason.ADMIN_PROHIBITED),
    errno.ENOPROTOOPT: (PortState.FILTERED, Reason.PROTO_UNREACH),
}


@dataclass(slots=True)
class _Flight:
    sock: socket.socket
    address: IPAddress
    port: int
    attempt: int
    issued: float
    seq: int


def run(
    probes: Iterable[tuple[IPAddress, int]], config: EngineConfig, emit: Emit, stats: EngineStats
) -> None:
    preset = config.preset
    cwnd = CongestionWindow(
        window_size(config.window, min(preset.max_window, 1024)),
        minimum=config.min_window(preset, 4),
    )
    pacer = Pacer(config.max_rate)
    source: Iterator[tuple[IPAddress, int]] = iter(probes)
    retry: deque[tuple[IPAddress, int, int]] = deque()
    inflight: dict[int, _Flight] = {}
    timers: list[tuple[float, int, int]] = []
    seq = 0
    exhausted = False
    ep = select.epoll()

    def finish(flight: _Flight, state: PortState, reason: Reason, now: float) -> None:
        flight.sock.close()
        if state is not PortState.FILTERED and flight.attempt == 0:
            stats.estimator(flight.address, preset).sample(now - flight.issued)
        emit(flight.address, flight.port, state, reason, None)

    try:
        while True:
            now = time.monotonic()
            if config.stop.is_set() or (config.deadline is not None and now >= config.deadline):
                break
            budget = min(cwnd.allowed - len(inflight), pacer.allowance(now), _BATCH)
            while budget > 0:
                if retry:
                    address, port, attempt = retry.popleft()
                elif not exhausted:
                    nxt = next(source, None)
                    if nxt is None:
                        exhausted = True
                        continue
                    address, port = nxt
                    attempt = 0
                else:
                    break
                if (
                    attempt == 0
                    and config.host_expired is not None
                    and config.host_expired(address, now)
                ):
                    continue
                sock: socket.socket | None = None
                try:
                    sock = socket.socket(family(address), socket.SOCK_DGRAM | socket.SOCK_NONBLOCK)
                    sock.connect(sockaddr(address, port))
                    sock.send(payload_for(port))
                except OSError as exc:
                    if sock is not None:
                        sock.close()
                    if exc.errno in _BACKOFF:
                        retry.appendleft((address, port, attempt))
                        cwnd.shrink_to(max(4, len(inflight) - 8))
                        break
                    state, reason = _ERRORS.get(
                        exc.errno or 0, (PortState.FILTERED, Reason.UNKNOWN)
                    )
                    emit(address, port, state, reason, None)
                    continue
                stats.probes_sent += 1
                stats.retransmissions += attempt > 0
                pacer.spend()
                budget -= 1
                seq += 1
                assert sock is not None
                fd = sock.fileno()
                inflight[fd] = _Flight(sock, address, port, attempt, now, seq)
                ep.register(fd, select.EPOLLIN | select.EPOLLERR)
                heapq.heappush(timers, (now + stats.estimator(address, preset).timeout, seq, fd))
            if exhausted and not retry and not inflight:
                break
            more = bool(retry) or not exhausted
            wait = 0.0 if more and len(inflight) < cwnd.allowed else 0.05
            if timers:
                wait = min(wait, max(0.0, timers[0][0] - now))
            for fd, _ev in ep.poll(wait, 1024):
                flight = inflight.pop(fd, None)
                if flight is None:
                    continue
                ep.unregister(fd)
                now = time.monotonic()
                try:
                    flight.sock.recv(65535)
                except OSError as exc:
                    state, reason = _ERRORS.get(
                        exc.errno or 0, (PortState.FILTERED, Reason.UNKNOWN)
                    )
                    finish(flight, state, reason, now)
                    continue
                finish(flight, PortState.OPEN, Reason.UDP_RESPONSE, now)
            now = time.monotonic()
            while timers and timers[0][0] <= now:
                _, tseq, fd = heapq.heappop(timers)
                flight = inflight.get(fd)
                if flight is None or flight.seq != tseq:
                    continue
                del inflight[fd]
                ep.unregister(fd)
                flight.sock.close()
                if flight.attempt < config.retries:
                    retry.append((flight.address, flight.port, flight.attempt + 1))
                else:
                    emit(
                        flight.address,
                        flight.port,
                        PortState.OPEN_FILTERED,
                        Reason.NO_RESPONSE,
                        None,
                    )
    finally:
        for flight in inflight.values():
            flight.sock.close()
        ep.close()
