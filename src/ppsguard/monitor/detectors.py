"""All detectors behind one call: events in, alerts to announce out.

    detectors = Detectors(expectations, scan_detector="trw")
    for alert in detectors.feed(event): sink.send(alert)
    for alert in detectors.tick(now): ...      # timeouts and rate-limited updates

Scan detection (`scan_detector`): "trw" runs TRW per remote host and its per-(host, port) variant
side by side (whichever decides first raises the alert; see `monitor.trw`), "low" / "medium" /
"high" the fixed-window presets of `monitor.window`. A scan alert names the scanner, the targets,
the ports touched, first and last seen and the probe count, and is updated while the scan goes
on. Registry findings come from `monitor.expectations` when a registry is given. `stats` counts
events per kind and what the bounded tables evicted. Pure: every time comes from the events.
"""

from __future__ import annotations

from collections import Counter

from ppsguard.model.events import Alert, Event, EventKind
from ppsguard.model.findings import Severity
from ppsguard.monitor.alerts import AlertBook
from ppsguard.monitor.attempts import Attempt, AttemptTracker
from ppsguard.monitor.expectations import Expectations
from ppsguard.monitor.trw import PerPortTrw, Trw, Verdict
from ppsguard.monitor.window import PRESETS, WindowDetector

SCAN_DETECTORS = ("trw", *PRESETS)
_MAX_LISTED_PORTS = 4096


class Detectors:
    def __init__(
        self,
        expectations: Expectations | None = None,
        *,
        scan_detector: str = "trw",
        answer_timeout: float = 3.0,
        max_sources: int = 100_000,
        update_interval: float = 1.0,
    ) -> None:
        if scan_detector not in SCAN_DETECTORS:
            raise ValueError(f"unknown scan detector {scan_detector!r}")
        self.expectations = expectations
        self.scan_detector = scan_detector
        self.attempts = AttemptTracker(answer_timeout=answer_timeout)
        self.trw = Trw(max_sources=max_sources)
        self.trw_ports = PerPortTrw(max_sources=max_sources)
        self.window = (
            WindowDetector(scan_detector, max_sources=max_sources)
            if scan_detector in PRESETS
            else None
        )
        self.book = AlertBook(update_interval=update_interval)
        self.stats: Counter[str] = Counter()
        self.lost_events = 0

    def feed(self, event: Event) -> list[Alert]:
        """The alerts to announce now because of this event."""
        self.stats[event.kind.value] += 1
        out: list[Alert] = []
        if event.kind is EventKind.LOST:
            self.lost_events += event.count
            alert, announce = self.book.raise_or_update(
                key=f"lost|{event.source.value}",
                kind="events-lost",
                severity=Severity.MEDIUM,
                message=f"{event.source.value}: lost {self.lost_events} events ({event.detail})",
                time=event.time,
                count=self.lost_events,
                evidence=event.detail or "",
            )
            return [alert] if announce else []
        if self.expectations is not None:
            for finding in self.expectations.check(event):
                alert, announce = self.book.raise_or_update(
                    key=finding.key,
                    kind=finding.kind,
                    severity=finding.severity,
                    message=finding.message,
                    time=event.time,
                    remote=finding.remote,
                    local=finding.local,
                    ports=() if finding.port is None else (finding.port,),
                    protocol=finding.protocol,
                    entry=finding.entry,
                    evidence=f"{event.source.value} {event.kind.value}"
                    + (f" state {event.state}" if event.state else ""),
                )
                if announce:
                    out.append(alert)
        for attempt in self.attempts.feed(event):
            out.extend(self._scan(attempt))
        return out

    def observe(self, attempt: Attempt) -> list[Alert]:
        """An attempt whose outcome is already known (flow records): the scan detectors only."""
        return self._scan(attempt)

    def tick(self, now: float) -> list[Alert]:
        """Fail attempts that timed out, and announce rate-limited updates that are due."""
        out: list[Alert] = []
        for attempt in self.attempts.expire(now):
            out.extend(self._scan(attempt))
        seen = {alert.key for alert in out}
        out.extend(alert for alert in self.book.due(now) if alert.key not in seen)
        return out

    def flush(self) -> list[Alert]:
        return self.book.flush()

    def _scan(self, attempt: Attempt) -> list[Alert]:
        self.stats["attempts"] += 1
        if self.window is not None:
            crossed = self.window.observe(attempt)
            key = f"scan|{attempt.remote}"
            if not crossed and key not in self.book.alerts:
                return []
            return self._scan_alert(
                attempt, probes=None, how=f"window {self.window.preset}", key=key
            )
        host = self.trw.observe(
            attempt.time, attempt.remote, attempt.target, attempt.port, attempt.outcome
        )
        port = self.trw_ports.observe(
            attempt.time, attempt.remote, attempt.target, attempt.port, attempt.outcome
        )
        decided = [d for d in (host, port) if d is not None and d.verdict is Verdict.SCANNER]
        if not decided:
            return []
        walk = max((d.walk for d in decided), key=lambda w: w.attempts)
        key = f"scan|{attempt.remote}"
        ports = None  # the ports touched so far matter only to a new alert (a set per attempt
        if key not in self.book.alerts:  # of a long scan was quadratic)
            touched = self.trw_ports.walks.get(attempt.remote)
            ports = touched.ports if touched is not None else {attempt.port}
        return self._scan_alert(
            attempt, probes=walk.attempts, how="TRW", first_seen=walk.first_seen, ports=ports,
            key=key,
        )  # fmt: skip

    def _scan_alert(
        self,
        attempt: Attempt,
        *,
        probes: int | None,
        how: str,
        first_seen: float | None = None,
        ports: set[int] | None = None,
        key: str,
    ) -> list[Alert]:
        existing = self.book.alerts.get(key)
        count = probes if probes is not None else (existing.count + 1 if existing else 1)
        if existing is not None and probes is not None:
            count = max(existing.count + 1, probes)
        touched: set[int] = {attempt.port}
        if existing is None and ports:
            touched = set(sorted(ports)[:_MAX_LISTED_PORTS])
        elif existing is not None and len(existing.ports) >= _MAX_LISTED_PORTS:
            touched = set()
        alert, announce = self.book.raise_or_update(
            key=key,
            kind="scan",
            severity=Severity.HIGH,
            message=(
                f"{attempt.remote} is scanning {attempt.target} ({how}): "
                f"{count} probes so far, last {attempt.port}/{attempt.protocol}"
            ),
            time=attempt.time,
            remote=attempt.remote,
            local=existing.local if existing and existing.local else attempt.target,
            ports=touched,
            protocol=attempt.protocol,
            count=count,
            first_seen=first_seen,
            evidence=f"decided by {how}; last outcome {attempt.outcome.value}",
        )
        return [alert] if announce else []
