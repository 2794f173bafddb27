"""Progress observers for `scan()`: the engine reports, the caller renders (Rich bar, JSONL)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address
from typing import Protocol as TypingProtocol

from ppsguard.model.scan import HostResult, PortResult


class ScanObserver(TypingProtocol):
    def on_start(self, total_probes: int, seed: int) -> None: ...

    def on_progress(self, done: int, total: int) -> None: ...

    def on_port(self, address: IPv4Address | IPv6Address, result: PortResult) -> None: ...

    def on_host(self, host: HostResult) -> None: ...


class NullObserver:
    """Ignores everything; subclass and override what you need."""

    def on_start(self, total_probes: int, seed: int) -> None:
        return None

    def on_progress(self, done: int, total: int) -> None:
        return None

    def on_port(self, address: IPv4Address | IPv6Address, result: PortResult) -> None:
        return None

    def on_host(self, host: HostResult) -> None:
        return None


class Eta:
    """An ETA that never goes negative and does not stall at 99%: rate over a sliding window."""

    def __init__(self) -> None:
        self._points: list[tuple[float, int]] = []

    def update(self, now: float, done: int, total: int) -> float | None:
        self._points.append((now, done))
        while len(self._points) > 2 and now - self._points[0][0] > 5.0:
            self._points.pop(0)
        if done >= total:
            return 0.0
        t0, d0 = self._points[0]
        if now - t0 <= 0 or done <= d0:
            return None
        rate = (done - d0) / (now - t0)
        return max(0.0, (total - done) / rate)
