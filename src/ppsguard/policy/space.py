"""Exact set arithmetic over packet spaces: (protocol, family) x ports x sources x destinations.

A `Space` is a union of disjoint axis-aligned boxes, each `(port_lo, port_hi, src_lo, src_hi,
dst_lo, dst_hi)` with inclusive integer bounds, kept per (protocol, address family). Subtraction
splits a box into at most six pieces, so "entry minus the union of every earlier entry" is exact,
which is what lint's union-semantics anomalies need (pairwise checks miss a rule covered by the
union of several earlier ones). Pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ppsguard.model.net import IPNetwork, Protocol
from ppsguard.model.registry import Rule

Box = tuple[int, int, int, int, int, int]
Key = tuple[Protocol, int]  # (protocol, IP version)
MAX_BOXES = 200_000


class SpaceTooLarge(Exception):
    """The exact computation would need more than MAX_BOXES boxes."""


def _spans(nets: Iterable[IPNetwork], version: int) -> list[tuple[int, int]]:
    out = sorted(
        (int(n.network_address), int(n.broadcast_address)) for n in nets if n.version == version
    )
    merged: list[tuple[int, int]] = []
    for lo, hi in out:
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


def _intersect_box(a: Box, b: Box) -> Box | None:
    lo0, hi0 = max(a[0], b[0]), min(a[1], b[1])
    lo1, hi1 = max(a[2], b[2]), min(a[3], b[3])
    lo2, hi2 = max(a[4], b[4]), min(a[5], b[5])
    if lo0 > hi0 or lo1 > hi1 or lo2 > hi2:
        return None
    return (lo0, hi0, lo1, hi1, lo2, hi2)


def _subtract_box(a: Box, b: Box) -> list[Box]:
    """a - b as at most six disjoint boxes."""
    cut = _intersect_box(a, b)
    if cut is None:
        return [a]
    out: list[Box] = []
    p0, p1, s0, s1, d0, d1 = a
    c = cut
    if p0 < c[0]:
        out.append((p0, c[0] - 1, s0, s1, d0, d1))
    if c[1] < p1:
        out.append((c[1] + 1, p1, s0, s1, d0, d1))
    if s0 < c[2]:
        out.append((c[0], c[1], s0, c[2] - 1, d0, d1))
    if c[3] < s1:
        out.append((c[0], c[1], c[3] + 1, s1, d0, d1))
    if d0 < c[4]:
        out.append((c[0], c[1], c[2], c[3], d0, c[4] - 1))
    if c[5] < d1:
        out.append((c[0], c[1], c[2], c[3], c[5] + 1, d1))
    return out


@dataclass(slots=True)
class Space:
    """A union of disjoint boxes per (protocol, family)."""

    parts: dict[Key, list[Box]] = field(default_factory=dict)

    @classmethod
    def of_rule(cls, rule: Rule) -> Space:
        space = cls()
        for version in (4, 6):
            sources = _spans(rule.sources, version)
            dests = _spans(rule.destinations, version)
            boxes = [
                (pr.first, pr.last, slo, shi, dlo, dhi)
                for pr in rule.ports
                for slo, shi in sources
                for dlo, dhi in dests
            ]
            if boxes:
                space.parts.setdefault((rule.protocol, version), []).extend(boxes)
        return space

    @classmethod
    def of_rules(cls, rules: Iterable[Rule]) -> Space:
        space = cls()
        for rule in rules:
            space = space.union(cls.of_rule(rule))
        return space

    def copy(self) -> Space:
        return Space({k: list(v) for k, v in self.parts.items()})

    def is_empty(self) -> bool:
        return not any(self.parts.values())

    def size(self) -> int:
        return sum(len(v) for v in self.parts.values())

    def subtract(self, other: Space) -> Space:
        out: dict[Key, list[Box]] = {}
        total = 0
        for key, boxes in self.parts.items():
            if not boxes:
                continue
            current = boxes
            # only boxes that touch our bounding box can cut: a cheap filter before splitting
            p0, p1 = min(b[0] for b in boxes), max(b[1] for b in boxes)
            s0, s1 = min(b[2] for b in boxes), max(b[3] for b in boxes)
            cuts = [
                c
                for c in other.parts.get(key, ())
                if c[0] <= p1 and p0 <= c[1] and c[2] <= s1 and s0 <= c[3]
            ]
            for cut in cuts:
                nxt: list[Box] = []
                for box in current:
                    nxt.extend(_subtract_box(box, cut))
                current = nxt
                if not current:
                    break
            total += len(current)
            if total > MAX_BOXES:
                raise SpaceTooLarge
            if current:
                out[key] = current
        return Space(out)

    def intersect(self, other: Space) -> Space:
        out: dict[Key, list[Box]] = {}
        for key, boxes in self.parts.items():
            if not boxes:
                continue
            p0, p1 = min(b[0] for b in boxes), max(b[1] for b in boxes)
            near = [c for c in other.parts.get(key, ()) if c[0] <= p1 and p0 <= c[1]]
            found = [cut for a in boxes for b in near if (cut := _intersect_box(a, b)) is not None]
            if found:
                out[key] = found
        return Space(out)

    def union(self, other: Space) -> Space:
        extra = other.subtract(self)
        out = self.copy()
        for key, boxes in extra.parts.items():
            out.parts.setdefault(key, []).extend(boxes)
        return out

    def sample(self) -> tuple[Protocol, int, int, int, int] | None:
        """One packet inside: (protocol, version, port, source int, destination int)."""
        for (protocol, version), boxes in sorted(self.parts.items()):
            if boxes:
                b = min(boxes)
                return protocol, version, b[0], b[2], b[4]
        return None
