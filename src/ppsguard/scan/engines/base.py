"""What every engine shares: its configuration, the outcome callback, counters, and rate pacing."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ppsguard.model.net import IPAddress
from ppsguard.model.scan import PortState, Reason
from ppsguard.scan.timing import PRESETS, RttEstimator, TimingPreset

# (address, port, state, reason, ttl)
Emit = Callable[[IPAddress, int, PortState, Reason, "int | None"], None]


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

    def min_window(self, preset: TimingPreset, floor: int) -> int:
        """The window never shrinks below what `--min-rate` needs at the shortest timeout."""
        if self.min_rate is None:
            return floor
        return max(floor, int(self.min_rate * preset.min_timeout) + 1)

    @property
    def retries(self) -> int:
        return self.preset.max_retries if self.max_retries is None else self.max_retries


@dataclass(slots=True)
class EngineStats:
    probes_sent: int = 0
    retransmissions: int = 0
    rtt: dict[IPAddress, RttEstimator] = field(default_factory=dict)

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
