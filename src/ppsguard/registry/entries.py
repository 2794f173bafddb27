"""Build registry entries (provides / denies / uses) from composed YAML nodes, with validation.

Used by `registry.load`; kept apart so each module stays small. Every error names the node's
file:line:column and suggests the fix for a misspelt key or name.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from ppsguard.errors import InputError
from ppsguard.model.registry import (
    ANYWHERE,
    Action,
    Bind,
    BindScope,
    Direction,
    Entry,
    EntryKind,
    Sensitivity,
    ServiceDef,
    ServicePort,
    Waiver,
)
from ppsguard.registry.naming import (
    ENTRY_ID,
    ENTRY_ID_HINT,
    NetworkResolver,
    parse_address,
    parse_port_text,
    resolve_service,
    suggest,
)
from ppsguard.registry.yamlsafe import Node

COMMON_KEYS = (
    "id",
    "service",
    "port",
    "ports",
    "from",
    "except",
    "log",
    "purpose",
    "owner",
    "reference",
    "waiver",
    "description",
)
PROVIDES_KEYS = (
    *COMMON_KEYS,
    "bind",
    "process",
    "unit",
    "direction",
    "boundary",
    "encrypted",
    "sensitivity",
)
DENIES_KEYS = (*COMMON_KEYS, "action", "reason")
USES_KEYS = (*COMMON_KEYS, "to", "process", "unit", "encrypted", "sensitivity", "boundary")
KEYS = {EntryKind.PROVIDES: PROVIDES_KEYS, EntryKind.DENIES: DENIES_KEYS, EntryKind.USES: USES_KEYS}


def err(message: str, node: Node, hint: str | None = None) -> InputError:
    at = node.location
    return InputError(message, file=at.file, line=at.line, column=at.column, hint=hint)


def mapping(node: Node, what: str) -> dict[str, tuple[Node, Node]]:
    if not isinstance(node.value, dict):
        raise err(f"expected {what} (a mapping of key: value)", node)
    return node.value


def as_str(node: Node) -> str:
    if isinstance(node.value, bool) or node.value is None or node.kind != "scalar":
        raise err("expected text", node)
    if isinstance(node.value, dt.date):
        return node.value.isoformat()
    return str(node.value)


def as_str_list(node: Node) -> list[Node]:
    """A scalar or a list of scalars, as nodes whose values are text."""
    items = node.value if isinstance(node.value, list) else [node]
    out = []
    for item in items:
        if item.kind != "scalar" or item.value is None or isinstance(item.value, bool):
            raise err("expected a name, an address or a port", item)
        out.append(Node(str(item.value), item.location))
    return out


def optional_bool(node: Node) -> bool:
    if not isinstance(node.value, bool):
        raise err(f"expected true or false, not {node.value!r}", node)
    return node.value


def _enum(node: Node, enum: Any) -> Any:
    try:
        return enum(str(node.value))
    except ValueError:
        choices = [e.value for e in enum]
        raise err(
            f"unknown value {node.value!r}",
            node,
            suggest(str(node.value), choices) or f"use one of {', '.join(choices)}",
        ) from None


class EntryBuilder:
    """Turns entry mappings into Entry values; keeps entry ids unique across the registry."""

    def __init__(self, services: Mapping[str, ServiceDef], resolver: NetworkResolver) -> None:
        self._services = services
        self._resolver = resolver
        self._ids: dict[str, Node] = {}

    def entry_lists(
        self, owner: str, fields: dict[str, tuple[Node, Node]]
    ) -> tuple[tuple[Entry, ...], tuple[Entry, ...], tuple[Entry, ...]]:
        lists: list[tuple[Entry, ...]] = []
        for kind in (EntryKind.PROVIDES, EntryKind.DENIES, EntryKind.USES):
            node = fields.get(kind.value)
            if node is None or node[1].value is None:
                lists.append(())
                continue
            if not isinstance(node[1].value, list):
                raise err(f"{kind.value} must be a list of entries", node[1])
            lists.append(tuple(self.entry(owner, kind, item) for item in node[1].value))
        return lists[0], lists[1], lists[2]

    def entry(self, owner: str, kind: EntryKind, node: Node) -> Entry:
        fields = mapping(node, f"a {kind.value} entry")
        allowed = KEYS[kind]
        for name, (knode, _v) in fields.items():
            if name not in allowed:
                raise err(
                    f"unknown key {name!r} in {kind.value} entry", knode, suggest(name, allowed)
                )

        def text(name: str) -> str | None:
            return as_str(fields[name][1]) if name in fields else None

        service, ports = self._ports(fields, node)
        sources, excluded = self._addresses(fields, kind, node)
        destinations: tuple[str, ...] = ()
        if kind is EntryKind.USES:
            if "to" not in fields:
                raise err("a uses entry needs to:", node, "e.g. to: [resolvers]")
            destinations = self._names(fields["to"][1])
        action = Action.DENY if kind is EntryKind.DENIES else Action.ALLOW
        if "action" in fields:
            action = _enum(fields["action"][1], Action)
            if action is Action.ALLOW:
                raise err("a denies entry cannot allow", fields["action"][1], "use deny or reject")
        entry_id = self._id(owner, kind, fields, service=service, ports=ports, node=node)
        return Entry(
            id=entry_id,
            kind=kind,
            action=action,
            service=service,
            ports=ports,
            sources=sources,
            excluded=excluded,
            destinations=destinations,
            log=optional_bool(fields["log"][1]) if "log" in fields else False,
            location=node.location,
            bind=self._bind(fields["bind"][1]) if "bind" in fields else None,
            process=text("process"),
            unit=text("unit"),
            purpose=text("purpose") or text("reason") or text("description"),
            owner=text("owner"),
            direction=_enum(fields["direction"][1], Direction) if "direction" in fields else None,
            boundary=text("boundary"),
            encrypted=optional_bool(fields["encrypted"][1]) if "encrypted" in fields else None,
            sensitivity=(
                _enum(fields["sensitivity"][1], Sensitivity) if "sensitivity" in fields else None
            ),
            reference=text("reference"),
            waiver=self._waiver(fields["waiver"][1]) if "waiver" in fields else None,
        )

    def _ports(
        self, fields: dict[str, tuple[Node, Node]], node: Node
    ) -> tuple[str | None, tuple[ServicePort, ...]]:
        has_port = "port" in fields or "ports" in fields
        if "service" in fields and has_port:
            raise err("give either service: or port:, not both", node)
        if "port" in fields and "ports" in fields:
            raise err("give either port: or ports:, not both", node)
        ports: list[ServicePort] = []
        if "service" in fields:
            names = as_str_list(fields["service"][1])
            for item in names:
                ports.extend(resolve_service(str(item.value), self._services, item.location))
            service: str | None = "+".join(str(n.value) for n in names)
        elif has_port:
            for item in as_str_list((fields.get("port") or fields["ports"])[1]):
                ports.extend(parse_port_text(str(item.value), item.location))
            service = None
        else:
            raise err(
                "an entry needs service: or port:", node, "e.g. service: pop3 or port: 110/tcp"
            )
        unique = tuple(dict.fromkeys(ports))  # ordered and de-duplicated in linear time
        if not unique:
            raise err("an entry needs at least one service or port", node)
        return service, unique

    def _names(self, node: Node) -> tuple[str, ...]:
        out = []
        for item in as_str_list(node):
            self._resolver.resolve_one(str(item.value), item.location)  # validates the name
            out.append(str(item.value))
        return tuple(out)

    def _addresses(
        self, fields: dict[str, tuple[Node, Node]], kind: EntryKind, node: Node
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        if "from" in fields:
            sources = self._names(fields["from"][1])
        elif kind is EntryKind.PROVIDES:
            raise err(
                "a provides entry needs from:",
                node,
                "say who may connect, e.g. from: anywhere or from: [office]",
            )
        else:
            sources = (ANYWHERE,)
        excluded = self._names(fields["except"][1]) if "except" in fields else ()
        return sources, excluded

    def _bind(self, node: Node) -> Bind:
        value = str(node.value)
        if value in ("any", "loopback"):
            return Bind(BindScope(value))
        net = parse_address(value, node.location)
        if net is None or net.num_addresses != 1:
            raise err(f"bad bind {value!r}", node, "use any, loopback or one address")
        return Bind(BindScope.ADDRESS, net.network_address)

    def _waiver(self, node: Node) -> Waiver:
        fields = mapping(node, "a waiver {reason, expires}")
        for name, (knode, _v) in fields.items():
            if name not in ("reason", "expires"):
                raise err(
                    f"unknown key {name!r} in waiver", knode, suggest(name, ["reason", "expires"])
                )
        if "reason" not in fields or "expires" not in fields:
            raise err("a waiver needs reason: and expires: (YYYY-MM-DD)", node)
        expires = fields["expires"][1]
        if not isinstance(expires.value, dt.date):
            raise err(f"bad date {expires.value!r}", expires, "write YYYY-MM-DD")
        return Waiver(as_str(fields["reason"][1]), expires.value, node.location)

    def _id(
        self,
        owner: str,
        kind: EntryKind,
        fields: dict[str, tuple[Node, Node]],
        *,
        service: str | None,
        ports: tuple[ServicePort, ...],
        node: Node,
    ) -> str:
        if "id" in fields:
            entry_id = as_str(fields["id"][1])
            if not ENTRY_ID.fullmatch(entry_id):
                raise err(f"bad entry id {entry_id!r}", fields["id"][1], ENTRY_ID_HINT)
            if entry_id in self._ids:
                first = self._ids[entry_id].location
                raise err(
                    f"entry id {entry_id!r} is used twice", fields["id"][1], f"first at {first}"
                )
        else:
            label = service or "+".join(str(p) for p in ports)
            base = f"{owner}/{kind.value}/{label}"
            entry_id, n = base, 1
            while entry_id in self._ids:
                n += 1
                entry_id = f"{base}@{n}"  # `#` is not allowed in an entry id
        self._ids[entry_id] = node
        return entry_id
