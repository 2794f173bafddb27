"""Draft a registry from what is observed, so an existing machine is documented in minutes.

Pure: takes listeners and outside views, returns YAML text. Every open door becomes a `provides`
entry with its port, its bind (loopback, one address or any), its process or systemd unit, and
`purpose`/`owner` marked TODO; the default is deny. `pps audit` against the draft reports no
undocumented door on the same host. The text is parsed back by the registry loader before it
is returned, so a draft that would not load is never written.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable

import yaml

from ppsguard.audit.advise import TODO_OWNER, TODO_PURPOSE, entry_mapping, safe_entry_id
from ppsguard.audit.views import Listener, OutsideView, ReachState
from ppsguard.model.net import IPAddress, Protocol

ServiceNamer = Callable[[int, Protocol], str | None]
_HOST_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def host_key(name: str) -> str:
    """A registry host name from a machine, namespace or address name."""
    return _HOST_SAFE.sub("-", name).strip("-")[:63] or "host"


def _unique(mapping: dict[str, object], used: set[str]) -> None:
    base = str(mapping["id"])
    candidate, n = base, 1
    while candidate in used:
        n += 1
        candidate = f"{base}-{n}"
    used.add(candidate)
    mapping["id"] = candidate


def host_entries(
    listeners: Iterable[Listener],
    outside: OutsideView | None,
    service_name: ServiceNamer,
) -> list[dict[str, object]]:
    """`provides` entries for every listening (protocol, port) and every port open outside."""
    groups: dict[tuple[Protocol, int], list[Listener]] = {}
    for item in listeners:
        groups.setdefault((item.protocol, item.port), []).append(item)
    used: set[str] = set()
    entries: list[dict[str, object]] = []
    for (protocol, port), items in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        mapping = entry_mapping(items, service_name(port, protocol))
        if protocol is not Protocol.TCP and service_name(port, Protocol.TCP):
            mapping["id"] = f"{mapping['id']}-{protocol.value}"
        _unique(mapping, used)
        entries.append(mapping)
    if outside is not None:
        seen = set(groups)
        for reach in outside.results:
            key = (reach.protocol, reach.port)
            if reach.state is not ReachState.OPEN or key in seen:
                continue
            seen.add(key)
            name = reach.service or service_name(reach.port, reach.protocol)
            mapping = {
                "id": safe_entry_id(name, reach.port, reach.protocol.value),
                "port": f"{reach.port}/{reach.protocol.value}",
                "from": "anywhere",
                "purpose": TODO_PURPOSE,
                "owner": TODO_OWNER,
            }
            if name:
                mapping["description"] = f"{name} (seen open from outside)"
            _unique(mapping, used)
            entries.append(mapping)
    return sorted(entries, key=lambda m: (int(str(m["port"]).split("/")[0]), str(m["port"])))


def draft_registry(
    hosts: list[tuple[str, tuple[IPAddress, ...], list[dict[str, object]]]],
    *,
    source: str,
    today: dt.date,
) -> str:
    """YAML text of a whole draft registry; `hosts` is (name, addresses, provides entries)."""
    document: dict[str, object] = {
        "version": 1,
        "description": (
            f"Draft written by `pps registry init` on {today.isoformat()} from {source}. "
            "Replace every TODO with the door's purpose and owner, narrow `from:` to who "
            "really connects, and delete what should not be open."
        ),
        "default": "deny",
        "hosts": {},
    }
    hosts_doc: dict[str, object] = {}
    for name, addresses, provides in hosts:
        host: dict[str, object] = {}
        if addresses:
            host["addresses"] = [str(a) for a in addresses]
        host["provides"] = provides
        hosts_doc[host_key(name)] = host
    document["hosts"] = hosts_doc
    header = (
        "# Draft PPS registry: every door observed open, documented as it is.\n"
        "# Check it with `pps audit THIS_FILE`; enforce it with `pps policy apply THIS_FILE`.\n"
    )
    text = header + str(yaml.safe_dump(document, sort_keys=False, default_flow_style=False))
    from ppsguard.registry.load import parse_registry

    parse_registry(text, "<draft>")  # never hand out a draft that does not load
    return text
