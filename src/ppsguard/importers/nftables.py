"""`nft -j list ruleset` (libnftables JSON) to the same chains the iptables importer walks. Pure.

Every base chain on the `input` hook of a `filter` type is a candidate; the one with the lowest
priority is imported (others are listed as not expressed: two input chains each decide, and the
registry has one order). Jumps are followed by the shared walker (`chains`). Understood:

    tcp|udp|sctp dport N | {22, 80} | 8000-8100 | @portset      th dport with meta l4proto
    ip saddr | ip6 saddr  ADDR | PREFIX | RANGE | {...} | @addrset   (`!=` is an except)
    meta l4proto / ip protocol / ip6 nexthdr tcp|udp|sctp   ct state new | established,related
    iifname "lo" accept     ... dport vmap { 22 : accept, 80 : jump web }   (named maps too)
    accept | drop | reject | jump | return | log (with the verdict in the same rule)

Named and anonymous sets (plain values, prefixes, ranges, intervals) resolve to their members;
a named address set keeps its name for the draft's `networks:`. Anything else is an
`Unexpressed` naming `table FAMILY NAME chain C handle H`.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import Any

from ppsguard.errors import InputError
from ppsguard.firewall.fate import describe_rule
from ppsguard.importers.chains import import_tables
from ppsguard.importers.iptables import Line, Table
from ppsguard.importers.rules import (
    ANY4,
    ANY6,
    PORT_PROTOCOLS,
    Imported,
    Match,
    Sources,
    intersect,
)
from ppsguard.model.net import IPNetwork
from ppsguard.registry.naming import collapse

FAMILY_VERSIONS = {"ip": 4, "ip6": 6, "inet": 0}
_VERDICTS = {"accept": "ACCEPT", "drop": "DROP", "reject": "REJECT", "return": "RETURN"}


class _Unknown(Exception):
    """An expression this importer cannot express (its text is the reason)."""


@dataclass(slots=True)
class _Sets:
    """Named sets and maps of one table, by name: their elements as JSON values."""

    elements: dict[str, list[Any]]
    kinds: dict[str, str]


def _value(element: Any) -> Any:
    if isinstance(element, dict) and "elem" in element:
        return element["elem"].get("val")
    return element


def _port_items(right: Any, sets: _Sets) -> list[tuple[int, int]]:
    if isinstance(right, bool):
        raise _Unknown("bad port")
    if isinstance(right, int):
        return [(right, right)]
    if isinstance(right, str) and right.startswith("@"):
        return [p for item in sets.elements.get(right[1:], []) for p in _port_items(item, sets)]
    if isinstance(right, dict):
        right = _value(right)
        if isinstance(right, dict) and "range" in right:
            low, high = right["range"]
            return [(int(low), int(high))]
        if isinstance(right, dict) and "set" in right:
            return [p for item in right["set"] for p in _port_items(item, sets)]
        if isinstance(right, int):
            return [(right, right)]
    raise _Unknown(f"port value {right!r}")


def _address_items(right: Any, sets: _Sets) -> list[IPNetwork]:
    if isinstance(right, str):
        if right.startswith("@"):
            items = sets.elements.get(right[1:])
            if items is None:
                raise _Unknown(f"set {right} not in the ruleset")
            return [n for item in items for n in _address_items(item, sets)]
        return [ipaddress.ip_network(right, strict=False)]
    if isinstance(right, dict):
        right = _value(right)
        if isinstance(right, str):
            return _address_items(right, sets)
        if isinstance(right, dict) and "prefix" in right:
            return [ipaddress.ip_network(f"{right['prefix']['addr']}/{right['prefix']['len']}")]
        if isinstance(right, dict) and "range" in right:
            low, high = (ipaddress.ip_address(v) for v in right["range"])
            return list(ipaddress.summarize_address_range(low, high))
        if isinstance(right, dict) and "set" in right:
            return [n for item in right["set"] for n in _address_items(item, sets)]
    raise _Unknown(f"address value {right!r}")


def _words(right: Any) -> set[str]:
    if isinstance(right, str):
        return {right}
    if isinstance(right, list):
        return {str(v) for v in right}
    if isinstance(right, dict) and "set" in right:
        return {str(v) for v in right["set"]}
    raise _Unknown(f"value {right!r}")


def _apply_match(line: Line, body: dict[str, Any], sets: _Sets, version: int) -> None:
    left, right, op = body.get("left"), body.get("right"), body.get("op", "==")
    negate = op == "!="
    if op not in ("==", "!=", "in"):
        raise _Unknown(f"operator {op}")
    match = line.match
    if isinstance(left, dict) and "payload" in left:
        protocol, field = left["payload"].get("protocol"), left["payload"].get("field")
        if protocol in ("icmp", "icmpv6", "igmp", "esp", "ah", "gre"):
            line.match = Match(frozenset(), match.ports, match.sources)  # no tcp/udp/sctp packet
            raise _Unknown(f"{protocol} {field}")
        if field == "dport" and (protocol in PORT_PROTOCOLS or protocol == "th"):
            ports = tuple(sorted(_port_items(right, sets)))
            keep = frozenset({protocol}) if protocol in PORT_PROTOCOLS else PORT_PROTOCOLS
            if negate:
                from ppsguard.firewall.packets import normalize, subtract

                ports = subtract(((0, 65535),), normalize(ports))
            line.match = intersect(match, Match(keep, ports))
            return
        if field == "saddr" and protocol in ("ip", "ip6"):
            nets = collapse(_address_items(right, sets))
            every: tuple[IPNetwork, ...] = (ANY4,) if protocol == "ip" else (ANY6,)
            if negate:
                line.match = intersect(match, Match(sources=Sources(every, nets)))
            else:
                line.match = intersect(match, Match(sources=Sources(nets)))
            return
        if (protocol, field) in (("ip", "protocol"), ("ip6", "nexthdr")) and not negate:
            names = _words(right)
            if not names <= PORT_PROTOCOLS:
                raise _Unknown(f"{protocol} {field} {','.join(sorted(names))}")
            every = (ANY4,) if protocol == "ip" else (ANY6,)
            line.match = intersect(match, Match(frozenset(names), sources=Sources(every)))
            return
        raise _Unknown(f"{protocol} {field}")
    if isinstance(left, dict) and "meta" in left:
        key = left["meta"].get("key")
        if key == "l4proto" and not negate:
            names = _words(right)
            if not names <= PORT_PROTOCOLS:
                line.match = Match(frozenset(names) & PORT_PROTOCOLS, match.ports, match.sources)
                raise _Unknown(f"meta l4proto {','.join(sorted(names))}")
            line.match = intersect(match, Match(frozenset(names)))
            return
        if key == "nfproto" and not negate:
            names = _words(right)
            pairs: tuple[tuple[IPNetwork, str], ...] = ((ANY4, "ipv4"), (ANY6, "ipv6"))
            every = tuple(n for n, w in pairs if w in names)
            line.match = intersect(match, Match(sources=Sources(every)))
            return
        if key == "iifname" and right == "lo" and not negate:
            line.interface_lo = True
            return
        raise _Unknown(f"meta {key}")
    if isinstance(left, dict) and "ct" in left and left["ct"].get("key") == "state" and not negate:
        line.states = frozenset(w.upper() for w in _words(right))
        return
    raise _Unknown(describe_rule({"expr": [{"match": body}]}))


def _lines(rule: dict[str, Any], origin: str, sets: _Sets, version: int) -> list[Line]:
    """One nft rule as walker lines: a vmap gives one line per element."""
    line = Line(rule["chain"], origin, describe_rule(rule), Match())
    if version:
        line.match = Match(sources=Sources((ANY4,) if version == 4 else (ANY6,)))
    logged = False
    out: list[Line] = []
    for statement in rule.get("expr") or []:
        if not isinstance(statement, dict) or not statement:
            continue
        kind, body = next(iter(statement.items()))
        try:
            if kind == "match":
                _apply_match(line, body, sets, version)
            elif kind in ("counter",):
                continue
            elif kind == "log":
                logged = True
            elif kind == "comment":
                line.comment = str(body)
            elif kind in _VERDICTS:
                line.target = _VERDICTS[kind]
            elif kind == "jump":
                line.target = str(body.get("target"))
            elif kind == "vmap":
                out.extend(_vmap_lines(line, body, sets, version))
                line.target = None
                return [*([_log(line)] if logged else []), *out]
            else:
                raise _Unknown(kind)
        except _Unknown as why:
            line.problems.append(str(why))
        except (ValueError, TypeError, KeyError) as exc:
            line.problems.append(f"cannot read {kind}: {exc}")
    if logged and line.target is None:
        line.target = "LOG"
        return [line]
    return [*([_log(line)] if logged else []), line]


def _log(line: Line) -> Line:
    return Line(line.chain, line.origin, line.text, line.match, "LOG", list(line.problems),
                line.states, line.interface_lo, line.comment)  # fmt: skip


def _vmap_lines(line: Line, body: dict[str, Any], sets: _Sets, version: int) -> list[Line]:
    data = body.get("data")
    if isinstance(data, str) and data.startswith("@"):
        pairs = sets.elements.get(data[1:], [])
    elif isinstance(data, dict) and "set" in data:
        pairs = data["set"]
    else:
        raise _Unknown("verdict map data")
    out = []
    for pair in pairs:
        key, verdict = pair if isinstance(pair, list) else (None, None)
        sub = Line(line.chain, line.origin, line.text, line.match, None, list(line.problems),
                   line.states, line.interface_lo, line.comment)  # fmt: skip
        try:
            _apply_match(sub, {"op": "==", "left": body.get("key"), "right": key}, sets, version)
        except _Unknown as why:
            sub.problems.append(str(why))
        if isinstance(verdict, dict) and verdict:
            name, arg = next(iter(verdict.items()))
            sub.target = _VERDICTS.get(name) or (str(arg.get("target")) if name == "jump" else None)
            if sub.target is None:
                sub.problems.append(f"verdict {name}")
        out.append(sub)
    return out


def parse_nft_json(text: str, file: str) -> Imported:
    """Parse `nft -j list ruleset` and import its input chain."""
    try:
        document = json.loads(text)
        items = document["nftables"]
        if not isinstance(items, list):
            raise TypeError("nftables is not a list")
    except json.JSONDecodeError as exc:
        raise InputError(
            f"not JSON: {exc.msg}", file=file, line=exc.lineno, column=exc.colno
        ) from None
    except (KeyError, TypeError) as exc:
        raise InputError(f"not `nft -j list ruleset` output ({exc})", file=file) from None
    tables: dict[tuple[str, str], Table] = {}
    sets: dict[tuple[str, str], _Sets] = {}
    bases: list[tuple[int, tuple[str, str], str, str]] = []
    named: dict[tuple[IPNetwork, ...], str] = {}
    others: list[tuple[str, str, str]] = []
    for item in items:
        if not isinstance(item, dict) or not item:
            continue
        kind, body = next(iter(item.items()))
        if not isinstance(body, dict):
            continue
        key = (str(body.get("family")), str(body.get("table") or body.get("name")))
        if kind == "table":
            version = FAMILY_VERSIONS.get(key[0])
            if version is None:
                others.append(
                    (f"{file}: table {key[0]} {key[1]}", "table", "family not inbound IP")
                )
                continue
            tables[key] = Table(version)
            sets[key] = _Sets({}, {})
        elif kind in ("set", "map") and key in sets:
            sets[key].elements[str(body.get("name"))] = list(body.get("elem") or [])
            sets[key].kinds[str(body.get("name"))] = str(body.get("type"))
        elif kind == "chain" and key in tables:
            name = str(body.get("name"))
            tables[key].chains[name] = []
            if body.get("hook") == "input" and body.get("type") == "filter":
                bases.append(
                    (int(body.get("prio", 0)), key, name, str(body.get("policy", "accept")))
                )
        elif kind == "rule" and key in tables:
            chain = str(body.get("chain"))
            origin = f"{file}: {key[0]} {key[1]} {chain} handle {body.get('handle')}"
            if chain not in tables[key].chains:
                raise InputError(f"rule in unknown chain {chain!r}", file=file, token=origin)
            tables[key].chains[chain].extend(_lines(body, origin, sets[key], tables[key].version))
    for table_sets in sets.values():
        for name, elements in table_sets.elements.items():
            if "addr" in table_sets.kinds.get(name, ""):
                try:
                    named[collapse(_address_items({"set": elements}, table_sets))] = name
                except (_Unknown, ValueError):
                    continue
    return _import(tables, sorted(bases), named, others, file)


def _import(
    tables: dict[tuple[str, str], Table],
    bases: list[tuple[int, tuple[str, str], str, str]],
    named: dict[tuple[IPNetwork, ...], str],
    others: list[tuple[str, str, str]],
    file: str,
) -> Imported:
    if not bases:
        imported = import_tables([], "nftables")
    else:
        _, key, chain, policy = bases[0]
        table = tables[key]
        table.policies[chain] = (policy.upper(), f"{file}: {key[0]} {key[1]} chain {chain} policy")
        imported = import_tables([table], "nftables", entry=chain)
        for _, other, name, _policy in bases[1:]:
            count = len(tables[other].chains[name])
            imported.skip(f"{file}: {other[0]} {other[1]} {name}", f"input chain ({count} rules)",
                          "a second input chain: its verdicts are not merged")  # fmt: skip
        for other_key, other_table in tables.items():
            if other_key != key:
                for chain_name, lines in other_table.chains.items():
                    if lines and all(chain_name != b[2] or other_key != b[1] for b in bases):
                        imported.skip(f"{file}: {other_key[0]} {other_key[1]} {chain_name}",
                                      f"{len(lines)} rule(s)", "not on the input path")  # fmt: skip
        imported.families = {4, 6} if table.version == 0 else {table.version}
    for origin, text, why in others:
        imported.skip(origin, text, why)
    imported.set_names.update(named)
    return imported


def loadable_json(text: str, file: str) -> dict[str, Any]:
    """`nft -j list ruleset` output reordered so `nft -j -f` accepts it: tables, chains, sets and
    maps, then rules, each as an `add` command without handles (a map may jump to a chain
    listed after it)."""
    order = {"table": 0, "chain": 1, "set": 2, "map": 2, "rule": 3}
    try:
        items = json.loads(text)["nftables"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise InputError("not `nft -j list ruleset` output", file=file) from None
    kept = [dict(i) for i in items if isinstance(i, dict) and i and next(iter(i)) in order]
    kept.sort(key=lambda item: order[next(iter(item))])
    commands = []
    for item in kept:
        kind, body = next(iter(item.items()))
        body = {k: v for k, v in body.items() if k != "handle"}
        commands.append({"add": {kind: body}})
    return {"nftables": commands}
