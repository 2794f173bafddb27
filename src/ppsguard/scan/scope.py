"""The one scope gate: every path that sends packets asks it first.

Our engines (connect, SYN, UDP) and host discovery, `pps scan --nmap`, service probes (`-sV`),
the audit's outside view, `registry init --from-scan` and any future active check hold a
`ScopeGate` built from `--scope`, `--exclude`, `-T`, `--max-rate` and `--dry-run`, and ask it:

- **which addresses** a list of targets stands for: ranges expanded lazily, duplicates dropped,
  `--exclude`d addresses removed (`admit`, `admit_addresses`);
- **whether all of them lie inside the `--scope` allow-list**. The WHOLE expanded set is checked,
  by interval arithmetic over integer address spans (a /8 costs a few comparisons, not 16
  million), so a range that leaves the scope in its middle is refused, and the refusal names
  the first address outside. A dry run asks the same question and gets the same answer;
- **the rate ceiling**: `--max-rate`, else the `-T` preset's (T0 1, T1 10, T2 100 packets/s),
  else 5,000 packets/s when any target is neither loopback nor private (`rate_ceiling`);
- **whether anything may be sent at all**: a dry-run gate refuses (`clear_to_send`), so a sender
  that was handed one by mistake sends nothing.

Pure: names are resolved elsewhere (`scan.plan`) and then admitted here; no sockets, no clock.
It must not grow engine logic: it answers questions, the senders act on the answers.
"""

from __future__ import annotations

import bisect
import ipaddress
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from ppsguard.errors import UsageError
from ppsguard.model.net import IPAddress, IPNetwork
from ppsguard.scan.targets import TargetSpec, parse_networks
from ppsguard.scan.timing import DEFAULT_REMOTE_RATE, PRESETS, TimingPreset

OUTSIDE_SCOPE = "target outside the --scope allow-list, refusing to scan"
Span = tuple[int, int]  # inclusive integer bounds of addresses of one family
# Where the default remote rate ceiling does not apply: loopback, private, link-local and the
# benchmarking/documentation ranges (the lab's). An explicit list, checked as spans: Python's
# `is_private` costs ~9 us per address (9 s for a million) and its list changes between versions.
LOCAL_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.0.2.0/24",
        "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24",
        "::1/128", "fc00::/7", "fe80::/10", "2001:db8::/32",
    )
)  # fmt: skip


def merge_spans(spans: Iterable[Span]) -> list[Span]:
    """Sorted, disjoint, non-adjacent spans covering exactly the addresses of `spans`."""
    merged: list[Span] = []
    for low, high in sorted(spans):
        if merged and low <= merged[-1][1] + 1:
            if high > merged[-1][1]:
                merged[-1] = (merged[-1][0], high)
        else:
            merged.append((low, high))
    return merged


def subtract_spans(spans: Sequence[Span], cut: Sequence[Span]) -> list[Span]:
    """The addresses of `spans` not in `cut` (both merged, as `merge_spans` returns them)."""
    left: list[Span] = []
    start = 0
    for low, high in spans:
        while start < len(cut) and cut[start][1] < low:
            start += 1
        current = low
        index = start
        while index < len(cut) and cut[index][0] <= high:
            if cut[index][0] > current:
                left.append((current, cut[index][0] - 1))
            current = max(current, cut[index][1] + 1)
            index += 1
        if current <= high:
            left.append((current, high))
    return left


def covered(value: int, spans: Sequence[Span]) -> bool:
    """Whether `value` lies in one of `spans` (merged)."""
    index = bisect.bisect_right(spans, (value, 1 << 129)) - 1
    return index >= 0 and spans[index][0] <= value <= spans[index][1]


def _spans_by_family(networks: Iterable[IPNetwork]) -> dict[int, list[Span]]:
    spans: dict[int, list[Span]] = {4: [], 6: []}
    for network in networks:
        spans[network.version].append(
            (int(network.network_address), int(network.broadcast_address))
        )
    return {version: merge_spans(found) for version, found in spans.items()}


def _address(version: int, value: int) -> IPAddress:
    return ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value)


@dataclass(frozen=True, slots=True)
class Target:
    """One target token as admitted: the addresses it adds, or why it adds none."""

    token: str
    spans: tuple[Span, ...] = ()  # its addresses after --exclude (duplicates of earlier kept)
    version: int = 4
    hostname: str | None = None
    excluded: int = 0  # addresses of this token that --exclude removed
    error: str | None = None  # a name that did not resolve

    @property
    def count(self) -> int:
        return sum(high - low + 1 for low, high in self.spans)

    @property
    def first(self) -> IPAddress | None:
        return _address(self.version, self.spans[0][0]) if self.spans else None

    @property
    def last(self) -> IPAddress | None:
        return _address(self.version, self.spans[-1][1]) if self.spans else None


@dataclass(frozen=True, slots=True)
class Targets:
    """What the gate admitted: per token, in order; `hosts()` expands them lazily."""

    entries: tuple[Target, ...]
    excluded: tuple[IPNetwork, ...] = ()

    @property
    def count(self) -> int:
        """Distinct addresses to probe (a token repeating another's addresses adds none)."""
        merged = {
            v: merge_spans(s for t in self.entries if t.version == v for s in t.spans)
            for v in (4, 6)
        }
        return sum(high - low + 1 for spans in merged.values() for low, high in spans)

    @property
    def failed(self) -> tuple[Target, ...]:
        return tuple(t for t in self.entries if t.error is not None)

    def hosts(self) -> Iterator[tuple[IPAddress, str | None]]:
        """(address, hostname) of every admitted address, in token order, each once."""
        seen: set[tuple[int, int]] = set()
        for target in self.entries:
            for low, high in target.spans:
                for value in range(low, high + 1):
                    key = (target.version, value)
                    if key not in seen:
                        seen.add(key)
                        yield _address(target.version, value), target.hostname

    def networks(self) -> list[IPNetwork]:
        """The admitted addresses as few CIDR blocks (for tools that take CIDRs, like nmap)."""
        blocks: list[IPNetwork] = []
        for version in (4, 6):
            spans = merge_spans(s for t in self.entries if t.version == version for s in t.spans)
            for low, high in spans:
                first, last = _address(version, low), _address(version, high)
                blocks.extend(ipaddress.summarize_address_range(first, last))
        return blocks


_LOCAL = _spans_by_family(LOCAL_NETWORKS)


class ScopeGate:
    """Scope allow-list, exclusions, rate ceiling and dry run, asked by every sender.

    `scope=None` allows every address; an empty scope allows none. `timing` is the -T preset
    (0-5), `max_rate` an explicit packets/s ceiling, `dry_run` refuses all sending.
    """

    __slots__ = (
        "_exclude_spans",
        "_scope_spans",
        "dry_run",
        "exclude",
        "max_rate",
        "scope",
        "timing",
    )

    def __init__(
        self,
        *,
        scope: Sequence[IPNetwork] | None = None,
        exclude: Sequence[IPNetwork] = (),
        timing: int = 3,
        max_rate: float | None = None,
        dry_run: bool = False,
    ) -> None:
        if timing not in PRESETS:
            raise UsageError("timing template must be 0-5", token=f"-T{timing}")
        if max_rate is not None and not (math.isfinite(max_rate) and max_rate > 0):
            raise UsageError("--max-rate must be a positive number", token=str(max_rate))
        self.scope = None if scope is None else tuple(scope)
        self.exclude = tuple(exclude)
        self.timing = timing
        self.max_rate = max_rate
        self.dry_run = dry_run
        self._scope_spans = None if scope is None else _spans_by_family(scope)
        self._exclude_spans = _spans_by_family(exclude)

    @classmethod
    def from_tokens(
        cls,
        *,
        scope: Sequence[str] | None = None,
        exclude: Sequence[str] = (),
        timing: int = 3,
        max_rate: float | None = None,
        dry_run: bool = False,
    ) -> ScopeGate:
        """A gate from command-line tokens; a bad token raises UsageError naming it."""
        return cls(
            scope=None if scope is None else parse_networks(list(scope), source="scope"),
            exclude=parse_networks(list(exclude), source="exclude") if exclude else (),
            timing=timing,
            max_rate=max_rate,
            dry_run=dry_run,
        )

    @property
    def preset(self) -> TimingPreset:
        return PRESETS[self.timing]

    def excluded(self, address: IPAddress) -> bool:
        return covered(int(address), self._exclude_spans[address.version])

    def inside(self, address: IPAddress) -> bool:
        """Whether `address` is inside the scope (always, without one)."""
        if self._scope_spans is None:
            return True
        return covered(int(address), self._scope_spans[address.version])

    def _first_outside(self, version: int, spans: Sequence[Span]) -> IPAddress | None:
        if self._scope_spans is None or not spans:
            return None
        outside = subtract_spans(spans, self._scope_spans[version])
        return _address(version, outside[0][0]) if outside else None

    def admit(
        self, specs: Sequence[TargetSpec], names: Mapping[str, IPAddress | str] | None = None
    ) -> Targets:
        """Admit parsed targets; `names` maps each hostname to its address or an error text.

        Raises UsageError naming the first address outside the scope, over the whole set; a
        hostname missing from `names` counts as unresolved.
        """
        entries: list[Target] = []
        for spec in specs:
            if spec.hostname is not None:
                found = (names or {}).get(spec.hostname, "cannot resolve: not looked up")
                if isinstance(found, str):
                    entries.append(Target(spec.token, hostname=spec.hostname, error=found))
                    continue
                first = last = found
            else:
                assert spec.first is not None and spec.last is not None
                first, last = spec.first, spec.last
            version = first.version
            whole = [(int(first), int(last))]
            kept = subtract_spans(whole, self._exclude_spans[version])
            outside = self._first_outside(version, kept)
            if outside is not None:
                raise UsageError(OUTSIDE_SCOPE, token=str(outside))
            dropped = int(last) - int(first) + 1 - sum(h - lo + 1 for lo, h in kept)
            entries.append(Target(spec.token, tuple(kept), version, spec.hostname, dropped))
        return Targets(tuple(entries), self.exclude)

    def admit_ranges(self, specs: Sequence[TargetSpec]) -> None:
        """Refuse before any name lookup when an address range leaves the scope."""
        self.admit([s for s in specs if s.hostname is None])

    def admit_addresses(self, addresses: Iterable[IPAddress]) -> list[IPAddress]:
        """`addresses` minus the excluded, each once, in order; UsageError if one is outside."""
        kept: list[IPAddress] = []
        seen: set[IPAddress] = set()
        for address in addresses:
            if address in seen or self.excluded(address):
                continue
            if not self.inside(address):
                raise UsageError(OUTSIDE_SCOPE, token=str(address))
            seen.add(address)
            kept.append(address)
        return kept

    def partition(self, addresses: Iterable[IPAddress]) -> tuple[list[IPAddress], list[IPAddress]]:
        """(admitted, refused) for callers that skip what is outside rather than stop."""
        admitted: list[IPAddress] = []
        refused: list[IPAddress] = []
        for address in dict.fromkeys(addresses):
            if self.excluded(address):
                continue
            (admitted if self.inside(address) else refused).append(address)
        return admitted, refused

    @property
    def fixed_rate(self) -> float | None:
        """The ceiling for every target, local or not: --max-rate, else the -T preset's."""
        return self.max_rate if self.max_rate is not None else self.preset.max_rate

    def rate_ceiling(self, targets: Targets | Iterable[IPAddress]) -> float | None:
        """Packets/s ceiling: --max-rate, else the preset's, else 5,000 if any target is remote
        (outside LOCAL_NETWORKS), else none."""
        if self.fixed_rate is not None:
            return self.fixed_rate
        if isinstance(targets, Targets):
            spans = [(t.version, span) for t in targets.entries for span in t.spans]
            remote = any(subtract_spans([span], _LOCAL[version]) for version, span in spans)
        else:
            remote = any(not covered(int(a), _LOCAL[a.version]) for a in targets)
        return DEFAULT_REMOTE_RATE if remote else None

    def clear_to_send(self, what: str) -> None:
        """Called by every sender right before it sends; a dry run refuses."""
        if self.dry_run:
            raise UsageError(f"dry run: {what} would send packets, nothing is sent")
