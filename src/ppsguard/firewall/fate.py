"""The fate of a registry entry's packets through the WHOLE rule set, not just our table. Pure.

A drop in any base chain on the way in is final, whatever its table, family or priority; an
accept only ends its own chain. So another table can only take packets away from an entry we
allow (or hand them to user space, or rewrite them). `interference` walks every foreign base
chain that sees packets arriving for this host (hooks ingress, prerouting, input; families
netdev, ip, ip6, inet) with the packets of each `provides` entry and reports each rule (or chain
policy) that drops, rejects or queues some of them.

The packets of an entry are a small symbolic space: one family, one protocol, a set of source
address intervals and a set of destination port intervals; every other field is "any". A match
on source or port splits the space exactly (sets, prefixes, ranges, `!=`, named sets and
verdict maps are understood); a match on anything else that the evaluator knows (destination
address, source port, interface, tcp flags, limit, marks) may hold for some packets and not
others, so both ways are followed and the result says "some packets"; `ct state` is judged for a
connection's first packet (`new`); `iifname "lo"` never holds for packets from the network. A
match it does not know is followed both ways too, and marks what follows "uncertain": a drop
reached that way is reported as uncertain, never silently "fine", and a path that ends in
accept changes nothing either way. A statement it does not know (an iptables-nft `xt` target,
say) may end the packet's way: it is reported where it stands as "may change the fate".
Jumps and gotos are followed (16 deep, as the kernel allows).

Input: the parsed `nft -j list ruleset` document (a list of objects), plus iptables-legacy
rules translated into the same shape (`legacy.py`). No I/O here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ppsguard.firewall.packets import (
    FAMILIES,
    L4,
    MAX_DEPTH,
    Interval,
    Intervals,
    Packets,
    Ruleset,
    normalize,
    prio,
    rule_outcomes,
    with_note,
)


@dataclass(frozen=True, slots=True)
class Effect:
    """One place in a foreign table that changes the fate of (some of) an entry's packets."""

    family: str
    table: str
    chain: str
    hook: str
    priority: int
    rule: str  # the rule as text, or "policy drop"
    verdict: str  # drop | reject | queue | rewrite
    packets: Packets
    path: tuple[str, ...] = ()  # chains jumped through

    @property
    def certainty(self) -> str:
        """`all`: every packet of the space; `some`: under conditions; `uncertain`."""
        if self.packets.unknown:
            return "uncertain"
        return "some" if self.packets.conditions else "all"

    @property
    def where(self) -> str:
        via = "".join(f" -> {c}" for c in self.path)
        return f"{self.family} {self.table} chain {self.chain}{via}"


# chains ----------------------------------------------------------------------------------------
MAX_PATHS = 4096
Outcome = tuple[Packets, str, str, tuple[str, ...]]  # packets, verdict, rule text, chain path


def _chain(
    ruleset: Ruleset,
    key: tuple[str, str, str],
    packets: Packets,
    depth: int,
    path: tuple[str, ...],
) -> list[Outcome]:
    """Every way `packets` leave chain `key`: a verdict, or "return" at its end."""
    where = (key[0], key[1])
    if depth > MAX_DEPTH or key not in ruleset.chains:
        problem = "jumps deeper than 16" if depth > MAX_DEPTH else f"no chain {key[2]}"
        return [(with_note(packets, unknown=problem), "return", "", path)]
    live = [packets]
    out: list[Outcome] = []
    for rule in ruleset.rules.get(key, []):
        expr = rule.get("expr") if isinstance(rule.get("expr"), list) else []
        text = describe_rule(rule)
        following: list[Packets] = []
        for part in live:
            for piece, (verdict, target) in rule_outcomes(ruleset, where, part, expr or []):
                if verdict in {"next", "continue"}:
                    following.append(piece)
                elif verdict in {"jump", "goto"}:
                    inner = _chain(ruleset, (*where, target), piece, depth + 1, (*path, target))
                    for result in inner:
                        if result[1] != "return":
                            out.append(result)
                        elif verdict == "jump":
                            following.append(result[0])
                        else:
                            out.append((result[0], "return", "", result[3]))
                else:
                    out.append((piece, verdict, text, path))
        live = following
        if len(live) + len(out) > MAX_PATHS:
            live = [with_note(p, unknown="too many paths to follow") for p in live[:1]]
    out.extend((part, "return", "", path) for part in live)
    return out


def _describe_value(value: Any) -> str:
    if isinstance(value, dict):
        if "payload" in value and isinstance(value["payload"], dict):
            return f"{value['payload'].get('protocol')} {value['payload'].get('field')}"
        if "meta" in value and isinstance(value["meta"], dict):
            return f"meta {value['meta'].get('key')}"
        if "ct" in value and isinstance(value["ct"], dict):
            return f"ct {value['ct'].get('key')}"
        if "prefix" in value and isinstance(value["prefix"], dict):
            return f"{value['prefix'].get('addr')}/{value['prefix'].get('len')}"
        if "range" in value and isinstance(value["range"], list):
            return "-".join(str(v) for v in value["range"])
        if "set" in value and isinstance(value["set"], list):
            return "{ " + ", ".join(_describe_value(v) for v in value["set"]) + " }"
        return next(iter(value), "?")
    if isinstance(value, list):
        return ",".join(_describe_value(v) for v in value)
    return str(value)


def describe_rule(rule: dict[str, Any]) -> str:
    """A rule as short nft-like text, with its handle: `tcp dport 80 drop (handle 7)`; an
    iptables-legacy rule as its own `-A ...` line."""
    if "iptables-legacy" in str(rule.get("table")) and isinstance(rule.get("comment"), str):
        return str(rule["comment"])
    words: list[str] = []
    for statement in rule.get("expr") or []:
        if not isinstance(statement, dict) or not statement:
            continue
        kind = next(iter(statement))
        body = statement[kind]
        if kind == "match" and isinstance(body, dict):
            op = "" if body.get("op") in {"==", "in"} else f"{body.get('op')} "
            words.append(
                f"{_describe_value(body.get('left'))} {op}{_describe_value(body.get('right'))}"
            )
        elif kind == "vmap" and isinstance(body, dict):
            words.append(
                f"{_describe_value(body.get('key'))} vmap {_describe_value(body.get('data'))}"
            )
        elif kind == "xt" and isinstance(body, dict):
            words.append(f"xt {body.get('type')} {body.get('name')}")
        elif kind in {"jump", "goto"} and isinstance(body, dict):
            words.append(f"{kind} {body.get('target')}")
        elif kind != "counter":
            words.append(kind)
    handle = rule.get("handle")
    return " ".join(words) + (f" (handle {handle})" if handle is not None else "")


@dataclass(frozen=True, slots=True)
class EntrySpace:
    """The packets a registry entry allows: id, protocol, sources per family, ports."""

    entry_id: str
    protocol: str
    sources: dict[int, Intervals]
    ports: Intervals


def interference(
    objects: Sequence[dict[str, Any]],
    entries: Sequence[EntrySpace],
    own: tuple[str, str] = ("inet", "ppsguard"),
) -> list[tuple[str, Effect]]:
    """(entry id, effect) for every foreign base chain that drops, rejects, queues or rewrites
    some of an entry's packets; one effect per (entry, chain, rule, verdict)."""
    ruleset = Ruleset.from_objects(objects)
    found: dict[tuple[str, ...], tuple[str, Effect]] = {}
    for key, body in ruleset.base_chains(skip=own):
        hook, priority = str(body["hook"]), prio(body)
        policy = str(body.get("policy", "accept"))
        for entry in entries:
            for version in FAMILIES[key[0]]:
                sources = entry.sources.get(version, ())
                if not sources:
                    continue
                start = Packets(version, entry.protocol, sources, entry.ports)
                for packets, outcome, rule_text, path in _chain(ruleset, key, start, 0, ()):
                    verdict, text = outcome, rule_text
                    # Matches not understood were followed both ways, so a path that ends in
                    # accept (or the accept policy) changes nothing, known or not.
                    if outcome == "accept" or (outcome == "return" and policy != "drop"):
                        continue
                    if outcome == "return":
                        verdict, text = "drop", f"policy {policy}"
                    ident = (entry.entry_id, *key, text, verdict, str(version))
                    effect = Effect(
                        key[0], key[1], key[2], hook, priority, text, verdict, packets, path
                    )
                    if ident in found:
                        effect = _merge(found[ident][1], effect)
                    found[ident] = (entry.entry_id, effect)
    return list(found.values())


def _merge(old: Effect, new: Effect) -> Effect:
    a, b = old.packets, new.packets
    merged = replace(
        a,
        sources=normalize(a.sources + b.sources) if a.version == b.version else a.sources,
        ports=normalize(a.ports + b.ports),
        conditions=tuple(dict.fromkeys(a.conditions + b.conditions)),
        unknown=tuple(dict.fromkeys(a.unknown + b.unknown)),
    )
    return replace(old, packets=merged)


def entry_spaces(policy_rules: Iterable[Any]) -> list[EntrySpace]:
    """EntrySpaces of the ALLOW rules of a `HostPolicy` (loopback-only entries left out)."""
    spaces: list[EntrySpace] = []
    for rule in policy_rules:
        if str(getattr(rule.action, "value", rule.action)) != "allow":
            continue
        by_version: dict[int, list[Interval]] = {4: [], 6: []}
        for network in rule.sources:
            if network.is_loopback:
                continue
            by_version[network.version].append(
                (int(network.network_address), int(network.broadcast_address))
            )
        ports = normalize((p.first, p.last) for p in rule.ports)
        spaces.append(
            EntrySpace(
                rule.entry_id,
                str(getattr(rule.protocol, "value", rule.protocol)),
                {v: normalize(items) for v, items in by_version.items() if items},
                ports,
            )
        )
    return [s for s in spaces if s.sources and s.protocol in L4]
