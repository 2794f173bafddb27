"""Symbolic packets and how one nftables rule splits them (the evaluator's core). Pure.

`Packets` is the space of one registry entry's packets in one family: a set of source address
intervals times a set of destination port intervals (everything else "any"), with the conditions
assumed on the way and the expressions not understood. `rule_outcomes` splits a space by one rule
of `nft -j list ruleset` into parts and says what happens to each (a verdict, a jump, or "next").
See `fate.py` for the walk over chains and what the results mean. No I/O here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

Interval = tuple[int, int]
Intervals = tuple[Interval, ...]

HOOKS_INBOUND = ("ingress", "prerouting", "input")
FAMILIES = {"ip": (4,), "ip6": (6,), "inet": (4, 6), "netdev": (4, 6)}
MAX_DEPTH = 16


def normalize(items: Iterable[Interval]) -> Intervals:
    merged: list[list[int]] = []
    for low, high in sorted(items):
        if merged and low <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    return tuple((a, b) for a, b in merged)


def intersect(left: Intervals, right: Intervals) -> Intervals:
    out = [(max(a, c), min(b, d)) for a, b in left for c, d in right if max(a, c) <= min(b, d)]
    return normalize(out)


def subtract(left: Intervals, right: Intervals) -> Intervals:
    out: list[Interval] = []
    for low, high in left:
        pieces = [(low, high)]
        for c, d in right:
            pieces = [
                piece
                for a, b in pieces
                for piece in ((a, min(b, c - 1)), (max(a, d + 1), b))
                if piece[0] <= piece[1]
            ]
        out.extend(pieces)
    return normalize(out)


@dataclass(frozen=True, slots=True)
class Packets:
    """The symbolic packets of one entry in one family: sources x destination ports."""

    version: int
    protocol: str  # tcp | udp
    sources: Intervals
    ports: Intervals
    conditions: tuple[str, ...] = ()  # fields assumed to match on this path (partial)
    unknown: tuple[str, ...] = ()  # expressions the evaluator could not judge on this path

    @property
    def empty(self) -> bool:
        return not self.sources or not self.ports


@dataclass(slots=True)
class Ruleset:
    """Chains, rules and named sets/maps of a ruleset document, indexed."""

    chains: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    rules: dict[tuple[str, str, str], list[dict[str, Any]]] = field(default_factory=dict)
    sets: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_objects(cls, objects: Sequence[dict[str, Any]]) -> Ruleset:
        found = cls()
        for item in objects:
            for kind, body in item.items():
                if not isinstance(body, dict):
                    continue
                family, table = str(body.get("family")), str(body.get("table"))
                if kind == "chain":
                    found.chains[(family, table, str(body.get("name")))] = body
                elif kind == "rule":
                    key = (family, table, str(body.get("chain")))
                    found.rules.setdefault(key, []).append(body)
                elif kind in {"set", "map"}:
                    found.sets[(family, table, str(body.get("name")))] = body
        return found

    def base_chains(
        self, skip: tuple[str, str]
    ) -> list[tuple[tuple[str, str, str], dict[str, Any]]]:
        chosen = [
            (key, body)
            for key, body in self.chains.items()
            if body.get("hook") in HOOKS_INBOUND and key[0] in FAMILIES and (key[0], key[1]) != skip
        ]
        return sorted(chosen, key=lambda kb: (HOOKS_INBOUND.index(str(kb[1]["hook"])), prio(kb[1])))


def prio(body: dict[str, Any]) -> int:
    value = body.get("prio")
    return value if isinstance(value, int) else 0


# values ------------------------------------------------------------------------------------
def _address_interval(value: Any, version: int) -> Interval | None:
    try:
        if isinstance(value, dict) and "prefix" in value:
            net = ipaddress.ip_network(
                f"{value['prefix']['addr']}/{value['prefix']['len']}", strict=False
            )
            if net.version != version:
                return None
            return int(net.network_address), int(net.broadcast_address)
        if isinstance(value, dict) and "range" in value:
            low, high = (ipaddress.ip_address(str(v)) for v in value["range"])
            if low.version != version:
                return None
            return int(low), int(high)
        address = ipaddress.ip_address(str(value))
    except (ValueError, KeyError, TypeError):
        raise Unknown(f"address {value!r}") from None
    return (int(address), int(address)) if address.version == version else None


def _port_interval(value: Any) -> Interval:
    if isinstance(value, bool):
        raise Unknown(f"port {value!r}")
    if isinstance(value, int):
        return value, value
    if isinstance(value, dict) and "range" in value:
        low, high = value["range"]
        if isinstance(low, int) and isinstance(high, int):
            return low, high
    raise Unknown(f"port {value!r}")  # a service name or an expression: not judged


class Unknown(Exception):
    """An expression the evaluator does not understand."""


def _elements(ruleset: Ruleset, where: tuple[str, str], right: Any) -> list[Any]:
    """The elements of an anonymous set, a named set (`@name`) or a single value."""
    if isinstance(right, str) and right.startswith("@"):
        body = ruleset.sets.get((where[0], where[1], right[1:]))
        if body is None:
            raise Unknown(f"set {right}")
        items = body.get("elem", [])
        return [i["elem"]["val"] if isinstance(i, dict) and "elem" in i else i for i in items]
    if isinstance(right, dict) and "set" in right and isinstance(right["set"], list):
        return [
            i["elem"]["val"] if isinstance(i, dict) and "elem" in i else i for i in right["set"]
        ]
    if isinstance(right, list):
        return list(right)
    return [right]


# matching -----------------------------------------------------------------------------------
L4 = {"tcp": 6, "udp": 17}
_PARTIAL_PAYLOAD = {"daddr", "sport", "flags", "length", "ttl", "hoplimit", "dscp", "ecn", "id"}
_IGNORED = {"counter", "log", "comment", "mangle", "notrack", "set", "flow", "ct helper", "meter"}
_VERDICTS = {"accept", "drop", "reject", "queue", "continue", "return"}
_REWRITES = {"dnat", "redirect", "tproxy"}


def with_note(
    packets: Packets, *, condition: str | None = None, unknown: str | None = None
) -> Packets:
    return replace(
        packets,
        conditions=packets.conditions + ((condition,) if condition else ()),
        unknown=packets.unknown + ((unknown,) if unknown else ()),
    )


def _both(packets: Packets, label: str) -> tuple[list[Packets], list[Packets]]:
    """A match the evaluator cannot decide from the space: it holds for some packets only."""
    return [with_note(packets, condition=label)], [with_note(packets, condition="not " + label)]


def _by_truth(packets: Packets, holds: bool) -> tuple[list[Packets], list[Packets]]:
    return ([packets], []) if holds else ([], [packets])


def _split(
    ruleset: Ruleset, where: tuple[str, str], packets: Packets, match: dict[str, Any]
) -> tuple[list[Packets], list[Packets]]:
    """(the packets the match holds for, the packets it does not)."""
    op, left, right = match.get("op", "=="), match.get("left"), match.get("right")
    negate = op == "!="
    matched, rest = _split_positive(ruleset, where, packets, (left, right), str(match))
    return (rest, matched) if negate else (matched, rest)


def _split_positive(
    ruleset: Ruleset,
    where: tuple[str, str],
    packets: Packets,
    operands: tuple[Any, Any],
    text: str,
) -> tuple[list[Packets], list[Packets]]:
    left, right = operands
    if not isinstance(left, dict):
        return [with_note(packets, unknown=text)], [with_note(packets, unknown=text)]
    if "payload" in left and isinstance(left["payload"], dict):
        protocol = str(left["payload"].get("protocol"))
        name = str(left["payload"].get("field"))
        if protocol in {"ip", "ip6"}:
            if (protocol == "ip") != (packets.version == 4):
                return [], [packets]
            if name == "saddr":
                wanted = [
                    _address_interval(v, packets.version) for v in _elements(ruleset, where, right)
                ]
                values = normalize(v for v in wanted if v is not None)
                hit = replace(packets, sources=intersect(packets.sources, values))
                miss = replace(packets, sources=subtract(packets.sources, values))
                return [p for p in (hit,) if not p.empty], [p for p in (miss,) if not p.empty]
            if name in {"protocol", "nexthdr"}:
                values_l4 = {L4.get(str(v), v) for v in _elements(ruleset, where, right)}
                return _by_truth(packets, L4[packets.protocol] in values_l4)
        elif protocol in {"tcp", "udp", "th"}:
            if protocol not in {packets.protocol, "th"}:
                return [], [packets]
            if name == "dport":
                values = normalize(_port_interval(v) for v in _elements(ruleset, where, right))
                hit = replace(packets, ports=intersect(packets.ports, values))
                miss = replace(packets, ports=subtract(packets.ports, values))
                return [p for p in (hit,) if not p.empty], [p for p in (miss,) if not p.empty]
        if name in _PARTIAL_PAYLOAD:
            label = f"{protocol} {name}"
            return _both(packets, label)
        return [with_note(packets, unknown=text)], [with_note(packets, unknown=text)]
    if "meta" in left and isinstance(left["meta"], dict):
        key = str(left["meta"].get("key"))
        values_any = _elements(ruleset, where, right)
        if key == "l4proto":
            return _by_truth(
                packets, L4[packets.protocol] in {L4.get(str(v), v) for v in values_any}
            )
        if key == "nfproto":
            family = "ipv4" if packets.version == 4 else "ipv6"
            return _by_truth(packets, family in {str(v) for v in values_any})
        if key in {"iifname", "iif"} and all(str(v) == "lo" for v in values_any):
            return [], [packets]  # packets from the network never arrive on loopback
        label = f"meta {key}"
        return _both(packets, label)
    if "ct" in left and isinstance(left["ct"], dict):
        key = str(left["ct"].get("key"))
        if key == "state":
            states = {str(v) for v in _elements(ruleset, where, right)}
            return _by_truth(packets, "new" in states)  # a connection's first packet
        label = f"ct {key}"
        return _both(packets, label)
    if "fib" in left or "socket" in left or "rt" in left:
        label = next(iter(left))
        return _both(packets, label)
    return [with_note(packets, unknown=text)], [with_note(packets, unknown=text)]


Action = tuple[str, str]  # (verdict, jump/goto target or "")


def _verdict_of(statement: dict[str, Any]) -> Action | None:
    for name in _VERDICTS:
        if name in statement:
            return name, ""
    for name in ("jump", "goto"):
        if name in statement and isinstance(statement[name], dict):
            return name, str(statement[name].get("target"))
    return None


def rule_outcomes(
    ruleset: Ruleset, where: tuple[str, str], packets: Packets, expr: list[Any]
) -> list[tuple[Packets, Action]]:
    """Each part of `packets` with what the rule does to it (("next", "") = falls through)."""
    live = [packets]
    done: list[tuple[Packets, Action]] = []
    for statement in expr:
        if not isinstance(statement, dict) or not statement or not live:
            continue
        kind = next(iter(statement), "")
        if kind == "match" and isinstance(statement["match"], dict):
            kept: list[Packets] = []
            for part in live:
                try:
                    hit, miss = _split(ruleset, where, part, statement["match"])
                except Unknown as exc:
                    hit, miss = (
                        [with_note(part, unknown=str(exc))],
                        [with_note(part, unknown=str(exc))],
                    )
                kept.extend(hit)
                done.extend((m, ("next", "")) for m in miss)
            live = kept
        elif (
            kind == "xt"
            and isinstance(statement["xt"], dict)
            and statement["xt"].get("type") == "match"
        ):
            # an iptables-nft match nft cannot express (addrtype, recent, ...): both ways
            label = f"xt match {statement['xt'].get('name')}"
            done.extend((with_note(part, unknown=label), ("next", "")) for part in live)
            live = [with_note(part, unknown=label) for part in live]
        elif kind == "vmap" and isinstance(statement["vmap"], dict):
            live, more = _vmap(ruleset, where, live, statement["vmap"])
            done.extend(more)
        elif (verdict := _verdict_of(statement)) is not None:
            done.extend((part, verdict) for part in live)
            live = []
        elif kind in _REWRITES:
            done.extend((part, ("rewrite", "")) for part in live)
            live = []
        elif kind in {"limit", "quota"}:
            live = [with_note(part, condition=kind) for part in live]
        elif kind in _IGNORED:
            continue
        else:  # a statement not understood may end the packet's way here: say so, go on
            body = statement[kind]
            name = kind
            if kind == "xt" and isinstance(body, dict):
                name = f"xt {body.get('type')} {body.get('name')}"
            live = [with_note(part, unknown=name) for part in live]
            done.extend((part, ("uncertain", "")) for part in live)
    done.extend((part, ("next", "")) for part in live)
    return done


def _vmap(
    ruleset: Ruleset, where: tuple[str, str], live: list[Packets], body: dict[str, Any]
) -> tuple[list[Packets], list[tuple[Packets, Action]]]:
    data = body.get("data")
    if isinstance(data, str) and data.startswith("@"):
        named = ruleset.sets.get((where[0], where[1], data[1:]))
        pairs = named.get("elem", []) if named else None
    elif isinstance(data, dict) and isinstance(data.get("set"), list):
        pairs = data["set"]
    else:
        pairs = None
    if pairs is None:
        return [], [(with_note(p, unknown=f"vmap {data!r}"), ("next", "")) for p in live]
    done: list[tuple[Packets, Action]] = []
    for pair in pairs:
        if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[1], dict)):
            live = [with_note(p, unknown=f"vmap element {pair!r}") for p in live]
            continue
        verdict = _verdict_of(pair[1])
        kept: list[Packets] = []
        for part in live:
            try:
                hit, miss = _split(
                    ruleset, where, part, {"left": body.get("key"), "right": pair[0]}
                )
            except Unknown as exc:
                hit, miss = [with_note(part, unknown=str(exc))], [with_note(part, unknown=str(exc))]
            done.extend((h, verdict or ("next", "")) for h in hit)
            kept.extend(miss)
        live = kept
    return live, done
