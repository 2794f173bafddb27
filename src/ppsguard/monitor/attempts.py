"""Turn a stream of connection events into attempts with an outcome (answered or failed).

Scan detectors count *attempts*: a remote side opening a connection to this host, answered or not.
Evidence arrives in pieces: conntrack says a connection was opened, later that it was answered
(TCP completed its handshake, UDP saw a reply) or refused (RST, ICMP error), or it simply
never hears back; NFLOG says a rule dropped the packet. `AttemptTracker.feed(event)` returns the
attempts whose outcome became known with this event; `expire(now)` fails the ones that waited
longer than `answer_timeout` seconds.

An answered TCP attempt is a success only if the originator does not abort it: a connection reset
within `abort_grace` seconds of its handshake (what a connect scan does to every open port, and
what a SYN scan's half-open probe amounts to) is a failed first contact, so a scan that finds an
open port early is still decided after the same number of probes. Successes are therefore known
`abort_grace` seconds after the answer (on `expire`), failures at once.

Backscatter (a SYN-ACK or RST that opened nothing here, `Event.initiated` false) is never an
attempt. Bounded: at most `max_pending` attempts wait; the oldest is decided early when full
(counted in `overflowed`). Pure.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from ppsguard.model.events import Direction, Event, EventKind
from ppsguard.model.net import IPAddress
from ppsguard.monitor.trw import Outcome

# the addresses as integers with their family (198.18.0.1 and ::c612:1 are the same integer):
# an `ipaddress` object hashes in Python (the hex text of its integer, ~0.4 µs), and the
# ordered dicts below hash a key on every look-up, peeks included
FlowKey = tuple[str, int, int, int, int, int]


@dataclass(frozen=True, slots=True)
class Attempt:
    """A remote side's attempt on (target, port), and how it ended."""

    time: float
    remote: IPAddress
    target: IPAddress
    port: int
    protocol: str
    outcome: Outcome
    entry_id: str | None = None


def flow_key(event: Event) -> FlowKey | None:
    if event.orig is None or event.resp is None:
        return None
    orig, resp = int(event.orig), int(event.resp)
    family = event.orig.version
    return (event.protocol, family, orig, event.orig_port or 0, resp, event.resp_port or 0)


class AttemptTracker:
    def __init__(
        self,
        *,
        answer_timeout: float = 3.0,
        abort_grace: float = 0.5,
        max_pending: int = 100_000,
    ) -> None:
        self.answer_timeout = answer_timeout
        self.abort_grace = abort_grace
        self.max_pending = max_pending
        self.pending: OrderedDict[FlowKey, Event] = OrderedDict()
        self.answered: OrderedDict[FlowKey, tuple[Event, float]] = OrderedDict()
        self.overflowed = 0

    @staticmethod
    def _attempt(opened: Event, outcome: Outcome, entry_id: str | None = None) -> Attempt:
        assert opened.orig is not None and opened.resp is not None
        return Attempt(
            time=opened.time,
            remote=opened.orig,
            target=opened.resp,
            port=opened.resp_port or 0,
            protocol=opened.protocol,
            outcome=outcome,
            entry_id=entry_id or opened.entry_id,
        )

    def feed(self, event: Event) -> list[Attempt]:
        """The attempts decided by this event (most events decide none or one)."""
        if event.direction is not Direction.INBOUND or not event.initiated:
            return []
        key = flow_key(event)
        if key is None:
            return []
        decided = self.expire(event.time)
        if event.kind is EventKind.LOGGED:
            # A logged packet the firewall let through is followed by conntrack events; one it
            # dropped never is. Either way the log line is the attempt's only sure trace of a drop.
            if event.state == "dropped":
                decided.append(self._attempt(event, Outcome.FAILURE, event.entry_id))
            return decided
        if event.kind is EventKind.OPENED:
            if key not in self.pending:
                self.pending[key] = event
                if len(self.pending) > self.max_pending:
                    _, oldest = self.pending.popitem(last=False)
                    self.overflowed += 1
                    decided.append(self._attempt(oldest, Outcome.FAILURE))
            return decided
        if key in self.answered:
            opened, answered_at = self.answered.pop(key)
            aborted = event.kind is EventKind.REFUSED or (
                event.kind is EventKind.CLOSED and event.state == "CLOSE"
            )
            quick = event.time - answered_at < self.abort_grace
            outcome = Outcome.FAILURE if aborted and quick else Outcome.SUCCESS
            decided.append(self._attempt(opened, outcome))
            return decided
        if key not in self.pending:
            return decided
        opened = self.pending.pop(key)
        if event.kind is EventKind.ANSWERED:
            if event.protocol == "tcp":
                self.answered[key] = (opened, event.time)
                if len(self.answered) > self.max_pending:
                    _, (oldest, _) = self.answered.popitem(last=False)
                    self.overflowed += 1
                    decided.append(self._attempt(oldest, Outcome.SUCCESS))
            else:
                decided.append(self._attempt(opened, Outcome.SUCCESS))
        elif event.kind is EventKind.REFUSED:
            decided.append(self._attempt(opened, Outcome.FAILURE))
        elif event.kind is EventKind.CLOSED:
            outcome = Outcome.SUCCESS if event.answered else Outcome.FAILURE
            decided.append(self._attempt(opened, outcome))
        return decided

    def expire(self, now: float) -> list[Attempt]:
        """Fail the attempts that have waited longer than the answer timeout."""
        out: list[Attempt] = []
        while self.pending:
            key, opened = next(iter(self.pending.items()))
            if now - opened.time < self.answer_timeout:
                break
            del self.pending[key]
            out.append(self._attempt(opened, Outcome.FAILURE))
        while self.answered:
            key, (opened, answered_at) = next(iter(self.answered.items()))
            if now - answered_at < self.abort_grace:
                break
            del self.answered[key]
            out.append(self._attempt(opened, Outcome.SUCCESS))
        return out
