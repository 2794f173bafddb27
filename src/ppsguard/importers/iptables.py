"""`iptables-save` / `ip6tables-save` text (legacy and nft backends print the same) to `Imported`.

Only the filter table's INPUT chain decides what reaches this host's ports, so that is what is
read, with every jump into a user chain followed (its rules conjoined with the jump's match, at
most MAX_DEPTH deep, a conditional RETURN subtracted from the rules after it). Understood:

    -p tcp|udp|sctp   -s/! -s ADDR[,ADDR]   --dport N[:M]   -m multiport --dports 80,443,8000:8100
    -m iprange --src-range A-B   -m set --match-set NAME src (members from `ipset save`)
    -m conntrack --ctstate NEW / -m state --state NEW   -m comment --comment TEXT
    -j ACCEPT | DROP | REJECT [--reject-with ...] | LOG [...] | RETURN | USER-CHAIN

`ESTABLISHED,RELATED -j ACCEPT`, `-i lo -j ACCEPT` and `INVALID -j DROP` are what the compiled
firewall's fixed rules already do (`Imported.covered`). Anything else — `-i`/`-o`, `-d`, source
ports, limits, connlimit, recent, marks, ICMP, other tables and chains — is an `Unexpressed`
with the line it came from. A LOG followed by a verdict on the same match becomes `log: true`.
Pure: takes text, returns values.
"""

from __future__ import annotations

import ipaddress
import shlex
from dataclasses import dataclass, field, replace

from ppsguard.errors import InputError
from ppsguard.importers.ipset import IpsetTable, parse_address_item
from ppsguard.importers.rules import (
    ANY4,
    ANY6,
    PORT_PROTOCOLS,
    Imported,
    ImportedRule,
    Match,
    Sources,
    Verdict,
    difference,
    intersect,
    ports_of,
)
from ppsguard.model.net import IPNetwork
from ppsguard.registry.naming import collapse

MAX_DEPTH = 16
OTHER_PROTOCOLS = "all protocols: the tcp, udp and sctp part is expressed, others (icmp...) are not"
TERMINALS = {"ACCEPT": Verdict.ACCEPT, "DROP": Verdict.DROP, "REJECT": Verdict.REJECT}
# match modules with no meaning of their own here (the protocol's own module)
_PLAIN_MODULES = {"tcp", "udp", "sctp", "multiport", "iprange", "set", "conntrack", "state"}
_PLAIN_MODULES |= {"comment", ""}
MODULES = {
    "limit": "rate limit (-m limit)",
    "hashlimit": "rate limit (-m hashlimit)",
    "recent": "rate limit (-m recent)",
    "connlimit": "connection limit (-m connlimit)",
    "mark": "mark (-m mark)",
    "connmark": "mark (-m connmark)",
    "addrtype": "address type (-m addrtype)",
    "mac": "MAC address (-m mac)",
    "icmp": "ICMP type (-m icmp)",
    "icmp6": "ICMPv6 type (-m icmp6)",
    "owner": "socket owner (-m owner)",
    "pkttype": "packet type (-m pkttype)",
    "time": "time of day (-m time)",
}


@dataclass(slots=True)
class Line:
    """One `-A CHAIN ...` line, parsed."""

    chain: str
    origin: str
    text: str
    match: Match
    target: str | None = None
    problems: list[str] = field(default_factory=list)
    states: frozenset[str] | None = None
    interface_lo: bool = False
    comment: str | None = None


@dataclass(slots=True)
class Table:
    """The filter table of one family: policies, chains with their lines, other tables' lines."""

    version: int
    policies: dict[str, tuple[str, str]] = field(default_factory=dict)  # chain -> (policy, origin)
    chains: dict[str, list[Line]] = field(default_factory=dict)
    elsewhere: list[tuple[str, str, str]] = field(default_factory=list)  # (origin, text, why)


def _ports(text: str) -> list[tuple[int, int]]:
    out = []
    for item in text.split(","):
        low, _, high = item.partition(":")
        first, last = int(low or 0), int(high or (low if not _ else 65535))
        if not (0 <= first <= last <= 65535):
            raise ValueError(item)
        out.append((first, last))
    return out


def _addresses(text: str, version: int) -> tuple[IPNetwork, ...]:
    nets = [net for item in text.split(",") for net in parse_address_item(item)]
    if any(net.version != version for net in nets):
        raise ValueError(text)
    return collapse(nets)


def unconditional(match: Match) -> bool:
    """True when a match holds for every packet of its family."""
    return (
        match.protocols == PORT_PROTOCOLS
        and match.ports == ((0, 65535),)
        and not match.sources.exclude
        and all(net.prefixlen == 0 for net in match.sources.include)
    )


def family_of(text: str) -> int:
    """4 or 6: from the `ip6tables-save` header, else from the addresses written."""
    head = text[:400]
    if "ip6tables" in head or "ufw6-" in text:
        return 6
    if "iptables" in head:
        return 4
    for word in text.split():
        if ":" in word and "/" in word and word[0].isalnum():
            try:
                return ipaddress.ip_network(word, strict=False).version
            except ValueError:
                continue
    return 4


def parse_line(  # noqa: PLR0912, PLR0915 - one option table, read left to right
    words: list[str], chain: str, origin: str, version: int, ipsets: IpsetTable | None
) -> Line:
    everywhere = (ANY4,) if version == 4 else (ANY6,)
    protocols = PORT_PROTOCOLS
    ports = ((0, 65535),)
    include: tuple[IPNetwork, ...] = everywhere
    exclude: tuple[IPNetwork, ...] = ()
    line = Line(chain, origin, " ".join(words), Match())
    index, negate, module = 0, False, ""
    while index < len(words):
        word = words[index]
        value = words[index + 1] if index + 1 < len(words) else ""
        step = 2
        if word == "!":
            negate, index = True, index + 1
            continue
        if line.target is not None and word.startswith("--"):  # the target's own options
            index += 1
            while index < len(words) and not words[index].startswith("-"):
                index += 1
            continue
        if word in ("-p", "--protocol"):
            name = value.lower()
            if negate or name not in PORT_PROTOCOLS:
                line.problems.append(f"protocol {'! ' if negate else ''}{value}")
                protocols = frozenset()  # touches no tcp/udp/sctp probe
            else:
                protocols = frozenset({name})
        elif word in ("-s", "--source", "--src-range", "--match-set"):
            if word == "--match-set":
                step = 3
                direction = words[index + 2] if index + 2 < len(words) else ""
                if direction != "src":
                    line.problems.append(f"ipset {value} matched on {direction}")
                    found = None
                elif ipsets is None or value not in ipsets.sets:
                    why = ipsets.unusable.get(value) if ipsets else None
                    line.problems.append(
                        f"ipset {value}: {why or 'members unknown (give its `ipset save`)'}"
                    )
                    found = None
                else:
                    found = ipsets.sets[value]
                    found = Sources(
                        tuple(n for n in found.include if n.version == version),
                        tuple(n for n in found.exclude if n.version == version),
                    )
            else:
                found = Sources(_addresses(value, version))
            if found is not None:
                if negate:
                    exclude = collapse((*exclude, *found.exact()))
                elif found.exclude:
                    include, exclude = found.exact(), exclude
                else:
                    include = found.include
        elif word in ("--dport", "--destination-port", "--dports", "--destination-ports"):
            if negate:
                line.problems.append(f"! {word} {value}")
            else:
                ports = ports_of(_ports(value))
        elif word in ("-m", "--match"):
            module = value
            if value not in _PLAIN_MODULES:
                line.problems.append(MODULES.get(value, f"-m {value}"))
        elif word in ("--ctstate", "--state"):
            if negate:
                line.problems.append(f"! {word} {value}")
            line.states = frozenset(value.upper().split(","))
        elif word in ("--comment",):
            line.comment = value
        elif word in ("-i", "--in-interface"):
            if value == "lo" and not negate:
                line.interface_lo = True
            else:
                line.problems.append(f"interface {'! ' if negate else ''}{value}")
        elif word in ("-j", "--jump"):
            line.target = value
        elif word in ("-g", "--goto"):
            line.problems.append(f"goto {value}")
            line.target = None
            break
        elif word.startswith("-"):
            step = 1
            while index + step < len(words) and not words[index + step].startswith("-"):
                if words[index + step] == "!":
                    break
                step += 1
            shown = " ".join(words[index : index + step])
            if module in _PLAIN_MODULES:  # else the option belongs to a module already listed
                line.problems.append(f"{'! ' if negate else ''}{shown}")
        else:
            raise ValueError(word)
        negate = False
        index += step
    line.match = Match(protocols, ports, Sources(include, exclude))
    return line


def parse_iptables_save(text: str, file: str, ipsets: IpsetTable | None = None) -> Table:
    """Read every table; keep the filter table's chains, list the other tables' rules."""
    version = family_of(text)
    table = Table(version)
    current: str | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        origin = f"{file}:{number}"
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            current = line[1:].strip()
            continue
        if line == "COMMIT":
            current = None
            continue
        if current is None:
            raise InputError("rule outside a table", file=file, line=number, hint="give iptables-save output")
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise InputError(f"iptables: {exc}", file=file, line=number) from None
        if line.startswith(":"):
            if len(words) < 2:
                raise InputError("bad chain line", file=file, line=number, token=line)
            name = words[0][1:]
            if current == "filter":
                table.chains.setdefault(name, [])
                table.policies[name] = (words[1], origin)
            continue
        if words[0] not in ("-A", "--append", "-I", "--insert") or len(words) < 2:
            raise InputError("expected -A CHAIN ...", file=file, line=number, token=words[0])
        if current != "filter":
            table.elsewhere.append((origin, line, f"table {current}: not expressible"))
            continue
        chain = words[1]
        if chain not in table.chains:
            raise InputError(f"rule in undeclared chain {chain!r}", file=file, line=number)
        try:
            parsed = parse_line(words[2:], chain, origin, version, ipsets)
        except ValueError as exc:
            raise InputError(f"iptables: cannot read {exc}", file=file, line=number) from None
        parsed.text = line
        if words[0] in ("-I", "--insert"):
            table.chains[chain].insert(0, parsed)
        else:
            table.chains[chain].append(parsed)
    return table


@dataclass(slots=True)
class _Step:
    """A flattened rule before LOG merging: a verdict, LOG, or nothing (a counter)."""

    line: Line
    match: Match
    action: str  # ACCEPT | DROP | REJECT | LOG


class _Walker:
    def __init__(self, table: Table, imported: Imported) -> None:
        self.table = table
        self.imported = imported
        self.steps: list[_Step] = []
        self.reached: set[str] = set()

    def walk(self, chain: str, outer: Match, guards: list[Match], stack: tuple[str, ...]) -> None:
        self.reached.add(chain)
        guards = list(guards)
        for line in self.table.chains.get(chain, []):
            target = line.target
            if line.states is not None and line.states <= {"ESTABLISHED", "RELATED"}:
                if target == "ACCEPT" and not line.problems:
                    self.imported.covered.append(f"{line.origin}: {line.text} (established)")
                    continue
            if line.states == {"INVALID"} and target in ("DROP", "REJECT") and not line.problems:
                self.imported.covered.append(f"{line.origin}: {line.text} (invalid)")
                continue
            if line.interface_lo and target == "ACCEPT" and not line.problems:
                self.imported.covered.append(f"{line.origin}: {line.text} (loopback)")
                continue
            problems = list(line.problems)
            if line.interface_lo:
                problems.append("interface lo")
            if line.states is not None and line.states != {"NEW"}:
                problems.append("state " + ",".join(sorted(line.states)))
            if problems:
                self.imported.skip(line.origin, line.text, "; ".join(problems), line.match)
                continue
            pieces = [intersect(outer, line.match)]
            for guard in guards:
                pieces = [part for piece in pieces for part in difference(piece, guard)]
            pieces = [p for p in pieces if not p.is_empty()]
            if target is None:
                self.imported.covered.append(f"{line.origin}: {line.text} (no verdict: a counter)")
            elif target == "RETURN":
                if unconditional(line.match):
                    return
                guards.append(line.match)
            elif target in TERMINALS or target == "LOG":
                self.steps.extend(_Step(line, piece, target) for piece in pieces)
                if target != "LOG" and pieces and pieces[0].protocols == PORT_PROTOCOLS:
                    if not unconditional(pieces[0]):
                        self.imported.skip(line.origin, line.text, OTHER_PROTOCOLS)
            elif target in self.table.chains:
                if target in stack or len(stack) >= MAX_DEPTH:
                    self.imported.skip(line.origin, line.text, "jump loop or too deep")
                    continue
                for piece in pieces:
                    self.walk(target, piece, [], (*stack, target))
            else:
                self.imported.skip(line.origin, line.text, f"target {target}", line.match)


def merge_logs(steps: list[_Step], imported: Imported) -> tuple[bool, str | None]:
    """Turn the flat steps into rules; returns (default logged, the catch-all's origin)."""
    index = 0
    while index < len(steps):
        step = steps[index]
        if step.match.is_everything() and step.action != "LOG":
            for later in steps[index + 1 :]:
                imported.skip(later.line.origin, later.line.text, "after a catch-all: never reached")
            imported.default = TERMINALS[step.action]
            imported.default_origin = step.line.origin
            return False, step.line.origin
        if step.action == "LOG":
            after = steps[index + 1] if index + 1 < len(steps) else None
            if after is None and step.match.is_everything():
                return True, None
            if after is not None and after.action != "LOG" and after.match == step.match:
                if after.match.is_everything():
                    imported.default = TERMINALS[after.action]
                    imported.default_origin = after.line.origin
                    for later in steps[index + 2 :]:
                        imported.skip(later.line.origin, later.line.text, "after a catch-all")
                    return True, after.line.origin
                _add(imported, after, log=True)
                index += 2
                continue
            imported.skip(step.line.origin, step.line.text, "LOG without its verdict right after")
            index += 1
            continue
        _add(imported, step, log=False)
        index += 1
    return False, None


def _add(imported: Imported, step: _Step, *, log: bool) -> None:
    imported.rules.append(
        ImportedRule(step.match, TERMINALS[step.action], step.line.origin, log, step.line.comment)
    )


def import_tables(
    tables: list[Table],
    source: str = "iptables",
    *,
    entry: str | dict[int, str] = "INPUT",
    default: tuple[Verdict, str] | None = None,
) -> Imported:
    """The `entry` chains of one or two families (v4 first) as one `Imported`; `default`
    replaces the chain's policy (ufw keeps its own in ufw.conf, not in user.rules)."""
    imported = Imported(source)
    defaults: dict[int, tuple[Verdict, bool, str]] = {}
    for table in tables:
        imported.families.update((4, 6) if table.version == 0 else (table.version,))
        for origin, text, why in table.elsewhere:
            imported.skip(origin, text, why)
        start = entry if isinstance(entry, str) else entry.get(table.version, "")
        if start not in table.chains:
            continue
        part = Imported(source)
        walker = _Walker(table, part)
        walker.walk(start, _family_everything(table.version), [], (start,))
        if default is not None:
            part.default, part.default_origin = default
        else:
            policy, part.default_origin = table.policies.get(start, ("ACCEPT", start))
            part.default = Verdict.DROP if policy == "DROP" else Verdict.ACCEPT
        everything = [replace(s, match=_widen(s.match)) for s in walker.steps]
        logged, _ = merge_logs(everything, part)
        defaults[table.version] = (part.default, logged, part.default_origin)
        imported.rules.extend(replace(r, match=_narrow(r.match, table.version)) for r in part.rules)
        imported.unexpressed.extend(part.unexpressed)
        imported.covered.extend(part.covered)
        for chain, lines in table.chains.items():
            if chain not in walker.reached and lines:
                where = lines[0].origin
                imported.skip(where, f"chain {chain}: {len(lines)} rule(s)", f"not on the {start} path")
    _settle_defaults(imported, defaults)
    return imported


def _family_everything(version: int) -> Match:
    everything = {0: (ANY4, ANY6), 4: (ANY4,), 6: (ANY6,)}[version]
    return Match(sources=Sources(everything))


def _widen(match: Match) -> Match:
    """A one-family catch-all reads as everything while that family's chain is merged."""
    if match.sources.include in ((ANY4,), (ANY6,)) and not match.sources.exclude:
        return replace(match, sources=Sources((ANY4, ANY6)))
    return match


def _narrow(match: Match, version: int) -> Match:
    if version and set(match.sources.include) == {ANY4, ANY6}:
        keep = (ANY4,) if version == 4 else (ANY6,)
        return replace(match, sources=Sources(keep, match.sources.exclude))
    return match


def _settle_defaults(imported: Imported, defaults: dict[int, tuple[Verdict, bool, str]]) -> None:
    """One default for the draft; a family whose default differs gets a catch-all entry."""
    if not defaults:
        imported.skip("input", "no input chain", "nothing to import: default deny kept")
        return
    first = min(defaults)
    imported.default, imported.default_log, imported.default_origin = defaults[first]
    for version, (verdict, logged, origin) in defaults.items():
        if version != first and (verdict, logged) != (imported.default, imported.default_log):
            imported.rules.append(
                ImportedRule(_family_everything(version), verdict, origin, logged, "IPv6 default")
            )
