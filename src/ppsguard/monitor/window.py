"""Fixed-window scan detection with Snort-like sensitivity presets, for parity with the field.

Snort 3's port_scan (and psad, and Zeek's old scan.zeek) count in fixed windows: a source that
touches more than N distinct (host, port) targets within W seconds is a scanner. ppsguard's main
detector is TRW (`monitor.trw`), which decides after 4-5 first contacts; this one is offered so
teams can compare with what they run today. Presets (window seconds, distinct targets):

    low     60 s, 50 targets  (few false alarms, slow scans missed)
    medium  90 s, 20 targets
    high   600 s, 10 targets  (catches slow scans, more false alarms)

Counts failed attempts only (as Snort's "error packets" at low sensitivity): a busy client with
answered connections is not a scanner. Bounded: at most `max_sources` sources are tracked (LRU),
each with at most `threshold` targets in memory. Pure.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field

from ppsguard.model.net import IPAddress
from ppsguard.monitor.attempts import Attempt
from ppsguard.monitor.trw import Outcome

PRESETS: dict[str, tuple[float, int]] = {
    "low": (60.0, 50),
    "medium": (90.0, 20),
    "high": (600.0, 10),
}


@dataclass(slots=True)
class _Window:
    times: deque[tuple[float, tuple[IPAddress, int]]] = field(default_factory=deque)
    decided: bool = False


class WindowDetector:
    def __init__(self, preset: str = "medium", *, max_sources: int = 200_000) -> None:
        if preset not in PRESETS:
            raise ValueError(f"unknown window preset {preset!r}: choose {', '.join(PRESETS)}")
        self.preset = preset
        self.window, self.threshold = PRESETS[preset]
        self.max_sources = max_sources
        self.sources: OrderedDict[IPAddress, _Window] = OrderedDict()
        self.evicted_sources = 0

    def observe(self, attempt: Attempt) -> bool:
        """True when this attempt makes its source cross the threshold (once per window)."""
        if attempt.outcome is not Outcome.FAILURE:
            return False
        state = self.sources.get(attempt.remote)
        if state is None:
            state = self.sources[attempt.remote] = _Window()
            if len(self.sources) > self.max_sources:
                self.sources.popitem(last=False)
                self.evicted_sources += 1
        else:
            self.sources.move_to_end(attempt.remote)
        target = (attempt.target, attempt.port)
        while state.times and attempt.time - state.times[0][0] > self.window:
            state.times.popleft()
        if all(seen != target for _, seen in state.times):
            state.times.append((attempt.time, target))
        if len(state.times) > self.threshold:
            state.times.popleft()
        if len(state.times) >= self.threshold and not state.decided:
            state.decided = True
            return True
        if not state.times:
            state.decided = False
        return False
