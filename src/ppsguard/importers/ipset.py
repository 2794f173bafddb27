"""`ipset save` output to the address sets iptables rules name with `-m set --match-set`. Pure.

    create admins hash:ip family inet hashsize 1024 maxelem 65536
    add admins 198.18.0.5
    add admins 198.18.0.10-198.18.0.12        -> three addresses, summarised as CIDRs
    create nets hash:net family inet6 ...
    add nets 2001:db8:1::/48
    add nets 2001:db8:1:5::/64 nomatch        -> subtracted (hash:net's exception)

Sets whose members carry ports or interfaces (`hash:ip,port`, `hash:net,iface`, ...) cannot be
a source list: they come back in `IpsetTable.unusable` with the reason. `list:set` is the union of
its member sets.
"""

from __future__ import annotations

import ipaddress
import shlex
from dataclasses import dataclass, field

from ppsguard.errors import InputError
from ppsguard.importers.rules import Sources, lines_of
from ppsguard.model.net import IPNetwork
from ppsguard.registry.naming import collapse

ADDRESS_TYPES = ("hash:ip", "hash:net", "bitmap:ip")


def parse_address_item(text: str) -> list[IPNetwork]:
    """`198.18.0.5`, `198.18.0.0/24` or `198.18.0.10-198.18.0.12` -> CIDRs (ValueError if bad)."""
    if "-" in text and "/" not in text:
        first_text, last_text = text.split("-", 1)
        first, last = ipaddress.ip_address(first_text), ipaddress.ip_address(last_text)
        return list(ipaddress.summarize_address_range(first, last))
    return [ipaddress.ip_network(text, strict=False)]


@dataclass(slots=True)
class IpsetTable:
    """Named address sets (include, exclude) and the sets that are not address sets."""

    sets: dict[str, Sources] = field(default_factory=dict)
    unusable: dict[str, str] = field(default_factory=dict)


def parse_ipset_save(text: str, file: str) -> IpsetTable:
    """Parse `ipset save` (or `ipset list -o save`) text."""
    include: dict[str, list[IPNetwork]] = {}
    exclude: dict[str, list[IPNetwork]] = {}
    members: dict[str, list[str]] = {}
    table = IpsetTable()
    for number, raw in enumerate(lines_of(text), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise InputError(f"ipset: {exc}", file=file, line=number) from None
        if words[0] == "create" and len(words) >= 3:
            name, kind = words[1], words[2]
            if kind == "list:set":
                members[name] = []
            elif kind not in ADDRESS_TYPES:
                table.unusable[name] = f"ipset type {kind} holds more than addresses"
            include.setdefault(name, [])
        elif words[0] == "add" and len(words) >= 3:
            name, item = words[1], words[2]
            if name in table.unusable:
                continue
            if name in members:
                members[name].append(item)
                continue
            if name not in include:
                raise InputError(f"ipset: add to undeclared set {name!r}", file=file, line=number)
            try:
                networks = parse_address_item(item)
            except ValueError:
                raise InputError(f"ipset: bad member {item!r}", file=file, line=number) from None
            (exclude if "nomatch" in words[3:] else include).setdefault(name, []).extend(networks)
        elif words[0] not in ("create", "add"):
            raise InputError(
                f"ipset: unknown line {words[0]!r}",
                file=file,
                line=number,
                hint="give `ipset save`",
            )
    for name, networks in include.items():
        if name not in members and name not in table.unusable:
            table.sets[name] = Sources(collapse(networks), collapse(exclude.get(name, [])))
    for name, names in members.items():
        found = [table.sets[m] for m in names if m in table.sets]
        if len(found) != len(names):
            table.unusable[name] = "list:set with members that are not address sets"
            continue
        exact = [net for item in found for net in item.exact()]
        table.sets[name] = Sources(collapse(exact))
    return table
