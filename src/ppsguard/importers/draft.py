"""An `Imported` rule set written as registry YAML: denies first, allows after, same verdicts.

The registry decides denies before provides; an imported rule set decides in its own order. So
each deny loses, exactly, the boxes of the allows written before it (`rules.difference`), and
then the draft decides every tcp/udp/sctp packet as the original did:

    original (first match)            draft
    1 ACCEPT tcp 22 from 198.18.0.0/24    denies:   ssh  22/tcp from anywhere except sources-1
    2 DROP   tcp 22                       provides: ssh  22/tcp from sources-1
    policy DROP                           default: deny

Address sets used by more than one entry, or named in the input (an ipset, an nft set), become
`networks:`; ids come from the knowledge base's service names (`ssh`, `http`, else
`port-8080-tcp`), made unique with `-2`, `-3`. Every entry names the rule it came from
(`reference:`; denies say it in `reason:` too), `purpose:`/`owner:` are TODO, and what could not be
expressed is a comment block at the top. The text is parsed back by the registry loader before it
is returned, so a draft that would not load is never written. Pure.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass

import yaml

from ppsguard.audit.advise import TODO_OWNER, TODO_PURPOSE
from ppsguard.importers.rules import (
    ANY4,
    ANY6,
    Imported,
    ImportedRule,
    Match,
    Sources,
    Verdict,
    difference,
    merge_boxes,
)
from ppsguard.knowledge.services import service_name
from ppsguard.model.net import IPNetwork
from ppsguard.report.sanitize import visible

_ID_SAFE = re.compile(r"[^A-Za-z0-9_.:@+=,-]+")
_PROTOCOL_ORDER = ("tcp", "udp", "sctp")


@dataclass(frozen=True, slots=True)
class DraftEntry:
    """One entry of the draft: a box, its verdict, and the rule it came from."""

    match: Match
    rule: ImportedRule


def registry_order(imported: Imported) -> tuple[list[DraftEntry], list[DraftEntry]]:
    """(denies, provides) in the registry's order, deciding as the imported first-match list."""
    denies: list[DraftEntry] = []
    provides: list[DraftEntry] = []
    allowed: list[Match] = []
    for rule in imported.rules:
        if rule.verdict is Verdict.ACCEPT:
            provides.append(DraftEntry(rule.match, rule))
            allowed.append(rule.match)
            continue
        pieces = [rule.match]
        for box in allowed:
            pieces = [part for piece in pieces for part in difference(piece, box)]
        kept = merge_boxes([piece for piece in pieces if not piece.is_empty()])
        denies.extend(DraftEntry(piece, rule) for piece in kept)
    return denies, provides


def port_texts(match: Match) -> list[str]:
    out = []
    for protocol in _PROTOCOL_ORDER:
        if protocol in match.protocols:
            for low, high in match.ports:
                out.append(f"{low}/{protocol}" if low == high else f"{low}-{high}/{protocol}")
    return out


def entry_label(match: Match) -> str:
    """`ssh`, `http+https`, `port-8080-tcp`, `ports-1000-2000-tcp`, `all-ports`."""
    names: list[str] = []
    for protocol in _PROTOCOL_ORDER:
        if protocol not in match.protocols:
            continue
        for low, high in match.ports:
            if (low, high) == (0, 65535):
                return "all-ports"
            name = service_name(low, protocol) if low == high else None
            label = name or (
                f"port-{low}-{protocol}" if low == high else f"ports-{low}-{high}-{protocol}"
            )
            if label not in names:
                names.append(label)
    if len(names) > 3:
        return f"{names[0]}+{len(names) - 1}-more"
    return _ID_SAFE.sub("-", "+".join(names))[:80] or "entry"


class _Namer:
    """Source lists to `from:` items: `anywhere`, a network name, or addresses written out."""

    def __init__(self, imported: Imported, lists: list[tuple[IPNetwork, ...]]) -> None:
        counts = Counter(item for item in lists if not all(n.prefixlen == 0 for n in item))
        self.names: dict[tuple[IPNetwork, ...], str] = {}
        for key, name in imported.set_names.items():
            if key in counts:
                self.names[key] = _ID_SAFE.sub("-", name)[:60]
        number = 0
        for key, count in counts.items():
            if key not in self.names and count > 1:
                number += 1
                self.names[key] = f"sources-{number}"
        taken: set[str] = set()
        for key, base in list(self.names.items()):
            name, n = base, 1
            while name in taken:
                n += 1
                name = f"{base}-{n}"
            taken.add(name)
            self.names[key] = name

    def items(self, networks: tuple[IPNetwork, ...]) -> list[str]:
        if _is_anywhere(networks):
            return ["anywhere"]
        if networks in self.names:
            return [self.names[networks]]
        return [str(net) for net in networks]

    def networks(self) -> dict[str, object]:
        return {name: [str(n) for n in key] for key, name in self.names.items()}


def _is_anywhere(networks: tuple[IPNetwork, ...]) -> bool:
    return set(networks) == {ANY4, ANY6}


def _unique(label: str, used: set[str]) -> str:
    candidate, n = label, 1
    while candidate in used:
        n += 1
        candidate = f"{label}-{n}"
    used.add(candidate)
    return candidate


def _entry(item: DraftEntry, namer: _Namer, used: set[str], source: str) -> dict[str, object]:
    sources: Sources = item.match.sources
    origin = visible(f"{source} {item.rule.origin}")
    out: dict[str, object] = {"id": _unique(entry_label(item.match), used)}
    ports = port_texts(item.match)
    out["port"] = ports[0] if len(ports) == 1 else ports
    out["from"] = namer.items(sources.include)
    if sources.exclude:
        out["except"] = namer.items(sources.exclude)
    if item.rule.verdict is not Verdict.ACCEPT:
        out["action"] = "reject" if item.rule.verdict is Verdict.REJECT else "deny"
    out["log"] = item.rule.log
    note = f" ({visible(item.rule.note)})" if item.rule.note else ""
    out["reference"] = f"imported from {origin}"
    if item.rule.verdict is Verdict.ACCEPT:
        out["purpose"] = TODO_PURPOSE + note
        out["owner"] = TODO_OWNER
    else:
        out["reason"] = f"TODO: why is this refused? imported from {origin}{note}"
    return out


def comment_block(imported: Imported) -> list[str]:
    """The header lines: what was not expressed and what the fixed rules already do."""
    lines = [f"# Imported from {imported.source} by `pps registry import`."]
    if imported.unexpressed:
        lines.append(f"# NOT EXPRESSED ({len(imported.unexpressed)}): the draft does not do these.")
        for item in imported.listed():
            lines.append(f"#   {visible(item.origin)}: {visible(item.why)}")
            lines.append(f"#       {visible(item.text)[:300]}")
    if imported.covered:
        lines.append(
            "# Done by the compiled firewall's fixed rules (established, loopback, invalid):"
        )
        lines.extend(f"#   {visible(text)[:300]}" for text in imported.covered)
    if imported.families == {4}:
        lines.append("# Only IPv4 rules were given: the draft's default decides for IPv6.")
    elif imported.families == {6}:
        lines.append("# Only IPv6 rules were given: the draft's default decides for IPv4.")
    return lines


def draft_text(imported: Imported, *, host: str, today: dt.date) -> str:
    """The whole draft registry as YAML text, checked by the registry loader."""
    denies, provides = registry_order(imported)
    lists = [e.match.sources.include for e in (*denies, *provides)]
    lists += [e.match.sources.exclude for e in (*denies, *provides) if e.match.sources.exclude]
    namer = _Namer(imported, lists)
    used: set[str] = set()
    host_doc: dict[str, object] = {}
    if denies:
        host_doc["denies"] = [_entry(e, namer, used, imported.source) for e in denies]
    if provides:
        host_doc["provides"] = [_entry(e, namer, used, imported.source) for e in provides]
    document: dict[str, object] = {
        "version": 1,
        "description": (
            f"Draft written by `pps registry import` on {today.isoformat()} from "
            f"{imported.source} rules. Replace every TODO; see the comment block for what "
            "the original did that this draft does not."
        ),
        "default": {Verdict.ACCEPT: "allow", Verdict.DROP: "deny"}.get(imported.default, "reject"),
        "default_log": imported.default_log,
    }
    if namer.names:
        document["networks"] = namer.networks()
    document["hosts"] = {host: host_doc}
    header = "\n".join(comment_block(imported))
    header += f"\n# The default comes from {visible(imported.default_origin)}.\n"
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml: ~20x faster on big drafts
    text = header + str(yaml.dump(document, Dumper=dumper, sort_keys=False, width=100))
    from ppsguard.registry.load import parse_registry

    parse_registry(text, "<draft>")
    return text
