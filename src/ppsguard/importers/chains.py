"""Walk the chains of a parsed table from its entry chain into one first-match list. Pure.

Every jump into a user chain is followed, its rules conjoined with the jump's match (at most
MAX_DEPTH deep; a loop is listed, not followed); a conditional RETURN is subtracted from the
rules after it in its chain; an unconditional one ends the chain. Then `merge_logs` folds each
LOG into the verdict on the same match right after it (`log: true`), turns a final catch-all into
the default, and lists what comes after it as never reached. Shared by the iptables, ufw and
nftables importers (nft rules are read into the same `Line`s).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ppsguard.importers.iptables import (
    ESTABLISHED,
    MAX_DEPTH,
    OTHER_PROTOCOLS,
    TERMINALS,
    Line,
    Table,
    unconditional,
)
from ppsguard.importers.rules import (
    ANY4,
    ANY6,
    PORT_PROTOCOLS,
    Imported,
    ImportedRule,
    Match,
    Sources,
    Verdict,
    difference,
    intersect,
)


@dataclass(slots=True)
class _Step:
    """A flattened rule before LOG merging: a verdict, LOG, or nothing (a counter)."""

    line: Line
    match: Match
    action: str  # ACCEPT | DROP | REJECT | LOG


class _Walker:
    def __init__(self, table: Table, imported: Imported) -> None:
        self.table = table
        self.imported = imported
        self.steps: list[_Step] = []
        self.reached: set[str] = set()

    def walk(self, chain: str, outer: Match, guards: list[Match], stack: tuple[str, ...]) -> None:
        self.reached.add(chain)
        guards = list(guards)
        for line in self.table.chains.get(chain, []):
            target = line.target
            states = line.states
            if states and states <= ESTABLISHED and target == "ACCEPT" and not line.problems:
                self.imported.covered.append(f"{line.origin}: {line.text} (established)")
                continue
            if (
                states == frozenset({"INVALID"})
                and target in ("DROP", "REJECT")
                and not line.problems
            ):
                self.imported.covered.append(f"{line.origin}: {line.text} (invalid)")
                continue
            if line.interface_lo and target == "ACCEPT" and not line.problems:
                self.imported.covered.append(f"{line.origin}: {line.text} (loopback)")
                continue
            problems = list(line.problems)
            if line.interface_lo:
                problems.append("interface lo")
            if line.states is not None and line.states != frozenset({"NEW"}):
                problems.append("state " + ",".join(sorted(line.states)))
            if problems:
                self.imported.skip(line.origin, line.text, "; ".join(problems), line.match)
                continue
            pieces = [intersect(outer, line.match)]
            for guard in guards:
                pieces = [part for piece in pieces for part in difference(piece, guard)]
            pieces = [p for p in pieces if not p.is_empty()]
            if target is None:
                self.imported.covered.append(f"{line.origin}: {line.text} (no verdict: a counter)")
            elif target == "RETURN":
                if unconditional(line.match):
                    return
                guards.append(line.match)
            elif target in TERMINALS or target == "LOG":
                self.steps.extend(_Step(line, piece, target) for piece in pieces)
                every = pieces and pieces[0].protocols == PORT_PROTOCOLS
                if target != "LOG" and every and not unconditional(pieces[0]):
                    self.imported.skip(line.origin, line.text, OTHER_PROTOCOLS)
            elif target in self.table.chains:
                if target in stack or len(stack) >= MAX_DEPTH:
                    self.imported.skip(line.origin, line.text, "jump loop or too deep")
                    continue
                for piece in pieces:
                    self.walk(target, piece, [], (*stack, target))
            else:
                self.imported.skip(line.origin, line.text, f"target {target}", line.match)


def merge_logs(steps: list[_Step], imported: Imported) -> tuple[bool, str | None]:
    """Turn the flat steps into rules; returns (default logged, the catch-all's origin)."""
    index = 0
    while index < len(steps):
        step = steps[index]
        if step.match.is_everything() and step.action != "LOG":
            for later in steps[index + 1 :]:
                imported.skip(
                    later.line.origin, later.line.text, "after a catch-all: never reached"
                )
            imported.default = TERMINALS[step.action]
            imported.default_origin = step.line.origin
            return False, step.line.origin
        if step.action == "LOG":
            after = steps[index + 1] if index + 1 < len(steps) else None
            if after is None and step.match.is_everything():
                return True, None
            if after is not None and after.action != "LOG" and after.match == step.match:
                if after.match.is_everything():
                    imported.default = TERMINALS[after.action]
                    imported.default_origin = after.line.origin
                    for later in steps[index + 2 :]:
                        imported.skip(later.line.origin, later.line.text, "after a catch-all")
                    return True, after.line.origin
                _add(imported, after, log=True)
                index += 2
                continue
            imported.skip(step.line.origin, step.line.text, "LOG without its verdict right after")
            index += 1
            continue
        _add(imported, step, log=False)
        index += 1
    return False, None


def _add(imported: Imported, step: _Step, *, log: bool) -> None:
    imported.rules.append(
        ImportedRule(step.match, TERMINALS[step.action], step.line.origin, log, step.line.comment)
    )


def import_tables(
    tables: list[Table],
    source: str = "iptables",
    *,
    entry: str | dict[int, str] = "INPUT",
    default: tuple[Verdict, str] | None = None,
) -> Imported:
    """The `entry` chains of one or two families (v4 first) as one `Imported`; `default`
    replaces the chain's policy (ufw keeps its own in ufw.conf, not in user.rules)."""
    imported = Imported(source)
    defaults: dict[int, tuple[Verdict, bool, str]] = {}
    for table in tables:
        imported.families.update((4, 6) if table.version == 0 else (table.version,))
        for origin, text, why in table.elsewhere:
            imported.skip(origin, text, why)
        start = entry if isinstance(entry, str) else entry.get(table.version, "")
        if start not in table.chains:
            continue
        part = Imported(source)
        walker = _Walker(table, part)
        walker.walk(start, _family_everything(table.version), [], (start,))
        if default is not None:
            part.default, part.default_origin = default
        else:
            policy, part.default_origin = table.policies.get(start, ("ACCEPT", start))
            part.default = Verdict.DROP if policy == "DROP" else Verdict.ACCEPT
        everything = [replace(s, match=_widen(s.match)) for s in walker.steps]
        logged, _ = merge_logs(everything, part)
        defaults[table.version] = (part.default, logged, part.default_origin)
        imported.rules.extend(replace(r, match=_narrow(r.match, table.version)) for r in part.rules)
        imported.unexpressed.extend(part.unexpressed)
        imported.covered.extend(part.covered)
        for chain, lines in table.chains.items():
            if chain not in walker.reached and lines:
                where = lines[0].origin
                imported.skip(
                    where, f"chain {chain}: {len(lines)} rule(s)", f"not on the {start} path"
                )
    _settle_defaults(imported, defaults)
    return imported


def _family_everything(version: int) -> Match:
    everything = {0: (ANY4, ANY6), 4: (ANY4,), 6: (ANY6,)}[version]
    return Match(sources=Sources(everything))


def _widen(match: Match) -> Match:
    """A one-family catch-all reads as everything while that family's chain is merged."""
    if match.sources.include in ((ANY4,), (ANY6,)) and not match.sources.exclude:
        return replace(match, sources=Sources((ANY4, ANY6)))
    return match


def _narrow(match: Match, version: int) -> Match:
    if version and set(match.sources.include) == {ANY4, ANY6}:
        keep = (ANY4,) if version == 4 else (ANY6,)
        return replace(match, sources=Sources(keep, match.sources.exclude))
    return match


def _settle_defaults(imported: Imported, defaults: dict[int, tuple[Verdict, bool, str]]) -> None:
    """One default for the draft; a family whose default differs gets a catch-all entry."""
    if not defaults:
        imported.skip("input", "no input chain", "nothing to import: default deny kept")
        return
    first = min(defaults)
    imported.default, imported.default_log, imported.default_origin = defaults[first]
    for version, (verdict, logged, origin) in defaults.items():
        if version != first and (verdict, logged) != (imported.default, imported.default_log):
            imported.rules.append(
                ImportedRule(_family_everything(version), verdict, origin, logged, "IPv6 default")
            )
