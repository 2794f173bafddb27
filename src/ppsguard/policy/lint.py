"""Lint a registry: anomalies with union semantics, risky exposures, waivers, missing documentation.

`lint_registry(registry, today=..., soon_days=30) -> list[Finding]` (pure: today is passed in).
For each host, its compiled policy (`policy.compile`) is analysed entry by entry, in evaluation
order, with exact packet-space arithmetic (`policy.space`):

  contradictory (error)  an earlier entry matches exactly the same packets with another action
  shadowed     (error)   the entry never decides: every packet it matches is decided earlier by
                         the union of earlier entries, at least one with a different action;
                         (warning) when only the logging differs
  redundant    (warning) shadowed by earlier entries with the same action and logging, or
                         removing it changes nothing (later entries or the default decide the same;
                         info when only the default would)
  correlated   (warning) overlaps a later entry with a different action, neither contains the other
  generalisation (info)  a later entry with a different action contains this one
  matches-nothing (warning) the entry's sources are empty (e.g. a network minus itself)
  risk-*       knowledge-base risks of a provided port: error for critical, or high from anywhere,
               or cleartext carrying confidential/restricted data; a valid waiver lowers to info
  waiver-expired (error), waiver-expiring (warning)
  missing-purpose, missing-owner (warning) for provided services
Each finding names its entries and, for anomalies, an example packet (source, port, protocol).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from ppsguard.model.registry import (
    Action,
    Entry,
    EntryKind,
    HostPolicy,
    Registry,
    Rule,
    SourceLocation,
)
from ppsguard.policy.compile import compile_host_policy
from ppsguard.policy.lint_findings import Finding, FindingLevel, PacketExample
from ppsguard.policy.risks import risk_findings
from ppsguard.policy.space import Space, SpaceTooLarge

MAX_PAIRWISE = 2000
_VERBS = {Action.ALLOW: "allows", Action.DENY: "denies", Action.REJECT: "rejects"}
Emit = Callable[..., None]


def _example(space: Space) -> PacketExample | None:
    point = space.sample()
    if point is None:
        return None
    protocol, version, port, src, dst = point
    source = ipaddress.IPv4Address(src) if version == 4 else ipaddress.IPv6Address(src)
    destination = ipaddress.IPv4Address(dst) if version == 4 else ipaddress.IPv6Address(dst)
    shown = None if int(destination) == 0 else str(destination)
    return PacketExample(str(source), port, str(protocol), shown)


@dataclass(slots=True)
class _Item:
    entry_id: str
    action: Action
    log: bool
    location: SourceLocation
    space: Space
    bounds: dict[object, tuple[int, int, int, int]] | None = None

    def near(self, other: _Item) -> bool:
        """Cheap test: can the two spaces overlap at all (bounding boxes per key)?"""
        mine, theirs = self.box(), other.box()
        for key, (p0, p1, s0, s1) in mine.items():
            o = theirs.get(key)
            if o is not None and o[0] <= p1 and p0 <= o[1] and o[2] <= s1 and s0 <= o[3]:
                return True
        return False

    def box(self) -> dict[object, tuple[int, int, int, int]]:
        if self.bounds is None:
            self.bounds = {
                key: (
                    min(b[0] for b in boxes),
                    max(b[1] for b in boxes),
                    min(b[2] for b in boxes),
                    max(b[3] for b in boxes),
                )
                for key, boxes in self.space.parts.items()
                if boxes
            }
        return self.bounds


def _items(policy: HostPolicy) -> list[_Item]:
    items: dict[str, _Item] = {}
    for rule in policy.rules:
        item = items.get(rule.entry_id)
        if item is None:
            items[rule.entry_id] = _Item(
                rule.entry_id, rule.action, rule.log, rule.location, Space.of_rule(rule)
            )
        else:
            item.space = item.space.union(Space.of_rule(rule))
    return list(items.values())


def never_deciding(policy: HostPolicy) -> tuple[str, ...]:
    """Ids of entries that decide no packet at all (shadowed by the union of earlier entries,
    or matching nothing). Lint reports each of these as shadowed, redundant or matches-nothing."""
    seen = Space()
    out: list[str] = []
    for item in _items(policy):
        if item.space.subtract(seen).is_empty():
            out.append(item.entry_id)
        seen = seen.union(item.space)
    return tuple(out)


def _anomalies(policy: HostPolicy) -> list[Finding]:
    items = _items(policy)
    out: list[Finding] = []
    host = policy.host

    def finding(  # noqa: PLR0917 - called positionally a dozen times below
        level: FindingLevel,
        code: str,
        msg: str,
        ids: tuple[str, ...],
        at: SourceLocation,
        example: Space | None = None,
    ) -> None:
        out.append(Finding(level, code, msg, host, ids, at, _example(example) if example else None))

    seen = Space()
    silent: set[str] = set()  # entries that never decide: reported once, not again as pairs
    for index, item in enumerate(items):
        if item.space.is_empty():
            silent.add(item.entry_id)
            finding(
                FindingLevel.WARNING,
                "matches-nothing",
                f"entry {item.entry_id!r} matches no packet (its sources are empty)",
                (item.entry_id,),
                item.location,
            )
            continue
        effective = item.space.subtract(seen)
        if effective.is_empty():
            silent.add(item.entry_id)
            rest = item.space
            deciders: list[tuple[_Item, Space]] = []
            for earlier in items[:index]:
                part = rest.intersect(earlier.space)
                if not part.is_empty():
                    deciders.append((earlier, part))
                    rest = rest.subtract(earlier.space)
            ids = (item.entry_id, *(d.entry_id for d, _ in deciders))
            names = ", ".join(repr(d.entry_id) for d, _ in deciders)
            differ = [(d, p) for d, p in deciders if d.action != item.action]
            logdiff = [(d, p) for d, p in deciders if d.log != item.log]
            same = len(deciders) == 1 and deciders[0][0].space.subtract(item.space).is_empty()
            if differ and same:
                other = deciders[0][0]
                finding(
                    FindingLevel.ERROR,
                    "contradictory",
                    f"entries {other.entry_id!r} ({other.action}) and {item.entry_id!r} "
                    f"({item.action}) match exactly the same packets; the earlier, "
                    f"{other.entry_id!r}, always wins",
                    ids,
                    item.location,
                    item.space,
                )
            elif differ:
                finding(
                    FindingLevel.ERROR,
                    "shadowed",
                    f"entry {item.entry_id!r} ({item.action}) never decides: earlier entries "
                    f"{names} cover every packet it matches, and {differ[0][0].entry_id!r} "
                    f"{_VERBS[differ[0][0].action]} some of them",
                    ids,
                    item.location,
                    differ[0][1],
                )
            elif logdiff:
                finding(
                    FindingLevel.WARNING,
                    "shadowed",
                    f"entry {item.entry_id!r} never decides: earlier entries {names} cover it "
                    f"with the same action but different logging",
                    ids,
                    item.location,
                    logdiff[0][1],
                )
            else:
                finding(
                    FindingLevel.WARNING,
                    "redundant",
                    f"entry {item.entry_id!r} never decides: earlier entries {names} cover it "
                    f"with the same action and logging",
                    ids,
                    item.location,
                    item.space,
                )
        else:
            _redundancy(items, index, effective, policy, finding)
        seen = seen.union(item.space)
    if len(items) <= MAX_PAIRWISE:
        _pairs([i for i in items if i.entry_id not in silent], finding)
    return out


def _redundancy(
    items: list[_Item], index: int, effective: Space, policy: HostPolicy, finding: Emit
) -> None:
    item = items[index]
    rest = effective
    later: list[str] = []
    for other in items[index + 1 :]:
        if not item.near(other):
            continue
        part = rest.intersect(other.space)
        if part.is_empty():
            continue
        if (other.action, other.log) != (item.action, item.log):
            return
        later.append(other.entry_id)
        rest = rest.subtract(other.space)
        if rest.is_empty():
            break
    if not rest.is_empty() and (policy.default_action, policy.default_log) != (
        item.action,
        item.log,
    ):
        return
    by_default = not rest.is_empty()
    who = ", ".join(repr(x) for x in later)
    if by_default:
        who = f"{who} and the default" if who else "the default"
    level = FindingLevel.INFO if by_default and not later else FindingLevel.WARNING
    finding(
        level,
        "redundant",
        f"removing entry {item.entry_id!r} changes nothing: {who} would decide the same "
        f"({item.action}, {'logged' if item.log else 'not logged'})",
        (item.entry_id, *later),
        item.location,
        effective,
    )


def _pairs(items: list[_Item], finding: Emit) -> None:
    for i, a in enumerate(items):
        for b in items[i + 1 :]:
            if a.action == b.action or not a.near(b):
                continue
            overlap = a.space.intersect(b.space)
            if overlap.is_empty():
                continue
            if a.space.subtract(b.space).is_empty():
                finding(
                    FindingLevel.INFO,
                    "generalisation",
                    f"later entry {b.entry_id!r} ({b.action}) generalises {a.entry_id!r} "
                    f"({a.action}): it matches everything {a.entry_id!r} does, and more",
                    (a.entry_id, b.entry_id),
                    a.location,
                    overlap,
                )
            elif not b.space.subtract(a.space).is_empty():
                finding(
                    FindingLevel.WARNING,
                    "correlated",
                    f"entries {a.entry_id!r} ({a.action}) and {b.entry_id!r} ({b.action}) "
                    f"overlap; in the overlap the earlier, {a.entry_id!r}, decides",
                    (a.entry_id, b.entry_id),
                    a.location,
                    overlap,
                )


def _documentation(entry: Entry, today: dt.date, soon_days: int) -> list[Finding]:
    out: list[Finding] = []
    ids = (entry.id,)
    if entry.waiver is not None:
        w = entry.waiver
        if w.expires < today:
            out.append(
                Finding(
                    FindingLevel.ERROR,
                    "waiver-expired",
                    f"the waiver of {entry.id!r} expired on {w.expires} ({w.reason})",
                    None,
                    ids,
                    w.location,
                )
            )
        elif w.expires <= today + dt.timedelta(days=soon_days):
            out.append(
                Finding(
                    FindingLevel.WARNING,
                    "waiver-expiring",
                    f"the waiver of {entry.id!r} expires on {w.expires} ({w.reason})",
                    None,
                    ids,
                    w.location,
                )
            )
    if entry.kind is EntryKind.PROVIDES:
        if not entry.purpose:
            out.append(
                Finding(
                    FindingLevel.WARNING,
                    "missing-purpose",
                    f"{entry.id!r} ({entry.label}) has no purpose documented",
                    None,
                    ids,
                    entry.location,
                )
            )
        if not entry.owner:
            out.append(
                Finding(
                    FindingLevel.WARNING,
                    "missing-owner",
                    f"{entry.id!r} ({entry.label}) has no owner documented",
                    None,
                    ids,
                    entry.location,
                )
            )
    return out


def lint_registry(registry: Registry, *, today: dt.date, soon_days: int = 30) -> list[Finding]:
    """Every finding for every host, deduplicated (role entries are analysed once per host)."""

    findings: list[Finding] = []
    for entry in registry.entries():
        findings.extend(_documentation(entry, today, soon_days))
    rules_by_entry: dict[str, list[Rule]] = {}
    for host in registry.hosts:
        policy = compile_host_policy(registry, host.name)
        for rule in policy.rules:
            rules_by_entry.setdefault(rule.entry_id, []).append(rule)
        try:
            findings.extend(_anomalies(policy))
        except SpaceTooLarge:
            findings.append(
                Finding(
                    FindingLevel.WARNING,
                    "analysis-truncated",
                    f"host {host.name!r}: the rule set is too fragmented for exact "
                    "anomaly analysis",
                    host.name,
                    (),
                    host.location,
                )
            )
    entries = {e.id: e for e in registry.entries()}
    for entry_id, rules in rules_by_entry.items():
        found = entries.get(entry_id)
        if found is not None:
            findings.extend(risk_findings(found, rules, today))
    unique: dict[tuple[str, tuple[str, ...], str], Finding] = {}
    for f in findings:
        unique.setdefault((f.code, f.entries, f.message), f)
    order = {FindingLevel.ERROR: 0, FindingLevel.WARNING: 1, FindingLevel.INFO: 2}
    return sorted(unique.values(), key=lambda f: (order[f.level], f.location, f.code))


__all__ = ["Finding", "FindingLevel", "PacketExample", "lint_registry", "never_deciding"]
