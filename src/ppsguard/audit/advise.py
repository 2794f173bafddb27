"""Remedies that can be run: the unit to stop, the bind to narrow, the registry entry to add or
remove, the policy to apply. Pure: builds `Remedy` values (text and YAML) from observations.

The registry YAML it proposes is the same shape `pps registry init` writes, so a reader can paste
it under the host's `provides:` and `pps audit` accepts it.
"""

from __future__ import annotations

import json
import re
import shlex

from ppsguard.audit.views import Listener
from ppsguard.model.findings import Remedy
from ppsguard.model.registry import Entry
from ppsguard.model.sockets import Exposure

TODO_PURPOSE = "TODO: why is this door open?"
TODO_OWNER = "TODO: who answers for it?"

# How to narrow the bind of well-known daemons to loopback (config file hint per service).
_BIND_HINTS: dict[int, str] = {
    6379: "redis: set `bind 127.0.0.1 ::1` in /etc/redis/redis.conf, then restart redis-server",
    3306: "mysql/mariadb: set `bind-address = 127.0.0.1` under [mysqld], then restart it",
    5432: "postgresql: set `listen_addresses = 'localhost'` in postgresql.conf, then restart it",
    11211: "memcached: run it with `-l 127.0.0.1` (/etc/memcached.conf), then restart it",
    27017: "mongodb: set `net.bindIp: 127.0.0.1` in /etc/mongod.conf, then restart it",
    9200: "elasticsearch: set `network.host: 127.0.0.1` in elasticsearch.yml, then restart it",
    22: "sshd: set `ListenAddress` in /etc/ssh/sshd_config, then `systemctl reload ssh`",
    80: "web server: listen on `127.0.0.1:80` in the server's site configuration",
}

_ID_SAFE = re.compile(r"[^A-Za-z0-9_.:@+=,-]+")


def safe_entry_id(text: str | None, port: int, protocol: str) -> str:
    """A readable entry id the registry loader and every renderer accept: the (service) text
    with anything else replaced by `-`, else `port-1337-tcp`."""
    fallback = f"port-{port}-{protocol}"
    return _ID_SAFE.sub("-", text or fallback).strip("-")[:80] or fallback


def entry_id_for(listener: Listener, service: str | None) -> str:
    """A readable, registry-safe entry id: the service name, else `port-1337-tcp`."""
    return safe_entry_id(service, listener.port, listener.protocol.value)


def bind_of(listeners: list[Listener]) -> str:
    """`loopback`, one address, or `any` — the narrowest bind covering all these listeners."""
    if all(item.exposure is Exposure.LOOPBACK for item in listeners):
        return "loopback"
    outward = [item for item in listeners if item.exposure is not Exposure.LOOPBACK]
    addresses = {str(item.address) for item in outward}
    if all(item.exposure is Exposure.SPECIFIC for item in outward) and len(addresses) == 1:
        return addresses.pop()
    return "any"


def entry_mapping(listeners: list[Listener], service: str | None) -> dict[str, object]:
    """The registry entry (as a YAML-ready mapping) documenting these listeners of one port."""
    first = listeners[0]
    mapping: dict[str, object] = {
        "id": entry_id_for(first, service),
        "port": f"{first.port}/{first.protocol.value}",
        "from": "anywhere",
        "bind": bind_of(listeners),
    }
    if service:
        mapping["description"] = f"{service} (as observed)"
    named = next((item for item in listeners if item.unit or item.exe or item.process), first)
    if named.unit and named.unit.endswith((".service", ".socket")):
        mapping["unit"] = named.unit
    elif named.process:
        mapping["process"] = named.process
    mapping["purpose"] = TODO_PURPOSE
    mapping["owner"] = TODO_OWNER
    return mapping


def yaml_item(mapping: dict[str, object]) -> str:
    """One YAML list item of string scalars, each double-quoted (JSON strings are YAML), so any
    text is safe; hand-written because PyYAML's emitter costs ~2 ms per entry."""
    lines = []
    for index, (key, value) in enumerate(mapping.items()):
        lead = "- " if index == 0 else "  "
        lines.append(f"{lead}{key}: {json.dumps(str(value))}")
    return "\n".join(lines) + "\n"


def entry_yaml(listeners: list[Listener], service: str | None) -> str:
    """The entry as YAML, one list item ready to paste under `provides:`."""
    return yaml_item(entry_mapping(listeners, service))


def _stop(listener: Listener) -> tuple[str, ...]:
    if listener.unit and listener.unit.endswith((".service", ".socket")):
        return (f"systemctl disable --now {shlex.quote(listener.unit)}",)
    if listener.pids:
        return (f"kill {' '.join(str(p) for p in listener.pids)}  # no systemd unit owns it",)
    return ()


def apply_command(registry: str | None, host: str | None, netns: str | None) -> str:
    parts = ["pps", "policy", "apply", shlex.quote(registry or "REGISTRY.yaml")]
    if host:
        parts += ["--host", shlex.quote(host)]
    if netns:
        parts += ["--netns", shlex.quote(netns)]
    return " ".join(parts)


def for_unregistered(listener: Listener, service: str | None) -> Remedy:
    return Remedy(
        "Document it (paste under the host's provides: and fill in the TODOs), or stop it.",
        _stop(listener),
        entry_yaml([listener], service),
    )


def for_reachable(protocol: str, port: int, service: str | None, apply: str) -> Remedy:
    yaml_text = yaml_item(
        {
            "id": service or f"port-{port}-{protocol}",
            "port": f"{port}/{protocol}",
            "from": "anywhere",
            "purpose": TODO_PURPOSE,
            "owner": TODO_OWNER,
        }
    )
    return Remedy(
        "Find what answers there (a forwarded port? a container?); document it or close it "
        "and enforce the registry.",
        (apply,),
        str(yaml_text),
    )


def for_missing(entry: Entry) -> Remedy:
    commands = (f"systemctl enable --now {shlex.quote(entry.unit)}",) if entry.unit else ()
    return Remedy(
        f"Start the service, or remove the stale entry {entry.id!r} at {entry.location}.",
        commands,
    )


def for_widened(listener: Listener, entry: Entry, apply: str) -> Remedy:
    hint = _BIND_HINTS.get(
        listener.port, f"configure the service to listen on {entry.bind} only, then restart it"
    )
    return Remedy(f"Narrow the bind as documented ({entry.bind}): {hint}.", (apply,))


def for_owner(listener: Listener, entry: Entry) -> Remedy:
    return Remedy(
        "Find out who replaced the documented service. If the change is intended, update "
        f"process:/unit: of entry {entry.id!r} at {entry.location}; otherwise stop it.",
        _stop(listener),
    )


def for_blocked(listener: Listener, entry: Entry | None, stale: bool, apply: str) -> Remedy:
    if stale and entry is not None:
        return Remedy(
            f"Entry {entry.id!r} says this door is open but the firewall drops it: either the "
            f"entry is stale (remove it at {entry.location}) or the firewall is (re-apply).",
            (apply,),
        )
    return Remedy(
        "Harmless while the firewall holds; stop the service if nothing local needs it.",
        _stop(listener),
    )


def for_firewall(apply: str, detail: str) -> Remedy:
    status = "pps policy status"
    if " --netns " in apply:
        status += " --netns " + apply.rsplit(" --netns ", 1)[1]
    return Remedy(f"Enforce the registry: {detail}", (apply, status))


def for_risk(listener: Listener | None, risk_remedy: str, entry: Entry | None) -> Remedy:
    commands = _stop(listener) if listener is not None else ()
    suffix = f" If it must stay, record a waiver on entry {entry.id!r}." if entry else ""
    return Remedy(risk_remedy.rstrip() + suffix, commands)


def for_mismatch(expected: str, found: str) -> Remedy:
    return Remedy(
        f"The port says {expected} but {found} answers: find the process, and document what "
        "really runs there (or move it to its own port)."
    )


def for_waiver(entry: Entry) -> Remedy:
    return Remedy(
        f"Renew the waiver of entry {entry.id!r} (a new expires:) or remove the exception "
        f"at {entry.waiver.location if entry.waiver else entry.location}."
    )
