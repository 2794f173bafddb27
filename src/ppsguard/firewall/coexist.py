"""Other firewall managers on the machine, and what each does to the registry's ports. Pure.

Input: rule objects in the shape `nft -j list ruleset` prints (native nftables tables as they
are; `iptables-save` text of either backend turned into the same shape by `legacy.py`), each
tagged with where it was read. A manager is recognised by the names it gives its tables and
chains (`SIGNATURES`): ufw (`ufw-*`, `ufw6-*` chains), firewalld (`table inet firewalld`, or
`INPUT_ZONES`, `IN_<zone>*`, `*_direct` chains), Docker (`DOCKER`, `DOCKER-USER`,
`DOCKER-ISOLATION-*`, ... chains, `docker*` tables), libvirt (`LIBVIRT_*` chains,
`libvirt_network` table) and kube-proxy (`KUBE-*` chains, `kube-proxy` table).

For every rule of a manager's chain that names destination ports, `coexistence` says what it
does (accepts, drops, rejects, publishes = DNAT, redirects) and, given the registry's policy,
how that compares with what the registry says for those ports from anywhere:

    ufw: table ip filter chain ufw-user-input accepts tcp/22 which the registry denies
    docker: table ip nat chain DOCKER publishes tcp/8080 (DNAT: forwarded traffic never
            passes INPUT, so ppsguard's rules do not see it) which the registry denies

A manager's accept does not open what ppsguard drops (every base chain must accept), but it
is a disagreement to resolve; its drop overrides ppsguard's accept, and a DNAT sends traffic
past INPUT entirely (moby#4737). Rules with a negated or unknown port match are skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ppsguard.model.net import Protocol
from ppsguard.model.registry import Action, HostPolicy

SIGNATURES: tuple[tuple[str, re.Pattern[str], re.Pattern[str]], ...] = (
    # (manager, table name pattern, chain name pattern)
    ("ufw", re.compile(r"^$"), re.compile(r"^ufw6?-")),
    (
        "firewalld",
        re.compile(r"^firewalld$"),
        re.compile(r"^(INPUT_ZONES|(INPUT|FORWARD|OUTPUT)_direct|(IN|FWDI|FWDO)_\w+)$"),
    ),
    (
        "docker",
        re.compile(r"^docker"),
        re.compile(
            r"^(DOCKER|DOCKER-USER|DOCKER-FORWARD|DOCKER-CT|DOCKER-BRIDGE|DOCKER-ISOLATION.*)$"
        ),
    ),
    ("libvirt", re.compile(r"^libvirt"), re.compile(r"^LIBVIRT_")),
    ("kube-proxy", re.compile(r"^kube-proxy$"), re.compile(r"^KUBE-")),
)
_VERDICTS = {
    "accept": "accepts",
    "drop": "drops",
    "reject": "rejects",
    "dnat": "publishes",
    "redirect": "redirects",
    "queue": "queues to user space",
}
MAX_TOUCHES = 50  # per manager: a kube-proxy with thousands of services is summarised


@dataclass(frozen=True, slots=True)
class Touch:
    """One rule of a manager that decides destination ports."""

    where: str  # "table ip filter chain ufw-user-input" (+ " (iptables-legacy)")
    protocol: str
    ports: tuple[tuple[int, int], ...]
    verdict: str  # a key of _VERDICTS


@dataclass(frozen=True, slots=True)
class Manager:
    """A firewall manager found in the rule set: where, and what it does to ports."""

    name: str
    places: tuple[str, ...]
    touches: tuple[Touch, ...]
    more: int = 0  # touches beyond MAX_TOUCHES, not listed


def manager_of(table: str, chain: str) -> str | None:
    """The manager owning a table or chain by its name, or None."""
    for name, table_pattern, chain_pattern in SIGNATURES:
        if (table and table_pattern.search(table)) or chain_pattern.search(chain):
            return name
    return None


def _ports(right: Any) -> list[tuple[int, int]] | None:
    if isinstance(right, int) and not isinstance(right, bool):
        return [(right, right)]
    if isinstance(right, dict) and isinstance(right.get("range"), list):
        low, high = right["range"][:2]
        return [(low, high)] if isinstance(low, int) and isinstance(high, int) else None
    if isinstance(right, dict) and isinstance(right.get("set"), list):
        found: list[tuple[int, int]] = []
        for item in right["set"]:
            part = _ports(item)
            if part is None:
                return None
            found.extend(part)
        return found
    return None


def _touch(body: dict[str, Any], where: str) -> Touch | None:
    expr = body.get("expr")
    if not isinstance(expr, list):
        return None
    protocol = "any"
    nat = str(body.get("table", "")).startswith("nat")
    ports: list[tuple[int, int]] | None = None
    verdict: str | None = None
    for statement in expr:
        if not isinstance(statement, dict):
            continue
        match = statement.get("match")
        if isinstance(match, dict):
            left = match.get("left") if isinstance(match.get("left"), dict) else {}
            assert isinstance(left, dict)
            payload = left.get("payload") if isinstance(left.get("payload"), dict) else None
            meta = left.get("meta") if isinstance(left.get("meta"), dict) else None
            if payload and payload.get("field") == "dport":
                if match.get("op") not in {"==", "in"}:
                    return None
                ports = _ports(match.get("right"))
                if ports is None:
                    return None
                if payload.get("protocol") in {"tcp", "udp", "sctp"}:
                    protocol = str(payload["protocol"])
            elif meta and meta.get("key") == "l4proto" and match.get("op") == "==":
                value = match.get("right")
                protocol = str(value) if value in {"tcp", "udp", "sctp"} else protocol
        for key in _VERDICTS:
            if key in statement:
                verdict = key
        if verdict is None and ("jump" in statement or "goto" in statement) and nat:
            verdict = "dnat"  # kube-proxy's node ports: a jump to the chain that DNATs
    if ports is None or verdict is None:
        return None
    return Touch(where, protocol, tuple(ports), verdict)


def _where(family: str, table: str, chain: str) -> str:
    label = ""
    if " (" in table:  # "filter (iptables-legacy)" as legacy.py names it
        table, label = table.split(" (", 1)
        label = f" (via {label.rstrip(')')})"
    return f"table {family} {table} chain {chain}{label}"


def find_managers(objects: Iterable[dict[str, Any]]) -> list[Manager]:
    """The managers in `objects` (nft -j shaped), with their places and port rules."""
    places: dict[str, list[str]] = {}
    touches: dict[str, list[Touch]] = {}
    for item in objects:
        for kind in ("table", "chain", "rule"):
            body = item.get(kind)
            if not isinstance(body, dict):
                continue
            family = str(body.get("family", "?"))
            table = str(body.get("name" if kind == "table" else "table", ""))
            chain = "" if kind == "table" else str(body.get("name" if kind == "chain" else "chain"))
            manager = manager_of(table.split(" (", maxsplit=1)[0], chain)
            if manager is None:
                continue
            if kind == "table":
                place = f"table {family} {table}"
            elif kind == "chain":
                place = _where(family, table, chain)
            else:
                place = ""
                touch = _touch(body, _where(family, table, chain))
                if touch is not None and touch not in touches.get(manager, []):
                    touches.setdefault(manager, []).append(touch)
            if place and place not in places.get(manager, []):
                places.setdefault(manager, []).append(place)
            touches.setdefault(manager, [])
    out: list[Manager] = []
    for name, _, _ in SIGNATURES:
        if name not in touches and name not in places:
            continue
        found = touches.get(name, [])
        out.append(
            Manager(
                name,
                tuple(places.get(name, [])),
                tuple(found[:MAX_TOUCHES]),
                max(0, len(found) - MAX_TOUCHES),
            )
        )
    return out


def registry_says(policy: HostPolicy, protocol: str, port: int) -> str:
    """`allows`, `allows only from some sources` or `denies`, for `port` from anywhere."""
    try:
        wanted = Protocol(protocol)
    except ValueError:
        wanted = Protocol.TCP
    for rule in policy.rules:
        if rule.protocol != wanted or not any(p.first <= port <= p.last for p in rule.ports):
            continue
        if rule.source_is_any and rule.destination_is_any:
            return "allows" if rule.action is Action.ALLOW else "denies"
        if rule.action is Action.ALLOW:
            return "allows only from some sources"
    if policy.default_action is Action.ALLOW:
        return "allows"
    return "denies"


def _span(ports: tuple[tuple[int, int], ...]) -> str:
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in ports)


def describe(manager: Manager, touch: Touch, policy: HostPolicy | None) -> str:
    """`ufw: table ip filter chain ufw-user-input accepts tcp/22 which the registry denies`."""
    verb = _VERDICTS[touch.verdict]
    what = f"{touch.protocol}/{_span(touch.ports)}"
    line = f"{manager.name}: {touch.where} {verb} {what}"
    if touch.verdict == "dnat":
        line += " (DNAT: forwarded traffic never passes INPUT, so ppsguard's rules do not see it)"
    if policy is None:
        return line
    protocols = ("tcp", "udp") if touch.protocol == "any" else (touch.protocol,)
    says = {registry_says(policy, p, first) for p in protocols for first, _ in touch.ports}
    if touch.verdict in {"accept", "dnat", "redirect"}:
        wrong = sorted(s for s in says if s != "allows")
        if wrong:
            line += f" which the registry {wrong[0]}"
    elif touch.verdict in {"drop", "reject", "queue"} and any(s.startswith("allows") for s in says):
        line += " which the registry allows"
    return line


def coexistence(managers: list[Manager], policy: HostPolicy | None) -> list[str]:
    """One line per manager present, then one per port rule (compared with the registry)."""
    lines: list[str] = []
    for manager in managers:
        shown = ", ".join(manager.places[:4]) + (
            f" and {len(manager.places) - 4} more" if len(manager.places) > 4 else ""
        )
        lines.append(f"{manager.name}: present ({shown or 'no chains'})")
        lines.extend(describe(manager, touch, policy) for touch in manager.touches)
        if manager.more:
            lines.append(f"{manager.name}: and {manager.more} more port rules")
    return lines
