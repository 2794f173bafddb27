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
from dataclasses import dataclass, field

from ppsguard.errors import InputError
from ppsguard.firewall.packets import Intervals
from ppsguard.importers.ipset import IpsetTable, parse_address_item
from ppsguard.importers.rules import (
    ANY4,
    ANY6,
    PORT_PROTOCOLS,
    Match,
    Sources,
    Verdict,
    lines_of,
    ports_of,
)
from ppsguard.model.net import IPNetwork
from ppsguard.registry.naming import collapse

MAX_DEPTH = 16
ESTABLISHED = frozenset({"ESTABLISHED", "RELATED"})
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


def parse_line(
    words: list[str], chain: str, origin: str, version: int, ipsets: IpsetTable | None
) -> Line:
    everywhere = (ANY4,) if version == 4 else (ANY6,)
    protocols = PORT_PROTOCOLS
    ports: Intervals = ((0, 65535),)
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
                    include = found.exact()
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
    for number, raw in enumerate(lines_of(text), 1):
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
            raise InputError(
                "rule outside a table", file=file, line=number, hint="give iptables-save output"
            )
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
