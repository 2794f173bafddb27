"""UDP engine: one connected datagram socket per probe in a bounded epoll window.

A reply datagram means open (udp-response); ICMP port-unreachable arrives as ECONNREFUSED on the
connected socket and means closed; other ICMP errors mean filtered; silence after the retries
means open|filtered. Targets rate-limit ICMP errors (Linux: about one per second per source after
a small burst), so closed ports may need retries — `--max-retries` bounds them.
"""

from __future__ import annotations

import errno
import select
import socket
import time
from collections.abc import Iterable

from ppsguard.model.net import IPAddress
from ppsguard.model.scan import PortState, Reason
from ppsguard.scan.engines import base
from ppsguard.scan.engines.base import Emit, EngineConfig, EngineStats
from ppsguard.scan.engines.connect import window_size
from ppsguard.scan.timing import CongestionWindow
from ppsguard.scan.udp_payloads import payload_for

_BATCH = 128
_BACKOFF = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.EAGAIN}
_ERRORS: dict[int, tuple[PortState, Reason]] = {
    errno.ECONNREFUSED: (PortState.CLOSED, Reason.PORT_UNREACH),
    **base.ICMP_FILTERED,
    errno.ENOPROTOOPT: (PortState.FILTERED, Reason.PROTO_UNREACH),
}


def run(
    probes: Iterable[tuple[IPAddress, int]], config: EngineConfig, emit: Emit, stats: EngineStats
) -> None:
    preset = config.preset
    cwnd = CongestionWindow(
        window_size(config.window, min(preset.max_window, 1024)),
        minimum=config.min_window(preset, 4),
    )
    pacer = base.Pacer(config.max_rate)
    queue = base.ProbeQueue(probes)
    retry = queue.retry
    flights = base.Flights()

    def finish(flight: base.Flight, state: PortState, reason: Reason, now: float) -> None:
        flight.sock.close()
        if state is not PortState.FILTERED and flight.attempt == 0:
            flight.estimator.sample(now - flight.issued)
        emit(flight.address, flight.port, state, reason, None)

    try:
        while not config.stopping(now := time.monotonic()):
            budget = min(cwnd.allowed - len(flights), pacer.allowance(now), _BATCH)
            while budget > 0:
                probe = queue.take()
                if probe is None:
                    break
                address, port, attempt = probe
                if (
                    attempt == 0
                    and config.host_expired is not None
                    and config.host_expired(address, now)
                ):
                    continue
                sock: socket.socket | None = None
                try:
                    sock = socket.socket(
                        base.family(address), socket.SOCK_DGRAM | socket.SOCK_NONBLOCK
                    )
                    sock.connect(base.sockaddr(address, port))
                    sock.send(payload_for(port, intrusive=config.intrusive))
                except OSError as exc:
                    if sock is not None:
                        sock.close()
                    if exc.errno in _BACKOFF:
                        retry.appendleft((address, port, attempt))
                        cwnd.shrink_to(max(4, len(flights) - 8))
                        break
                    state, reason = _ERRORS.get(exc.errno or 0, base.UNKNOWN)
                    emit(address, port, state, reason, None)
                    continue
                stats.probes_sent += 1
                stats.retransmissions += attempt > 0
                pacer.spend()
                budget -= 1
                assert sock is not None
                estimator = stats.estimator(address, preset)
                flights.add(
                    base.Flight(sock, address, port, attempt, now, estimator),
                    select.EPOLLIN | select.EPOLLERR,
                )
            if queue.done(len(flights)):
                break
            wait = queue.wait(len(flights), cwnd.allowed, 0.05, flights.first_timer(), now)
            for flight in flights.ready(wait, 1024):
                now = time.monotonic()
                try:
                    data = flight.sock.recv(65535)
                except OSError as exc:
                    state, reason = _ERRORS.get(exc.errno or 0, base.UNKNOWN)
                    finish(flight, state, reason, now)
                    continue
                sent = payload_for(flight.port, intrusive=config.intrusive)
                stats.keep_answer(flight.address, flight.port, sent, data)
                finish(flight, PortState.OPEN, Reason.UDP_RESPONSE, now)
            now = time.monotonic()
            for flight in flights.expired(now):
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
        flights.close()
