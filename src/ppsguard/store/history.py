"""When each finding and each door opened and closed, from a host's runs in time order. Pure.

A key present in run i and absent in run i+1 closed at run i+1's time; absent then present, it
opened. A key present in the first run considered opened "at or before" that run (`since_first`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ppsguard.digits import decimal


@dataclass(slots=True)
class Interval:
    opened: dt.datetime
    closed: dt.datetime | None = None
    since_first: bool = False  # already present in the first run considered

    def seconds(self, now: dt.datetime) -> float:
        return ((self.closed or now) - self.opened).total_seconds()


@dataclass(slots=True)
class Track:
    """One finding or door over time: what it is, and its open intervals."""

    key: Hashable
    info: dict[str, Any]
    intervals: list[Interval] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return bool(self.intervals) and self.intervals[-1].closed is None


def track(
    runs: Sequence[tuple[int, dt.datetime]],
    present: Mapping[int, Mapping[Hashable, dict[str, Any]]],
) -> list[Track]:
    """Intervals per key over `runs` (run id, time; in time order); `present[run]` maps each key
    seen in that run to what describes it (the latest description wins)."""
    tracks: dict[Hashable, Track] = {}
    open_now: set[Hashable] = set()
    for index, (run_id, when) in enumerate(runs):
        here = present.get(run_id, {})
        for key, info in here.items():
            item = tracks.get(key)
            if item is None:
                item = tracks[key] = Track(key, dict(info))
            else:
                item.info = dict(info)
            if key not in open_now:
                item.intervals.append(Interval(when, since_first=index == 0))
                open_now.add(key)
        for key in [k for k in open_now if k not in here]:
            tracks[key].intervals[-1].closed = when
            open_now.discard(key)
    return sorted(tracks.values(), key=lambda t: (t.intervals[0].opened, str(t.key)))


def events(tracks: Sequence[Track], what: str) -> list[dict[str, Any]]:
    """Every opening and closing as one event row, oldest first."""
    rows: list[dict[str, Any]] = []
    for t in tracks:
        for interval in t.intervals:
            if not interval.since_first:
                rows.append({"time": interval.opened, "event": "opened", "what": what, **t.info})
            if interval.closed is not None:
                rows.append({"time": interval.closed, "event": "closed", "what": what, **t.info})
    rows.sort(key=lambda r: (r["time"], r["event"] != "closed"))
    return rows


def duration_text(seconds: float) -> str:
    """Seconds as a short human duration: 45s, 12m, 3h05m, 2d04h."""
    total = int(max(0, seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def parse_duration(text: str) -> dt.timedelta | None:
    """`90d`, `12h`, `30m`, `45s`, `2w` as a timedelta; None if it is not one."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    text = text.strip().lower()
    count = decimal(text[:-1])
    if len(text) < 2 or text[-1] not in units or count is None:
        return None
    return dt.timedelta(seconds=count * units[text[-1]])
