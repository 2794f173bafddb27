"""What every engine shares: its configuration, the outcome callback, counters, rate pacing, the
queue of probes still to send, the loop's sleep decision and the epoll window of in-flight probes.
"""

from __future__ import annotations

import _socket
import errno
import heapq
import ipaddress
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from ppsguard.model.net import IPAddress
from ppsguard.model.scan import PortState, Reason
from ppsguard.scan.timing import PRESETS, RttEstimator, TimingPreset

# (address, port, state, reason, ttl)
Emit = Callable[[IPAddress, int, PortState, Reason, "int | None"], None]

# what a socket error that stems from an ICMP error says about the port (connect and UDP engines);
# errors in no table give UNKNOWN
ICMP_FILTERED: dict[int, tuple[PortState, Reason]] = {
    errno.EHOSTUNREACH: (PortState.FILTERED, Reason.HOST_UNREACH),
    errno.ENETUNREACH: (PortState.FILTERED, Reason.NET_UNREACH),
    errno.EACCES: (PortState.FILTERED, Reason.ADMIN_PROHIBITED),
    errno.EPERM: (PortState.FILTERED, Reason.ADMIN_PROHIBITED),
}
UNKNOWN = (PortState.FILTERED, Reason.UNKNOWN)


@dataclass(slots=True)
class EngineConfig:
    preset: TimingPreset = field(default_factory=lambda: PRESETS[3])
    max_retries: int | None = None
    min_rate: float | None = None
    max_rate: float | None = None
    window: int | None = None
    deadline: float | None = None  # time.monotonic() value after which nothing new is sent
    stop: threading.Event = field(default_factory=threading.Event)
    host_expired: Callable[[IPAddress, float], bool] | None = None
    intrusive: bool = False  # UDP payloads that try a credential (SNMP "public") allowed

    def min_window(self, preset: TimingPreset, floor: int) -> int:
        """The window never shrinks below what `--min-rate` needs at the shortest timeout."""
        if self.min_rate is None:
            return floor
        return max(floor, int(self.min_rate * preset.min_timeout) + 1)

    @property
    def retries(self) -> int:
        return self.preset.max_retries if self.max_retries is None else self.max_retries

    def stopping(self, now: float) -> bool:
        """True once the scan was stopped or is past its deadline: nothing new is sent."""
        return self.stop.is_set() or (self.deadline is not None and now >= self.deadline)


# (address, port) -> (datagram sent, the answer's first ANSWER_CAP bytes)
UdpAnswers = dict[tuple[IPAddress, int], tuple[bytes, bytes]]
ANSWER_CAP = 4096  # bytes kept of each UDP answer for service identification
MAX_ANSWERS = 65536  # UDP answers kept per scan (memory bound)


@dataclass(slots=True)
class EngineStats:
    probes_sent: int = 0
    retransmissions: int = 0
    rtt: dict[IPAddress, RttEstimator] = field(default_factory=dict)
    # kept only when a dict is given (-sV reuses them instead of discarding what it heard)
    udp_answers: UdpAnswers | None = None

    def keep_answer(self, address: IPAddress, port: int, sent: bytes, data: bytes) -> None:
        if self.udp_answers is not None and len(self.udp_answers) < MAX_ANSWERS:
            self.udp_answers[(address, port)] = (sent, data[:ANSWER_CAP])

    def estimator(self, address: IPAddress, preset: TimingPreset) -> RttEstimator:
        est = self.rtt.get(address)
        if est is None:
            est = self.rtt[address] = RttEstimator(preset)
        return est


class Pacer:
    """Token bucket for --max-rate; `allowance(now)` says how many packets may go out now."""

    def __init__(self, rate: float | None, burst: int = 256) -> None:
        self.rate = rate
        self.burst = float(burst) if rate is None else max(1.0, min(float(burst), rate / 10))
        self.tokens = self.burst
        self.last = time.monotonic()

    def allowance(self, now: float) -> int:
        if self.rate is None:
            return 1 << 30
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        return int(self.tokens)

    def spend(self, n: int = 1) -> None:
        if self.rate is not None:
            self.tokens -= n


class ProbeQueue:
    """The probes still to send: retransmissions first, in order, then fresh ones from the source.

    A fresh probe has attempt 0. The send loops of the connect and SYN engines read `retry` and
    `source` themselves, as `take` does, so that picking a probe costs no call of its own; they
    set `exhausted` when `next(source, None)` gives None (the source is never read again).
    """

    __slots__ = ("exhausted", "retry", "source")

    def __init__(self, probes: Iterable[tuple[IPAddress, int]]) -> None:
        self.retry: deque[tuple[IPAddress, int, int]] = deque()
        self.source: Iterator[tuple[IPAddress, int]] = iter(probes)
        self.exhausted = False

    def take(self) -> tuple[IPAddress, int, int] | None:
        """The next (address, port, attempt) to send, or None when there is none now."""
        if self.retry:
            return self.retry.popleft()
        if not self.exhausted:
            nxt = next(self.source, None)
            if nxt is not None:
                return (nxt[0], nxt[1], 0)
            self.exhausted = True
        return None

    def done(self, outstanding: int) -> bool:
        """Nothing left to send and nothing awaiting an answer."""
        return self.exhausted and not self.retry and not outstanding

    def wait(  # noqa: PLR0917
        self,
        outstanding: int,
        allowed: int,
        idle: float,
        first_timer: float | None,
        now: float,
        pacer: Pacer | None = None,
    ) -> float:
        """How long the loop may sleep for answers: not at all while a probe could go out now
        (something to send, room in the window and, given a pacer, a token), else `idle`, and
        never past the first probe timeout."""
        ready = (bool(self.retry) or not self.exhausted) and outstanding < allowed
        wait = 0.0 if ready and (pacer is None or pacer.allowance(now) > 0) else idle
        if first_timer is not None:
            wait = min(wait, max(0.0, first_timer - now))
        return wait


@dataclass(slots=True)
class Flight:
    """One probe on its own socket, awaiting its answer (connect and UDP engines)."""

    sock: _socket.socket
    address: IPAddress
    port: int
    attempt: int
    issued: float
    estimator: RttEstimator
    seq: int = 0


class Flights:
    """The in-flight probes of a socket-per-probe engine: by file descriptor, registered with one
    epoll, each with a timeout of `issued + estimator.timeout` in a heap."""

    __slots__ = ("by_fd", "ep", "seq", "timers")

    def __init__(self) -> None:
        self.by_fd: dict[int, Flight] = {}
        self.timers: list[tuple[float, int, int]] = []
        self.seq = 0
        self.ep = select.epoll()

    def __len__(self) -> int:
        return len(self.by_fd)

    def add(self, flight: Flight, events: int) -> None:
        self.seq += 1
        flight.seq = self.seq
        fd = flight.sock.fileno()
        self.by_fd[fd] = flight
        self.ep.register(fd, events)
        heapq.heappush(self.timers, (flight.issued + flight.estimator.timeout, self.seq, fd))

    def first_timer(self) -> float | None:
        return self.timers[0][0] if self.timers else None

    def ready(self, wait: float, most: int) -> Iterator[Flight]:
        """Wait up to `wait` seconds; the flights whose sockets had an event, no longer tracked."""
        for fd, _ev in self.ep.poll(wait, most):
            flight = self.by_fd.pop(fd, None)
            if flight is None:
                continue
            self.ep.unregister(fd)
            yield flight

    def expired(self, now: float) -> Iterator[Flight]:
        """The flights whose timeout has passed by `now`, no longer tracked (socket still open)."""
        timers = self.timers
        while timers and timers[0][0] <= now:
            _, seq, fd = heapq.heappop(timers)
            flight = self.by_fd.get(fd)
            if flight is None or flight.seq != seq:
                continue
            del self.by_fd[fd]
            self.ep.unregister(fd)
            yield flight

    def close(self) -> None:
        """Close every socket still in flight and the epoll."""
        for flight in self.by_fd.values():
            flight.sock.close()
        self.by_fd.clear()
        self.ep.close()


def sockaddr(address: IPAddress, port: int) -> tuple[str, int] | tuple[str, int, int, int]:
    if address.version == 6:
        return (str(address), port, 0, 0)
    return (str(address), port)


def family(address: IPAddress) -> socket.AddressFamily:
    return socket.AF_INET6 if address.version == 6 else socket.AF_INET


def source_address(address: IPAddress) -> IPAddress:
    """The local address the kernel would use to reach `address` (no packet is sent)."""
    with socket.socket(family(address), socket.SOCK_DGRAM) as s:
        s.connect(sockaddr(address, 9))
        return ipaddress.ip_address(s.getsockname()[0].split("%")[0])


def send_patiently(send: Callable[..., object], *args: object, tries: int = 50) -> bool:
    """Call `send(*args)` until the kernel takes it: a full socket buffer (ENOBUFS, EAGAIN) is
    waited out 1 ms at a time, up to `tries` times. Any other refusal (EACCES on a broadcast
    address, unreachable) is this one send's answer: False, never an exception."""
    for _ in range(tries):
        try:
            send(*args)
            return True
        except OSError as exc:
            if exc.errno not in (errno.ENOBUFS, errno.EAGAIN):
                return False
            time.sleep(0.001)
    return False
