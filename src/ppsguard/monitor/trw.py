"""Threshold Random Walk scan detection (Jung, Paxson, Berger, Balakrishnan, IEEE S&P 2004).

Each remote source walks a likelihood ratio over its *first contacts*: every attempt to reach a
target it has not tried before is a Bernoulli trial, successful (answered) or failed (refused,
unanswered, dropped). With theta0 = P(success | benign) and theta1 = P(success | scanner):

    success multiplies the ratio by theta1 / theta0            (0.2 / 0.8 = 0.25)
    failure multiplies it by (1 - theta1) / (1 - theta0)       (0.8 / 0.2 = 4)

and the walk decides "scanner" when the ratio reaches eta1 = PD / PF, "benign" when it falls to
eta0 = (1 - PD) / (1 - PF). With the paper's theta0 = 0.8, theta1 = 0.2, PD = 0.99, PF = 0.01:
eta1 = 99 and eta0 = 0.0101, so four failed first contacts (4^4 = 256 >= 99) decide "scanner"
and four successes (0.25^4 = 0.0039 <= 0.0101) decide "benign"; three of either do not.

Plain TRW keys first contacts on (source, target host): a vertical scan of one host is a single
first contact and never decides. `PerPortTrw` keys them on (source, target host, port) instead,
which decides on a vertical scan after the same four failures. A benign decision restarts the
walk, so a source that turns hostile later is still caught.

Memory is bounded: sources live in an LRU of `max_sources`; each keeps at most `max_targets`
first-contact keys (older ones forgotten: a repeat then counts again, erring towards detection);
evictions are counted. Pure: times come in with the events.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from enum import StrEnum

from ppsguard.model.net import IPAddress


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"


class Verdict(StrEnum):
    PENDING = "pending"
    SCANNER = "scanner"
    BENIGN = "benign"


@dataclass(frozen=True, slots=True)
class TrwParameters:
    theta0: float = 0.8
    theta1: float = 0.2
    detection: float = 0.99  # PD
    false_positive: float = 0.01  # PF

    @property
    def upper(self) -> float:
        """log(eta1): at or above it, the source is a scanner."""
        return math.log(self.detection / self.false_positive)

    @property
    def lower(self) -> float:
        """log(eta0): at or below it, the source is benign."""
        return math.log((1 - self.detection) / (1 - self.false_positive))

    @property
    def success_step(self) -> float:
        return math.log(self.theta1 / self.theta0)

    @property
    def failure_step(self) -> float:
        return math.log((1 - self.theta1) / (1 - self.theta0))


@dataclass(slots=True)
class SourceWalk:
    """One remote source's walk: its log likelihood ratio and the first contacts it made.

    `contacts` keeps insertion order (a plain dict: the oldest key is forgotten first); its keys
    are (target, port) in the per-port variant and (target, 0) otherwise.
    """

    log_ratio: float = 0.0
    verdict: Verdict = Verdict.PENDING
    contacts: dict[tuple[IPAddress, int], None] = field(default_factory=dict)
    first_seen: float = 0.0
    last_seen: float = 0.0
    attempts: int = 0  # first contacts since the walk (re)started
    failures: int = 0

    @property
    def ports(self) -> set[int]:
        return {port for _, port in self.contacts}

    @property
    def targets(self) -> set[IPAddress]:
        return {target for target, _ in self.contacts}


@dataclass(frozen=True, slots=True)
class Decision:
    """Returned when a walk decides, or when a decided scanner keeps going (an update)."""

    source: IPAddress
    verdict: Verdict
    walk: SourceWalk


class Trw:
    """TRW keyed on (source, target host); `PerPortTrw` keys on (source, host, port)."""

    per_port = False

    def __init__(
        self,
        parameters: TrwParameters | None = None,
        *,
        max_sources: int = 100_000,
        max_targets: int = 4_096,
    ) -> None:
        self.parameters = parameters or TrwParameters()
        p = self.parameters  # the steps and thresholds once: each is a logarithm
        self._success, self._failure = p.success_step, p.failure_step
        # A tiny tolerance keeps exact thresholds (e.g. eta reached in k steps) from float noise.
        self._upper, self._lower = p.upper - 1e-9, p.lower + 1e-9
        self.max_sources = max_sources
        self.max_targets = max_targets
        self.walks: OrderedDict[IPAddress, SourceWalk] = OrderedDict()
        self.evicted_sources = 0
        self.forgotten_contacts = 0
        # the source object seen last and its walk (already the LRU's newest): a run of
        # attempts from one source skips two hashes of its address each (ipaddress hashes
        # through hex(); 4.2 hashes an attempt were 0.26 s of a flow audit's scan pass)
        self._latest: tuple[IPAddress, SourceWalk] | None = None

    @property
    def steps(self) -> tuple[float, float, float, float]:
        """(success step, failure step, upper, lower): the walk's exact arithmetic, for a
        vectorised walk that must decide as `observe` does (`flows.scans.could_scan`)."""
        return self._success, self._failure, self._upper, self._lower

    def _walk(self, source: IPAddress, time: float) -> SourceWalk:
        latest = self._latest
        if latest is not None and latest[0] is source:
            return latest[1]
        walk = self.walks.get(source)
        if walk is None:
            walk = SourceWalk(first_seen=time, last_seen=time)
            self.walks[source] = walk
            if len(self.walks) > self.max_sources:
                self.walks.popitem(last=False)
                self.evicted_sources += 1
                if not self.walks:  # max_sources 0: nothing is remembered
                    self._latest = None
                    return walk
        else:
            self.walks.move_to_end(source)
        self._latest = (source, walk)
        return walk

    def observe(
        self, time: float, source: IPAddress, target: IPAddress, port: int, outcome: Outcome
    ) -> Decision | None:
        """Count one attempt; return a Decision when the walk decides or a scanner goes on."""
        walk = self._walk(source, time)
        walk.last_seen = time
        contacts = walk.contacts
        known = len(contacts)
        contacts.setdefault((target, port if self.per_port else 0))  # one hash of the key
        if len(contacts) == known:
            return None  # not a first contact
        if known >= self.max_targets:
            del contacts[next(iter(contacts))]
            self.forgotten_contacts += 1
        if walk.verdict is Verdict.SCANNER:
            walk.attempts += 1
            walk.failures += outcome is Outcome.FAILURE
            return Decision(source, Verdict.SCANNER, walk)
        walk.attempts += 1
        if outcome is Outcome.SUCCESS:
            walk.log_ratio += self._success
        else:
            walk.failures += 1
            walk.log_ratio += self._failure
        if walk.log_ratio >= self._upper:
            walk.verdict = Verdict.SCANNER
            return Decision(source, Verdict.SCANNER, walk)
        if walk.log_ratio <= self._lower:
            decided = Decision(source, Verdict.BENIGN, walk)
            fresh = SourceWalk(first_seen=time, last_seen=time, contacts=walk.contacts)
            self.walks[source] = fresh
            self._latest = (source, fresh)
            return decided
        return None

    def verdict(self, source: IPAddress) -> Verdict:
        walk = self.walks.get(source)
        return walk.verdict if walk else Verdict.PENDING


class PerPortTrw(Trw):
    """TRW whose first contacts are (target host, port): decides on vertical scans too."""

    per_port = True
