"""iptables-legacy rules, which `nft list ruleset` cannot see, in the evaluator's shape. Pure.

`legacy_objects` turns `iptables-legacy-save` (or `ip6tables-legacy-save`) text into the objects
`nft -j list ruleset` would print for the same rules, so `fate.interference` judges them with
the nftables tables: `*filter` INPUT, `*raw` PREROUTING, `*mangle` PREROUTING and INPUT and
`*nat` PREROUTING become base chains (policy from the `:CHAIN POLICY` line), user chains become
regular chains, `-j CHAIN` a jump. Understood: -p, -s, -d, -i, --dport / --dports (multiport),
--sport, -m state/conntrack --state/--ctstate, and the targets ACCEPT, DROP, REJECT, RETURN,
DNAT, REDIRECT, and those that only mark or log. Any other option becomes a match the evaluator
does not know, so a drop behind it is "uncertain", never silently "fine"; any other target is
a statement it does not know ("may change the fate"). Negation (`!`) is honoured for -p, -s,
-i and --dport.
"""

from __future__ import annotations

import shlex
from typing import Any

from ppsguard.digits import decimal

_HOOKS = {
    ("filter", "INPUT"): ("input", 0),
    ("raw", "PREROUTING"): ("prerouting", -300),
    ("mangle", "PREROUTING"): ("prerouting", -150),
    ("mangle", "INPUT"): ("input", -150),
    ("nat", "PREROUTING"): ("prerouting", -100),
}
_TARGETS: dict[str, dict[str, Any]] = {
    "ACCEPT": {"accept": None},
    "DROP": {"drop": None},
    "REJECT": {"reject": None},
    "RETURN": {"return": None},
    "DNAT": {"dnat": None},
    "REDIRECT": {"redirect": None},
    "LOG": {"log": None},
    "QUEUE": {"queue": None},
    "NFQUEUE": {"queue": None},
}
_HARMLESS_TARGETS = {
    "LOG", "NFLOG", "MARK", "CONNMARK", "CT", "NOTRACK", "TCPMSS", "CLASSIFY", "DSCP", "TOS",
    "TTL", "HL", "AUDIT", "CHECKSUM", "SET", "TRACE",
}  # fmt: skip
_IGNORED_MATCHES = {"tcp", "udp", "comment", "multiport", "state", "conntrack"}
_SKIP_VALUE = {"--comment", "--reject-with", "--log-prefix", "--log-level", "--to-destination"}


def _match(left: dict[str, Any], right: Any, negate: bool) -> dict[str, Any]:
    return {"match": {"op": "!=" if negate else "==", "left": left, "right": right}}


def _payload(protocol: str, field: str) -> dict[str, Any]:
    return {"payload": {"protocol": protocol, "field": field}}


def _address(value: str) -> Any:
    if "/" in value:
        addr, length = value.split("/", 1)
        bits = decimal(length)
        if bits is not None:
            return {"prefix": {"addr": addr, "len": bits}}
    return value


def _ports(value: str) -> Any:
    items: list[Any] = []
    for part in value.split(","):
        low_text, _, high_text = part.partition(":")
        low, high = decimal(low_text), decimal(high_text)
        if low is None or (high_text and high is None):
            return {"unknown-port": value}
        items.append({"range": [low, high]} if high is not None else low)
    return items[0] if len(items) == 1 else {"set": items}


def _rule_expr(tokens: list[str], family: str) -> tuple[list[dict[str, Any]], str | None]:
    """(expressions, target) of one `-A CHAIN ...` line's tokens after the chain name."""
    ip = "ip" if family == "ip" else "ip6"
    expr: list[dict[str, Any]] = []
    target: str | None = None
    protocol = "th"
    negate = False
    index = 0
    while index < len(tokens):
        word = tokens[index]
        value = tokens[index + 1] if index + 1 < len(tokens) else ""
        if word == "!":
            negate = True
            index += 1
            continue
        step = 2
        if word in {"-p", "--protocol"}:
            protocol = value if not negate and value in {"tcp", "udp"} else protocol
            expr.append(_match({"meta": {"key": "l4proto"}}, value, negate))
        elif word in {"-s", "--source"}:
            expr.append(
                _match({"payload": {"protocol": ip, "field": "saddr"}}, _address(value), negate)
            )
        elif word in {"-d", "--destination"}:
            expr.append(
                _match({"payload": {"protocol": ip, "field": "daddr"}}, _address(value), negate)
            )
        elif word in {"-i", "--in-interface"}:
            expr.append(_match({"meta": {"key": "iifname"}}, value, negate))
        elif word in {"--dport", "--dports", "--destination-port", "--destination-ports"}:
            expr.append(_match(_payload(protocol, "dport"), _ports(value), negate))
        elif word in {"--sport", "--sports", "--source-port", "--source-ports"}:
            expr.append(
                _match({"payload": {"protocol": protocol, "field": "sport"}}, value, negate)
            )
        elif word in {"--state", "--ctstate"}:
            states = [s.lower() for s in value.split(",")]
            expr.append(_match({"ct": {"key": "state"}}, states, negate))
        elif word == "-m" and value in _IGNORED_MATCHES:
            pass
        elif word in {"-j", "--jump", "-g", "--goto"}:
            target = value
        elif word in _SKIP_VALUE:
            pass
        else:  # a match option not understood: followed both ways, the result "uncertain"
            expr.append({"match": {"op": "==", "left": {"xt": {"option": word}}, "right": None}})
            step = 1
        negate = False
        index += step
    return expr, target


def legacy_objects(
    save_text: str, family: str = "ip", source: str = "iptables-legacy"
) -> list[dict[str, Any]]:
    """The rules of `iptables-legacy-save` output as `nft -j` objects (family ip or ip6);
    table names carry `source` in brackets (`filter (iptables-legacy)`)."""
    objects: list[dict[str, Any]] = []
    table = ""
    handle = 0
    chains: set[tuple[str, str]] = set()
    for raw in save_text.splitlines():
        line = raw.strip()
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith(":") and table:
            parts = line[1:].split()
            if not parts:
                continue
            name, policy = parts[0], (parts[1] if len(parts) > 1 else "-")
            chains.add((table, name))
            body: dict[str, Any] = {
                "family": family,
                "table": f"{table} ({source})",
                "name": name,
            }
            if (table, name) in _HOOKS:
                hook, priority = _HOOKS[(table, name)]
                body.update(hook=hook, prio=priority, type="filter", policy=policy.lower())
            objects.append({"chain": body})
        elif line.startswith("-A ") and table:
            try:
                tokens = shlex.split(line)
            except ValueError:
                tokens = line.split()
            if len(tokens) < 2:
                continue
            handle += 1
            expr, target = _rule_expr(tokens[2:], family)
            if target in _TARGETS:
                expr.append(_TARGETS[target])
            elif target in _HARMLESS_TARGETS:
                expr.append({"counter": None})
            elif target and (table, target) in chains:
                expr.append({"jump": {"target": target}})
            elif target:
                expr.append({"xt": {"target": target}})
            rule = {
                "family": family,
                "table": f"{table} ({source})",
                "chain": tokens[1],
                "handle": handle,
                "expr": expr,
                "comment": line,
            }
            objects.append({"rule": rule})
    return objects
