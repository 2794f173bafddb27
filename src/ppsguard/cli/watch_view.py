"""The live view of `pps watch` on a terminal (stderr): events per second, open alerts, the
latest alerts, and each source's health. Redrawn twice a second by Rich's Live display; every
string that came from outside (messages quoting process names, entry ids) is escaped first.
"""

from __future__ import annotations

import time
from collections import deque

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from ppsguard.model.events import Alert
from ppsguard.monitor.watch import Watch
from ppsguard.report.sanitize import visible


class LiveView:
    def __init__(self, watch: Watch, latest: int = 8) -> None:
        self.watch = watch
        self.latest: deque[Alert] = deque(maxlen=latest)
        self._last = (time.monotonic(), 0)
        self._rate = 0.0

    def add(self, alert: Alert) -> None:
        self.latest.append(alert)

    def __rich__(self) -> RenderableType:
        now = time.monotonic()
        then, count = self._last
        if now - then >= 1.0:
            self._rate = (self.watch.events - count) / (now - then)
            self._last = (now, self.watch.events)
        head = Text(
            f"{self._rate:,.0f} events/s   {self.watch.events:,} events   "
            f"{len(self.watch.detectors.book.alerts)} open alerts   "
            f"{self.watch.detectors.lost_events} lost"
        )
        sources = Text(
            "   ".join(
                f"{h.name}: {'on' if h.running else 'off'}" for h in self.watch.health.values()
            ),
            style="dim",
        )
        table = Table(box=None, show_header=True, pad_edge=False)
        for column in ("last seen", "severity", "kind", "what"):
            table.add_column(column)
        for alert in reversed(self.latest):
            table.add_row(
                time.strftime("%H:%M:%S", time.localtime(alert.last_seen)),
                alert.severity.value,
                alert.kind,
                Text(visible(alert.message)),
            )
        return Group(head, sources, table)
