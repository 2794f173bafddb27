"""TCP connect engine: a sliding window of non-blocking sockets driven by one epoll loop.

Never one task per port: at most `window` sockets exist at once, each probe's timeout starts when
its connect() is issued, and the loop only waits in epoll. RLIMIT_NOFILE is raised to its hard
limit and sizes the window; EMFILE/ENFILE/EADDRNOTAVAIL shrink the window instead of failing.
Self-connects (loopback: local port == remote port on the same address) are detected and re-probed.
"""

from __future__ import annotations

import _socket
import errno
import resource
import select
import socket
import struct
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from ppsguard.model.net import IPAddress
from ppsguard.model.scan import PortState, Reason
from ppsguard.scan.engines.base import (
    ICMP_FILTERED,
    UNKNOWN,
    Emit,
    EngineConfig,
    EngineStats,
    Flight,
    Flights,
    Pacer,
    ProbeQueue,
    family,
)
from ppsguard.scan.timing import CongestionWindow, RttEstimator

_RESERVED_FDS = 64
_BATCH = 256
_LINGER0 = struct.pack("ii", 1, 0)
_REFUSED = errno.ECONNREFUSED
_INPROGRESS = errno.EINPROGRESS
_ALREADY = errno.EALREADY
_ISCONN = errno.EISCONN
_SPARES = 64
_BACKOFF = {errno.EMFILE, errno.ENFILE, errno.EADDRNOTAVAIL, errno.ENOBUFS, errno.EAGAIN}
_ERRORS: dict[int, tuple[PortState, Reason]] = {
    errno.ECONNREFUSED: (PortState.CLOSED, Reason.CONN_REFUSED),
    errno.ECONNRESET: (PortState.CLOSED, Reason.RESET),
    **ICMP_FILTERED,
    errno.ETIMEDOUT: (PortState.FILTERED, Reason.NO_RESPONSE),
    errno.EPROTO: (PortState.FILTERED, Reason.PROTO_UNREACH),
}


def raise_nofile() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return int(soft)


def window_size(requested: int | None, preset_max: int) -> int:
    limit = max(1, raise_nofile() - _RESERVED_FDS)
    return max(1, min(limit, preset_max if requested is None else requested))


_OPEN = (PortState.OPEN, Reason.SYN_ACK)


_SELF_CONNECT_TRIES = 3


@dataclass(slots=True)
class _Shared:
    """Run-wide bookkeeping of the connect loop."""

    best_try: int = 0  # highest attempt ever answered over TCP: retry only one past it (as nmap)
    self_hits: dict[tuple[IPAddress, int], int] = field(default_factory=dict)

    def self_connected(self, address: IPAddress, port: int) -> bool:
        """Count a self-connect on (address, port); True while it should be probed again.

        The kernel picks a port as our source port only when nothing is bound to it, so a port
        that keeps connecting to itself has no listener: after _SELF_CONNECT_TRIES it is
        reported closed (reason localhost-response) instead of being retried forever.
        """
        key = (address, port)
        hits = self.self_hits[key] = self.self_hits.get(key, 0) + 1
        return hits < _SELF_CONNECT_TRIES


def classify(err: int) -> tuple[PortState, Reason]:
    return _ERRORS.get(err, UNKNOWN)


def _self_connect(sock: _socket.socket) -> bool:
    try:
        return bool(sock.getsockname()[:2] == sock.getpeername()[:2])
    except OSError:
        return False


def _late_answer(sock: _socket.socket) -> int | None:
    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err:
        return int(err)
    try:
        sock.getpeername()
    except OSError:
        return None
    return 0


def run(
    probes: Iterable[tuple[IPAddress, int]], config: EngineConfig, emit: Emit, stats: EngineStats
) -> None:
    """Probe every (address, port) and emit one outcome each (unless stopped or past deadline)."""
    preset = config.preset
    cwnd = CongestionWindow(
        window_size(config.window, preset.max_window), minimum=config.min_window(preset, 8)
    )
    pacer = Pacer(config.max_rate)
    queue = ProbeQueue(probes)
    retry, source = queue.retry, queue.source
    flights = Flights()
    inflight = flights.by_fd
    fast_local = True  # turned off once early checks stop paying (remote targets)
    early_hits = early_tries = 0
    shared = _Shared()
    # per address object: (family, text, is IPv6, RTT estimator, the object)
    info: dict[int, tuple[socket.AddressFamily, str, bool, RttEstimator, IPAddress]] = {}
    new_socket = _socket.socket  # the C type: skips socket.socket's Python-level __init__
    spares: tuple[list[_socket.socket], list[_socket.socket]] = ([], [])  # [IPv4], [IPv6]
    quick = 0
    stream = socket.SOCK_STREAM | socket.SOCK_NONBLOCK
    try:
        while not config.stopping(now := time.monotonic()):
            budget = min(cwnd.allowed - len(inflight), pacer.allowance(now), _BATCH)
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
                if config.host_expired is not None:
                    expired = batch_expired.get(id(address))
                    if expired is None:
                        expired = batch_expired[id(address)] = config.host_expired(address, now)
                    if expired:
                        continue
                meta = info.get(id(address))
                if meta is None:
                    meta = info[id(address)] = (
                        family(address),
                        str(address),
                        address.version == 6,
                        stats.estimator(address, preset),
                        address,
                    )
                fam, host, v6, estimator, _ = meta
                spare = spares[v6]
                if spare:
                    sock = spare.pop()
                else:
                    try:
                        sock = new_socket(fam, stream)
                    except OSError as exc:
                        if exc.errno in _BACKOFF:
                            retry.appendleft((address, port, attempt))
                            cwnd.shrink_to(max(8, len(inflight) - 16))
                            break
                        raise
                target = (host, port, 0, 0) if v6 else (host, port)
                err = sock.connect_ex(target)
                stats.probes_sent += 1
                stats.retransmissions += attempt > 0
                pacer.spend()
                budget -= 1
                if err in _BACKOFF:
                    sock.close()
                    retry.appendleft((address, port, attempt))
                    cwnd.shrink_to(max(8, len(inflight) - 16))
                    break
                if err == _INPROGRESS and fast_local:
                    # loopback/local answers arrive during connect(): a second connect() reports
                    # the outcome (Linux: 0 connected, EALREADY still trying, else the error,
                    # which also resets the socket to unconnected) — skip epoll when done already
                    early = sock.connect_ex(target)
                    early_tries += 1
                    if early != _ALREADY:
                        err = 0 if early == _ISCONN else early
                        early_hits += 1
                    if early_tries == 2048 and early_hits < 512:
                        fast_local = False
                if err == _REFUSED:
                    # closed, answered during connect(): no epoll, no objects. The refused socket
                    # is unconnected again and can take the next probe: no socket() + close()
                    if len(spare) < _SPARES:
                        spare.append(sock)
                    else:
                        sock.close()
                    if attempt == 0:
                        quick += 1
                        if quick & 63 == 1:  # RTT ~0 here; the clamp decides, so sample sparsely
                            estimator.sample(time.monotonic() - now)
                        cwnd.on_answer()
                    else:
                        shared.best_try = max(shared.best_try, attempt)
                        cwnd.on_loss()
                    emit(address, port, PortState.CLOSED, Reason.CONN_REFUSED, None)
                    continue
                flight = Flight(sock, address, port, attempt, now, estimator)
                if err == _INPROGRESS:
                    flights.add(flight, select.EPOLLOUT | select.EPOLLERR | select.EPOLLHUP)
                else:
                    _finish(flight, err, now, config, emit, stats, cwnd, retry, shared)
            if queue.done(len(inflight)):
                break
            wait = queue.wait(len(inflight), cwnd.allowed, 0.05, flights.first_timer(), now)
            for flight in flights.ready(wait, 4096):
                err = flight.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                _finish(flight, err, time.monotonic(), config, emit, stats, cwnd, retry, shared)
            now = time.monotonic()
            for flight in flights.expired(now):
                late = _late_answer(flight.sock)
                if late is not None:  # answered, but the loop had not seen it yet
                    _finish(flight, late, now, config, emit, stats, cwnd, retry, shared)
                    continue
                flight.sock.close()
                if flight.attempt < min(config.retries, shared.best_try + 1):
                    retry.append((flight.address, flight.port, flight.attempt + 1))
                else:
                    emit(flight.address, flight.port, PortState.FILTERED, Reason.NO_RESPONSE, None)
    finally:
        flights.close()
        for sock in (*spares[0], *spares[1]):
            sock.close()


def _finish(  # noqa: PLR0917
    flight: Flight,
    err: int,
    now: float,
    config: EngineConfig,
    emit: Emit,
    stats: EngineStats,
    cwnd: CongestionWindow,
    retry: deque[tuple[IPAddress, int, int]],
    shared: _Shared,
) -> None:
    sock = flight.sock
    try:
        if err == 0:  # close with RST, not FIN: no TIME_WAIT left behind per open port
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER0)
        if err == 0 and _self_connect(sock):
            # connected to ourselves through the ephemeral range: say nothing, probe again
            if shared.self_connected(flight.address, flight.port):
                retry.append((flight.address, flight.port, flight.attempt))
            else:
                emit(flight.address, flight.port, PortState.CLOSED, Reason.LOCALHOST_RESPONSE, None)
            return
        if err in _BACKOFF:
            retry.appendleft((flight.address, flight.port, flight.attempt))
            return
        if err in (errno.ETIMEDOUT,) and flight.attempt < config.retries:
            retry.append((flight.address, flight.port, flight.attempt + 1))
            return
        state, reason = _OPEN if err == 0 else _ERRORS.get(err, UNKNOWN)
        if state is not PortState.FILTERED:  # ICMP-derived errors are rate-limited, not loss
            if flight.attempt == 0:
                flight.estimator.sample(now - flight.issued)
                cwnd.on_answer()
            else:
                shared.best_try = max(shared.best_try, flight.attempt)
                cwnd.on_loss()
        emit(flight.address, flight.port, state, reason, None)
    finally:
        sock.close()
