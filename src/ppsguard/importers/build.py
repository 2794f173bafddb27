"""Which parser reads which input: `import_rules(source, inputs)` -> `Imported`. Pure.

Inputs are (name, text) pairs (files or live tool output); each is recognised by its content:
`ipset save` lines go to the iptables importer's set table, ip6tables-save is the IPv6 half,
ufw's defaults file gives ufw's default, firewalld service XML gives service definitions.
"""

from __future__ import annotations

from ppsguard.errors import InputError
from ppsguard.importers.chains import import_tables
from ppsguard.importers.ipset import IpsetTable, parse_ipset_save
from ppsguard.importers.iptables import parse_iptables_save
from ppsguard.importers.nftables import parse_nft_json
from ppsguard.importers.rules import Imported, note_neighbour_discovery


def _is_ipset(text: str) -> bool:
    return text.lstrip().startswith(("create ", "add "))


def import_iptables(inputs: list[tuple[str, str]]) -> Imported:
    sets = IpsetTable()
    for name, text in inputs:
        if _is_ipset(text):
            found = parse_ipset_save(text, name)
            sets.sets.update(found.sets)
            sets.unusable.update(found.unusable)
    tables = [parse_iptables_save(t, n, sets) for n, t in inputs if not _is_ipset(t)]
    if not tables:
        raise InputError("no iptables-save text given", token=", ".join(n for n, _ in inputs))
    tables.sort(key=lambda table: table.version)
    imported = import_tables(tables, "iptables")
    imported.set_names.update({value.exact(): key for key, value in sets.sets.items()})
    return imported


def import_rules(
    source: str, inputs: list[tuple[str, str]], *, zone: str | None = None
) -> Imported:
    """Parse `inputs` as `source` rules; anything unreadable is one InputError."""
    try:
        return _import_rules(source, inputs, zone)
    except InputError:
        raise
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        names = ", ".join(name for name, _ in inputs)
        raise InputError(f"cannot read the {source} input ({exc})", token=names) from None


def _import_rules(source: str, inputs: list[tuple[str, str]], zone: str | None) -> Imported:
    if not inputs:
        raise InputError("nothing to import", hint="give FILE(s) or --live")
    if source == "iptables":
        imported = import_iptables(inputs)
        note_neighbour_discovery(imported)
        return imported
    if source == "nftables":
        if len(inputs) != 1:
            raise InputError("give one `nft -j list ruleset` file", token=inputs[1][0])
        imported = parse_nft_json(inputs[0][1], inputs[0][0])
        note_neighbour_discovery(imported)
        return imported
    if source == "ufw":
        from ppsguard.importers.ufw import import_ufw

        return import_ufw(inputs)
    if source == "firewalld":
        from ppsguard.importers.firewalld import import_firewalld

        return import_firewalld(inputs, zone)
    raise InputError(f"unknown source {source!r}", hint="use ufw, firewalld, iptables or nftables")
