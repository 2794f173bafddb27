"""Serialise a Registry back to registry YAML (`dump_registry`), e.g. for generated registries.

The output re-parses into a registry with the same entries, ids and verdicts (a property test
checks this). Everything goes into one document: includes are inlined, ids are written out
explicitly, and entries that named a service keep the name. Pure.
"""

from __future__ import annotations

from typing import Any

import yaml

from ppsguard.model.registry import Entry, EntryKind, HostDef, Registry, RoleDef


def _entry(entry: Entry) -> dict[str, Any]:
    out: dict[str, Any] = {"id": entry.id}
    if entry.service is not None:
        names = entry.service.split("+")
        out["service"] = names[0] if len(names) == 1 else names
    else:
        out["ports"] = [str(p) for p in entry.ports]
    if entry.kind is not EntryKind.USES:
        out["from"] = list(entry.sources)
    if entry.excluded:
        out["except"] = list(entry.excluded)
    if entry.kind is EntryKind.USES:
        out["to"] = list(entry.destinations)
    if entry.kind is EntryKind.DENIES:
        out["action"] = str(entry.action)
    out["log"] = entry.log
    if entry.bind is not None:
        out["bind"] = str(entry.bind)
    for name in ("process", "unit", "owner", "boundary", "reference"):
        value = getattr(entry, name)
        if value is not None:
            out[name] = value
    if entry.purpose is not None:
        out["reason" if entry.kind is EntryKind.DENIES else "purpose"] = entry.purpose
    if entry.kind is EntryKind.PROVIDES and entry.direction is not None:
        out["direction"] = str(entry.direction)
    if entry.kind is not EntryKind.DENIES:
        if entry.encrypted is not None:
            out["encrypted"] = entry.encrypted
        if entry.sensitivity is not None:
            out["sensitivity"] = str(entry.sensitivity)
    if entry.waiver is not None:
        out["waiver"] = {"reason": entry.waiver.reason, "expires": entry.waiver.expires}
    return out


def _lists(owner: HostDef | RoleDef, out: dict[str, Any]) -> None:
    for name in ("denies", "provides", "uses"):
        entries = getattr(owner, name)
        if entries:
            out[name] = [_entry(e) for e in entries]


def registry_to_data(registry: Registry) -> dict[str, Any]:
    """The registry as plain YAML-ready data."""
    data: dict[str, Any] = {"version": 1}
    if registry.description:
        data["description"] = registry.description
    data["default"] = str(registry.default)
    data["default_log"] = registry.default_log
    if registry.networks:
        data["networks"] = {
            n.name: {
                "addresses": list(n.members),
                **({"except": list(n.excluded)} if n.excluded else {}),
                **({"description": n.description} if n.description else {}),
            }
            for n in registry.networks
        }
    if registry.services:
        data["services"] = {
            s.name: {
                "ports": [str(p) for p in s.ports],
                **({"description": s.description} if s.description else {}),
            }
            for s in registry.services
        }
    if registry.roles:
        roles: dict[str, Any] = {}
        for role in registry.roles:
            body: dict[str, Any] = {}
            if role.description:
                body["description"] = role.description
            _lists(role, body)
            roles[role.name] = body
        data["roles"] = roles
    hosts: dict[str, Any] = {}
    for host in registry.hosts:
        body = {}
        if host.description:
            body["description"] = host.description
        if host.addresses:
            body["addresses"] = [str(a) for a in host.addresses]
        if host.roles:
            body["roles"] = list(host.roles)
        if host.default is not None:
            body["default"] = str(host.default)
        if host.default_log is not None:
            body["default_log"] = host.default_log
        _lists(host, body)
        hosts[host.name] = body
    data["hosts"] = hosts
    return data


def dump_registry(registry: Registry) -> str:
    """Registry YAML text (see the module docstring)."""
    return yaml.safe_dump(
        registry_to_data(registry), sort_keys=False, allow_unicode=True, default_flow_style=False
    )
