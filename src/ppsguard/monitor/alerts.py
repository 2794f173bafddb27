"""The alert book: alerts deduplicated by key, updated (not repeated) while their cause goes on,
and rate-limited, so a scan of 65,535 ports is one alert that grows, not 65,535 lines.

`AlertBook.raise_or_update(...)` returns the alert and whether a sink should hear about it now:
always for a new alert; for an update, at most once per `update_interval` seconds of event time
(the final state is flushed by `flush()` when the watch ends). At most `max_alerts` alerts are
kept (LRU); evictions are counted. Pure.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Iterable

from ppsguard.model.events import Alert, EntryRef
from ppsguard.model.findings import Severity
from ppsguard.model.net import IPAddress


class AlertBook:
    def __init__(self, *, update_interval: float = 1.0, max_alerts: int = 10_000) -> None:
        self.update_interval = update_interval
        self.max_alerts = max_alerts
        self.alerts: OrderedDict[str, Alert] = OrderedDict()
        self._announced: dict[str, float] = {}
        self._dirty: set[str] = set()
        self.evicted = 0
        self.raised = 0

    def raise_or_update(
        self,
        *,
        key: str,
        kind: str,
        severity: Severity,
        message: str,
        time: float,
        remote: IPAddress | None = None,
        local: IPAddress | None = None,
        ports: Iterable[int] = (),
        protocol: str | None = None,
        entry: EntryRef | None = None,
        evidence: str = "",
        count: int | None = None,
        first_seen: float | None = None,
    ) -> tuple[Alert, bool]:
        alert = self.alerts.get(key)
        if alert is None:
            alert = Alert(
                key=key,
                kind=kind,
                severity=severity,
                message=message,
                first_seen=time if first_seen is None else min(first_seen, time),
                last_seen=time,
                remote=remote,
                local=local,
                ports=sorted(set(ports)),
                protocol=protocol,
                entry=entry,
                evidence=evidence,
                count=count if count is not None else 1,
            )
            self.alerts[key] = alert
            self.raised += 1
            if len(self.alerts) > self.max_alerts:
                old, _ = self.alerts.popitem(last=False)
                self._announced.pop(old, None)
                self._dirty.discard(old)
                self.evicted += 1
            self._announced[key] = time
            return alert, True
        self.alerts.move_to_end(key)
        alert.last_seen = max(alert.last_seen, time)
        alert.message = message
        alert.evidence = evidence or alert.evidence
        alert.count = count if count is not None else alert.count + 1
        if ports:
            _merge_ports(alert.ports, ports)
        if severity_rank(severity) > severity_rank(alert.severity):
            alert.severity = severity
        alert.updates += 1
        if time - self._announced.get(key, 0.0) >= self.update_interval:
            self._announced[key] = time
            self._dirty.discard(key)
            return alert, True
        self._dirty.add(key)
        return alert, False

    def flush(self) -> list[Alert]:
        """Alerts updated since they were last announced (the watch ends, or a periodic tick)."""
        out = [self.alerts[key] for key in sorted(self._dirty) if key in self.alerts]
        self._dirty.clear()
        return out

    def due(self, now: float) -> list[Alert]:
        """Updated alerts whose rate limit has passed by `now`."""
        out = []
        for key in sorted(self._dirty):
            if key in self.alerts and now - self._announced.get(key, 0.0) >= self.update_interval:
                out.append(self.alerts[key])
                self._announced[key] = now
        for alert in out:
            self._dirty.discard(alert.key)
        return out


def _merge_ports(known: list[int], ports: Iterable[int]) -> None:
    """Add `ports` to the sorted, distinct list `known` in place. A scan alert grows by one port
    per probe: sorting the whole set again on each update cost 0.13 s of a flow audit's 1.3 s
    scan pass (20 scanners of 1,000 ports, 2026-12)."""
    for port in ports:
        at = bisect_left(known, port)
        if at == len(known) or known[at] != port:
            known.insert(at, port)


_RANKS = {s: i for i, s in enumerate(Severity)}


def severity_rank(severity: Severity) -> int:
    return _RANKS[severity]
