"""ufw's own words to `Imported`: `ufw status verbose|numbered`, or its rule files. Pure.

Rule files are /etc/ufw/user.rules and user6.rules (iptables-restore text whose `### tuple ###`
comments say what each rule was asked as) read by the iptables importer from the chains
`ufw-user-input` / `ufw6-user-input`, plus /etc/default/ufw for the default
(`DEFAULT_INPUT_POLICY="DROP"`). Status text is read by its column positions:

         To                         Action      From
         --                         ------      ----
    [ 1] 22/tcp                     ALLOW IN    Anywhere
    [ 2] 53                         ALLOW IN    198.18.0.0/24        -> 53/tcp and 53/udp
    [ 3] 2222/tcp                   LIMIT IN    Anywhere             -> allow; the limit is listed
    [ 4] 22/tcp (v6)                ALLOW IN    Anywhere (v6)

`Default: deny (incoming), ...` (verbose) gives the default; numbered output has none, so ufw's
own default (deny) is assumed and said. ufw's before.rules/after.rules (ICMP, DHCP, multicast)
are in neither form and are listed as not read.
"""

from __future__ import annotations

import ipaddress
import re

from ppsguard.errors import InputError
from ppsguard.firewall.packets import Intervals
from ppsguard.importers.chains import import_tables
from ppsguard.importers.iptables import Table, parse_iptables_save
from ppsguard.importers.rules import (
    ANY4,
    ANY6,
    PORT_PROTOCOLS,
    Imported,
    ImportedRule,
    Match,
    Sources,
    Verdict,
    lines_of,
    ports_of,
)

ACTIONS = {"ALLOW": Verdict.ACCEPT, "LIMIT": Verdict.ACCEPT, "DENY": Verdict.DROP}
ACTIONS["REJECT"] = Verdict.REJECT
POLICIES = {"DROP": Verdict.DROP, "REJECT": Verdict.REJECT, "ACCEPT": Verdict.ACCEPT}
WORDS = {"deny": Verdict.DROP, "reject": Verdict.REJECT, "allow": Verdict.ACCEPT}
NOT_READ = "ufw's before.rules and after.rules (ICMP, DHCP client, multicast, ...)"
_HEADER = re.compile(r"^\s*To\s+Action\s+From")
_TUPLE = re.compile(r"^### tuple ### (.*)$")
_PORTS = re.compile(r"^([0-9:,]+)(?:/(tcp|udp|sctp))?$")


def _default_from(inputs: list[tuple[str, str]]) -> tuple[Verdict, str] | None:
    for name, text in inputs:
        for number, line in enumerate(lines_of(text), 1):
            found = re.match(r'^\s*DEFAULT_INPUT_POLICY\s*=\s*"?(\w+)"?', line)
            if found and found.group(1).upper() in POLICIES:
                return POLICIES[found.group(1).upper()], f"{name}:{number}"
            found = re.match(r"^Default:\s*(\w+) \(incoming\)", line)
            if found and found.group(1) in WORDS:
                return WORDS[found.group(1)], f"{name}:{number}"
    return None


def _tuples(table: Table, text: str) -> None:
    """Attach each rule's `### tuple ###` comment as its note."""
    notes: dict[int, str] = {}
    current = None
    for number, line in enumerate(lines_of(text), 1):
        found = _TUPLE.match(line.strip())
        if found:
            current = found.group(1)
        elif not line.strip():
            current = None
        elif current is not None:
            notes[number] = "ufw " + current
    for lines in table.chains.values():
        for item in lines:
            number = int(item.origin.rsplit(":", 1)[1])
            item.comment = item.comment or notes.get(number)


def import_ufw(inputs: list[tuple[str, str]]) -> Imported:
    """Status text, or rule files (+ the defaults file)."""
    default = _default_from(inputs)
    status = [(n, t) for n, t in inputs if re.search(r"^Status: ", t, re.MULTILINE)]
    if status:
        imported = parse_status(*status[0])
    else:
        tables = []
        for name, text in inputs:
            if "ufw-user-input" in text or "ufw6-user-input" in text:
                table = parse_iptables_save(text, name)
                _tuples(table, text)
                tables.append(table)
        if not tables:
            names = ", ".join(n for n, _ in inputs)
            raise InputError("no ufw status text or user.rules given", token=names)
        tables.sort(key=lambda table: table.version)
        entry = {4: "ufw-user-input", 6: "ufw6-user-input"}
        imported = import_tables(tables, "ufw", entry=entry, default=default or (Verdict.DROP, ""))
    if default is None:
        imported.default, imported.default_origin = Verdict.DROP, "ufw's own default (deny)"
        imported.skip(
            "ufw", "no default given", "deny assumed: give /etc/default/ufw or `status verbose`"
        )
    else:
        imported.default, imported.default_origin = default
    imported.skip("ufw", NOT_READ, "not in these files: not imported")
    for name, text in inputs:
        if re.search(r"^ENABLED=no\b", text, re.MULTILINE):
            imported.skip(name, "ENABLED=no", "ufw is disabled: these rules do nothing now")
    return imported


def _columns(header: str) -> tuple[int, int]:
    return header.index("Action"), header.index("From")


def _address(text: str) -> Sources | None:
    if text.startswith("Anywhere"):
        return Sources((ANY6,) if "(v6)" in text else (ANY4,))
    try:
        return Sources((ipaddress.ip_network(text, strict=False),))
    except ValueError:
        return None


def parse_status(name: str, text: str) -> Imported:
    """`ufw status verbose` or `ufw status numbered` text."""
    imported = Imported("ufw")
    lines = lines_of(text)
    header = next((i for i, row in enumerate(lines) if _HEADER.match(row)), None)
    if "Status: inactive" in text:
        imported.skip(f"{name}:1", "Status: inactive", "ufw is off: its rules do nothing now")
    if header is None:
        imported.families = {4}
        return imported
    action_at, from_at = _columns(lines[header])
    for number, raw in enumerate(lines[header + 2 :], header + 3):
        if not raw.strip():
            continue
        origin = f"{name}:{number}"
        line, _, comment = raw.partition(" # ")
        log = "(log" in line
        line = re.sub(r"\s*\(log(-all)?\)", "", line)
        to, action, source = (line[:action_at].strip(), line[action_at:from_at].strip(),
                              line[from_at:].strip())  # fmt: skip
        to = re.sub(r"^\[\s*\d+\]\s*", "", to)
        words = action.split()
        if len(words) != 2 or words[0] not in ACTIONS:
            raise InputError("unknown ufw action", file=name, line=number, token=action)
        six = "(v6)" in to or "(v6)" in source
        to = to.replace("(v6)", "").strip()
        source = source.replace("(v6)", "").strip()
        imported.families.add(6 if six else 4)
        problems = []
        if words[1] != "IN":
            problems.append(f"direction {words[1]}")
        if " on " in f" {to} " or " on " in f" {source} ":
            problems.append("interface")
        to_words = to.split()
        if len(to_words) == 2 and _address(to_words[0]) is not None:
            problems.append(f"destination {to_words[0]}")
            to_words = to_words[1:]
        target = to_words[0] if to_words else ""
        sources = _address(source) if " " not in source else None
        if sources is None:
            problems.append(f"source {source}")
        ports: Intervals = ((0, 65535),)
        if target == "Anywhere":
            protocols = PORT_PROTOCOLS
        elif found := _PORTS.match(target):
            protocols = frozenset({found.group(2)}) if found.group(2) else frozenset({"tcp", "udp"})
            try:
                pairs = (p.partition(":") for p in found.group(1).split(","))
                ports = ports_of([(int(a), int(b or a)) for a, _, b in pairs])
            except ValueError:
                raise InputError("bad ufw port", file=name, line=number, token=target) from None
        else:
            problems.append(f"application profile {target!r} (its ports are in ufw's files)")
            protocols, ports = frozenset(), ((0, 65535),)
        if six and sources is not None and sources.include == (ANY4,):
            sources = Sources((ANY6,))
        match = Match(protocols, ports, sources or Sources(()))
        if problems:
            imported.skip(origin, raw.strip(), "; ".join(problems), match)
            continue
        if words[0] == "LIMIT":
            imported.skip(
                origin, raw.strip(), "rate limit (6 connections in 30 s): allowed here", match
            )
        note = comment.strip() or None
        imported.rules.append(ImportedRule(match, ACTIONS[words[0]], origin, log, note))
    return imported
