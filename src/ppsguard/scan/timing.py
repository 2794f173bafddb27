"""Adaptive timing: RTT estimation (RFC 6298 SRTT/RTTVAR), a congestion window, and -T presets.

Pure arithmetic, no clocks: engines feed measured samples and events in.

Presets (`-T0`..`-T5`): initial probe timeout, its clamps, retries, window and rate limits.

| preset | initial | min    | max    | retries | max window | max rate (pkt/s) | host deadline |
|--------|---------|--------|--------|---------|------------|------------------|---------------|
| T0     | 5.0 s   | 1.0 s  | 10.0 s | 10      | 1          | 1                | none          |
| T1     | 5.0 s   | 1.0 s  | 10.0 s | 10      | 4          | 10               | none          |
| T2     | 1.0 s   | 0.3 s  | 10.0 s | 10      | 64         | 100              | none          |
| T3     | 1.0 s   | 0.1 s  | 5.0 s  | 3       | 4096       | unlimited*       | none          |
| T4     | 0.5 s   | 0.1 s  | 1.25 s | 2       | 16384      | unlimited*       | 15 min        |
| T5     | 0.25 s  | 0.05 s | 0.3 s  | 1       | 16384      | unlimited*       | 5 min         |

*For non-local targets (not loopback, not in a directly attached lab/private range) the default
`--max-rate` is 5,000 packets/s unless given explicitly. T3 is the default.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TimingPreset:
    name: str
    initial_timeout: float
    min_timeout: float
    max_timeout: float
    max_retries: int
    max_window: int
    max_rate: float | None
    host_timeout: float | None


PRESETS: dict[int, TimingPreset] = {
    0: TimingPreset("paranoid", 5.0, 1.0, 10.0, 10, 1, 1.0, None),
    1: TimingPreset("sneaky", 5.0, 1.0, 10.0, 10, 4, 10.0, None),
    2: TimingPreset("polite", 1.0, 0.3, 10.0, 10, 64, 100.0, None),
    3: TimingPreset("normal", 1.0, 0.1, 5.0, 3, 4096, None, None),
    4: TimingPreset("aggressive", 0.5, 0.1, 1.25, 2, 16384, None, 900.0),
    5: TimingPreset("insane", 0.25, 0.05, 0.3, 1, 16384, None, 300.0),
}
DEFAULT_REMOTE_RATE = 5000.0


class RttEstimator:
    """RFC 6298 smoothed RTT; `timeout` = SRTT + 4·RTTVAR, clamped to the preset's bounds."""

    def __init__(self, preset: TimingPreset) -> None:
        self.preset = preset
        self.srtt: float | None = None
        self.rttvar = 0.0
        self.samples = 0

    def sample(self, rtt: float) -> None:
        rtt = max(rtt, 0.0)
        self.samples += 1
        if self.srtt is None:
            self.srtt, self.rttvar = rtt, rtt / 2
            return
        self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - rtt)
        self.srtt = 0.875 * self.srtt + 0.125 * rtt

    @property
    def timeout(self) -> float:
        p = self.preset
        if self.srtt is None:
            return p.initial_timeout
        return min(p.max_timeout, max(p.min_timeout, self.srtt + 4 * self.rttvar))


class CongestionWindow:
    """How many probes may be outstanding. Grows on answers, halves on evidence of loss.

    Loss means a probe answered only after a retransmission (its first copy was lost). A port
    that never answers is filtered, not loss — treating it as loss is what makes scans of
    firewalled hosts crawl.
    """

    def __init__(self, maximum: int, initial: int | None = None, minimum: int = 1) -> None:
        self.maximum = max(1, maximum)
        self.minimum = max(1, min(minimum, self.maximum))
        self.size = float(min(self.maximum, initial if initial is not None else self.maximum))
        self.losses = 0

    def on_answer(self) -> None:
        if self.size < self.maximum:
            self.size = min(float(self.maximum), self.size + 1.0)

    def on_loss(self) -> None:
        self.losses += 1
        self.size = max(float(self.minimum), self.size / 2)

    def shrink_to(self, limit: int) -> None:
        self.maximum = max(self.minimum, limit)
        self.size = min(self.size, float(self.maximum))

    @property
    def allowed(self) -> int:
        return max(self.minimum, int(self.size))
