"""Reading the live rule set: parse the text of `nft -j list ruleset` into a small model.

Pure: takes JSON text, returns values. It answers three questions:
- is ppsguard's table (`inet ppsguard`) in place, and is it unchanged since the last apply
  (a fingerprint of the table with handles and counter values removed, compared with the one
  recorded at apply time);
- which other tables and base chains exist that can change the effective verdict: a base chain
  on the same hook (input, or prerouting before it) whose policy is drop or which holds drop or
  reject rules overrides our accept, whatever its priority;
- packet and byte counters per registry entry id, read from the rule comments.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from ppsguard.errors import InputError

TABLE_FAMILY = "inet"
TABLE_NAME = "ppsguard"
_VERDICT_HOOKS = frozenset({"input", "prerouting", "ingress"})
_FAMILIES_SEEING_INPUT = frozenset({"inet", "ip", "ip6", "netdev", "bridge"})


@dataclass(frozen=True, slots=True)
class EntryCounter:
    """Packets and bytes counted by the rules that carry one entry id in their comment."""

    entry_id: str
    packets: int
    bytes: int
    rules: int


@dataclass(frozen=True, slots=True)
class BaseChain:
    """A chain attached to a netfilter hook, in any table."""

    family: str
    table: str
    name: str
    hook: str
    priority: int
    policy: str
    drop_rules: int
    accept_rules: int

    @property
    def owned(self) -> bool:
        return self.family == TABLE_FAMILY and self.table == TABLE_NAME

    @property
    def can_override(self) -> bool:
        """True when this foreign chain can drop traffic our table accepts."""
        return (
            not self.owned
            and self.hook in _VERDICT_HOOKS
            and self.family in _FAMILIES_SEEING_INPUT
            and (self.policy == "drop" or self.drop_rules > 0)
        )


@dataclass(frozen=True, slots=True)
class LiveRuleset:
    """What the kernel holds now, as far as ppsguard cares."""

    tables: tuple[tuple[str, str], ...]
    base_chains: tuple[BaseChain, ...]
    owned_present: bool
    owned_fingerprint: str | None
    counters: tuple[EntryCounter, ...]
    rule_count: int

    @property
    def empty(self) -> bool:
        return not self.tables

    @property
    def foreign_tables(self) -> tuple[tuple[str, str], ...]:
        return tuple(t for t in self.tables if t != (TABLE_FAMILY, TABLE_NAME))

    @property
    def overriding_chains(self) -> tuple[BaseChain, ...]:
        return tuple(c for c in self.base_chains if c.can_override)

    def counter(self, entry_id: str) -> EntryCounter | None:
        for item in self.counters:
            if item.entry_id == entry_id:
                return item
        return None


def _objects(text: str) -> list[dict[str, Any]]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"not JSON from nft: {exc.msg}", line=exc.lineno, column=exc.colno
        ) from exc
    if not isinstance(document, dict) or not isinstance(document.get("nftables"), list):
        raise InputError("not an `nft -j list ruleset` document: no top-level 'nftables' list")
    return [item for item in document["nftables"] if isinstance(item, dict)]


def _is_owned(body: dict[str, Any]) -> bool:
    return body.get("family") == TABLE_FAMILY and body.get("table", body.get("name")) == TABLE_NAME


def _scrub(value: Any) -> Any:
    """Drop handles and zero counter values so the fingerprint survives traffic and re-listing."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key == "handle":
                continue
            if key == "counter" and isinstance(item, dict):
                out[key] = {}
                continue
            out[key] = _scrub(item)
        return out
    if isinstance(value, list):
        return [_scrub(item) for item in value]
    return value


def fingerprint_owned(text: str) -> str | None:
    """A stable hash of ppsguard's table in a `nft -j list ruleset` document; None if absent."""
    owned: list[Any] = []
    present = False
    for item in _objects(text):
        for kind, body in item.items():
            if kind == "metainfo" or not isinstance(body, dict) or not _is_owned(body):
                continue
            if kind == "table":
                present = True
            owned.append({kind: _scrub(body)})
    if not present:
        return None
    canonical = json.dumps(owned, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _verdicts(expr: list[Any]) -> set[str]:
    found: set[str] = set()
    for statement in expr:
        if isinstance(statement, dict):
            found.update(k for k in statement if k in {"accept", "drop", "reject", "queue"})
    return found


def _as_int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def parse_ruleset(text: str) -> LiveRuleset:
    """Parse `nft -j list ruleset` output (text) into a LiveRuleset."""
    tables: list[tuple[str, str]] = []
    chains: dict[tuple[str, str, str], dict[str, Any]] = {}
    rule_verdicts: dict[tuple[str, str, str], list[set[str]]] = {}
    counters: dict[str, list[int]] = {}
    rule_count = 0
    for item in _objects(text):
        if "table" in item and isinstance(item["table"], dict):
            body = item["table"]
            tables.append((str(body.get("family")), str(body.get("name"))))
        elif "chain" in item and isinstance(item["chain"], dict):
            body = item["chain"]
            key = (str(body.get("family")), str(body.get("table")), str(body.get("name")))
            chains[key] = body
        elif "rule" in item and isinstance(item["rule"], dict):
            body = item["rule"]
            rule_count += 1
            key = (str(body.get("family")), str(body.get("table")), str(body.get("chain")))
            expr = body.get("expr") if isinstance(body.get("expr"), list) else []
            assert isinstance(expr, list)
            rule_verdicts.setdefault(key, []).append(_verdicts(expr))
            comment = body.get("comment")
            if _is_owned(body) and isinstance(comment, str) and comment:
                slot = counters.setdefault(comment, [0, 0, 0])
                slot[2] += 1
                for statement in expr:
                    if isinstance(statement, dict) and isinstance(statement.get("counter"), dict):
                        slot[0] += _as_int(statement["counter"].get("packets"))
                        slot[1] += _as_int(statement["counter"].get("bytes"))
    base: list[BaseChain] = []
    for key, body in chains.items():
        if "hook" not in body:
            continue
        verdict_sets = rule_verdicts.get(key, [])
        base.append(
            BaseChain(
                family=key[0],
                table=key[1],
                name=key[2],
                hook=str(body.get("hook")),
                priority=_as_int(body.get("prio")),
                policy=str(body.get("policy", "accept")),
                drop_rules=sum(1 for v in verdict_sets if v & {"drop", "reject"}),
                accept_rules=sum(1 for v in verdict_sets if "accept" in v),
            )
        )
    fingerprint = fingerprint_owned(text)
    return LiveRuleset(
        tables=tuple(tables),
        base_chains=tuple(sorted(base, key=lambda c: (c.hook, c.priority, c.family, c.table))),
        owned_present=(TABLE_FAMILY, TABLE_NAME) in tables,
        owned_fingerprint=fingerprint,
        counters=tuple(
            EntryCounter(entry_id=k, packets=v[0], bytes=v[1], rules=v[2])
            for k, v in sorted(counters.items())
        ),
        rule_count=rule_count,
    )


def legacy_rule_lines(save_text: str) -> tuple[str, ...]:
    """The rule lines (`-A ...`) of `iptables-legacy-save` output: rules nft cannot see."""
    return tuple(line for line in save_text.splitlines() if line.startswith("-A "))
