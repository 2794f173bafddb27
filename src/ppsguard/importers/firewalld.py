"""firewalld zones to `Imported`: zone XML files (+ service and ipset XML), or the text of
`firewall-cmd --list-all-zones`. Pure (XML through defusedxml, never a network fetch).

One zone is imported (`--zone`, else `public`, else the only one). Its order is firewalld's own
(nftables backend): rich rules with a negative priority (lowest first), then priority 0 in three
groups — deny (drop/reject), then allow (services, ports, accept rules) — then positive
priorities, then the zone's target: `default` and `%%REJECT%%` reject, `DROP` drops, `ACCEPT`
accepts. A log on a rich rule with a verdict becomes `log: true`.

    <zone>                                   -> default: reject (target "default")
      <service name="ssh"/>                    -> allow 22/tcp from anywhere (from ssh.xml)
      <port port="8080" protocol="tcp"/>       -> allow 8080/tcp from anywhere
      <rule family="ipv4"> <source address="198.18.0.66"/> <port port="22" protocol="tcp"/>
        <log prefix="x"/> <reject/> </rule>    -> deny 22/tcp from 198.18.0.66/32, reject, logged

Service names resolve from the service XML given (firewalld's own folders are read by the I/O
edge); interfaces, zone sources, masquerade, forwarding, ICMP blocks, protocols, source ports,
destinations, marks and action limits are listed as not expressed, each with the zone and rule.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeXml

from ppsguard.errors import InputError
from ppsguard.importers.ipset import parse_address_item
from ppsguard.importers.iptables import OTHER_PROTOCOLS
from ppsguard.importers.rules import (
    ANY4,
    ANY6,
    PORT_PROTOCOLS,
    Imported,
    ImportedRule,
    Match,
    Sources,
    Verdict,
    bad_input,
    intersect,
    lines_of,
    ports_of,
)
from ppsguard.model.net import IPNetwork
from ppsguard.registry.naming import collapse

TARGETS = {"default": Verdict.REJECT, "%%REJECT%%": Verdict.REJECT, "REJECT": Verdict.REJECT}
TARGETS |= {"DROP": Verdict.DROP, "ACCEPT": Verdict.ACCEPT}
ACTIONS = {"accept": Verdict.ACCEPT, "reject": Verdict.REJECT, "drop": Verdict.DROP}
ELEMENTS = ("rule", "source", "destination", "service", "port", "protocol", "icmp-block",
            "icmp-type", "masquerade", "forward-port", "source-port", "log", "nflog", "audit",
            "accept", "reject", "drop", "mark", "limit")  # fmt: skip
Part = tuple[str, dict[str, str]]


@dataclass(slots=True)
class Zone:
    name: str
    origin: str
    target: str = "default"
    services: list[str] = field(default_factory=list)
    ports: list[tuple[str, str]] = field(default_factory=list)  # (port text, protocol)
    rules: list[tuple[str, list[Part]]] = field(default_factory=list)  # (origin, parts)
    others: list[str] = field(default_factory=list)  # settings the registry cannot say


@dataclass(slots=True)
class Definitions:
    services: dict[str, list[Part]] = field(default_factory=dict)
    ipsets: dict[str, Sources] = field(default_factory=dict)


def _xml(text: str, name: str) -> Element:
    try:
        return SafeXml.fromstring(text)
    except ParseError as exc:
        line, column = exc.position
        raise InputError(f"bad XML: {exc.msg}", file=name, line=line, column=column + 1) from None
    except Exception as exc:
        raise InputError(f"refused XML: {type(exc).__name__}", file=name) from None


def root_tag(text: str, name: str) -> str | None:
    """`zone`, `service` or `ipset` for firewalld XML; None for other text."""
    if not text.lstrip().startswith("<"):
        return None
    tag = _xml(text, name).tag
    return tag if tag in ("zone", "service", "ipset") else None


def _stem(name: str) -> str:
    return name.rsplit("/", 1)[-1].removesuffix(".xml")


def zone_from_xml(root: Element, name: str) -> Zone:
    zone = Zone(_stem(name), name, root.get("target", "default"))
    for number, child in enumerate(root, 1):
        tag = child.tag
        if tag == "service":
            zone.services.append(child.get("name", ""))
        elif tag == "port":
            zone.ports.append((child.get("port", ""), child.get("protocol", "")))
        elif tag == "rule":
            parts: list[Part] = [("rule", dict(child.attrib))]
            for element in child:
                parts.append((element.tag, dict(element.attrib)))
                parts.extend(("limit", dict(sub.attrib)) for sub in element if sub.tag == "limit")
            zone.rules.append((f"{name}: rule {number}", parts))
        elif tag in ("short", "description"):
            continue
        elif tag in ("interface", "source"):
            zone.others.append(
                f"{tag} {child.get('name') or child.get('address') or child.get('ipset')}"
            )
        elif tag in {"icmp-block-inversion", "forward"}:
            continue  # ICMP and routed traffic: not about this host's ports
        else:
            zone.others.append(f"<{tag}> {' '.join(f'{k}={v}' for k, v in child.attrib.items())}")
    return zone


def parse_rich_rule(text: str) -> list[Part]:
    """`rule family="ipv4" source address="198.18.0.0/24" service name="mysql" accept`."""
    parts: list[Part] = []
    for word in shlex.split(text):
        key, sep, value = word.partition("=")
        if not sep:
            if word == "not" and parts:
                parts[-1][1]["invert"] = "True"
                continue
            if word not in ELEMENTS:
                raise ValueError(word)
            parts.append((word, {}))
        elif parts:
            parts[-1][1][key] = value
        else:
            raise ValueError(word)
    return parts


def zones_from_text(text: str, name: str) -> list[Zone]:
    """`firewall-cmd --list-all-zones` text."""
    zones: list[Zone] = []
    in_rich = False
    for number, line in enumerate(lines_of(text), 1):
        if not line.strip():
            continue
        if not line[0].isspace():
            zones.append(Zone(line.split()[0], f"{name}:{number}"))
            in_rich = False
            continue
        if not zones:
            raise InputError("setting before a zone name", file=name, line=number)
        zone = zones[-1]
        if in_rich and line.startswith("\t"):
            try:
                zone.rules.append((f"{name}:{number}", parse_rich_rule(line.strip())))
            except ValueError as exc:
                raise InputError(f"bad rich rule word {exc}", file=name, line=number) from None
            continue
        key, _, value = line.strip().partition(":")
        value = value.strip()
        in_rich = key == "rich rules"
        if key == "target":
            zone.target = value
        elif key == "services":
            zone.services.extend(value.split())
        elif key == "ports":
            for item in value.split():
                port, _, protocol = item.partition("/")
                zone.ports.append((port, protocol))
        elif key in ("interfaces", "sources", "protocols", "forward-ports", "source-ports",
                     "icmp-blocks") and value:  # fmt: skip
            zone.others.append(f"{key}: {value}")
        elif key == "masquerade" and value == "yes":
            zone.others.append("masquerade: yes")
    return zones


def _port_match(port: str, protocol: str) -> Match:
    low, _, high = port.partition("-")
    if protocol not in PORT_PROTOCOLS:
        return Match(frozenset(), ((0, 65535),))
    return Match(frozenset({protocol}), ports_of([(int(low), int(high or low))]))


def _service_matches(name: str, defs: Definitions, depth: int = 0) -> tuple[list[Match], list[str]]:
    parts = defs.services.get(name)
    if parts is None or depth > 8:
        return [], [f"service {name}: definition not given"]
    matches, problems = [], []
    for tag, attrs in parts:
        if tag == "port":
            matches.append(_port_match(attrs.get("port", ""), attrs.get("protocol", "")))
        elif tag == "include":
            more, why = _service_matches(attrs.get("service", ""), defs, depth + 1)
            matches += more
            problems += why
        elif tag not in ("short", "description"):
            problems.append(f"service {name}: <{tag}>")
    return matches, problems


def _rule(
    zone: str, origin: str, parts: list[Part], defs: Definitions
) -> tuple[list[ImportedRule], list[str], int, Verdict | None]:
    attrs = parts[0][1] if parts and parts[0][0] == "rule" else {}
    family = attrs.get("family")
    families: dict[str, tuple[IPNetwork, ...]] = {"ipv4": (ANY4,), "ipv6": (ANY6,)}
    base = Match(sources=Sources(families.get(family or "", (ANY4, ANY6))))
    boxes, problems, verdict, log = [base], [], None, False
    for tag, values in parts[1:]:
        if tag == "source":
            if "address" in values:
                nets = collapse(parse_address_item(values["address"]))
            elif values.get("ipset") in defs.ipsets:
                nets = defs.ipsets[values["ipset"]].exact()
            else:
                problems.append(f"source {values}")
                continue
            everything = Sources((ANY4, ANY6))
            src = (
                Sources(everything.include, nets)
                if values.get("invert") in ("True", "yes")
                else Sources(nets)
            )
            boxes = [intersect(b, Match(sources=src)) for b in boxes]
        elif tag == "service":
            found, why = _service_matches(values.get("name", ""), defs)
            problems += why
            boxes = [intersect(b, m) for b in boxes for m in found]
        elif tag == "port":
            boxes = [
                intersect(b, _port_match(values.get("port", ""), values.get("protocol", "")))
                for b in boxes
            ]
        elif tag in ("log", "nflog"):
            log = True
        elif tag in ACTIONS:
            verdict = ACTIONS[tag]
        elif tag == "limit" and verdict is not None:
            problems.append(f"rate limit on {verdict} ({values.get('value')})")
        elif tag == "limit":
            continue  # a log's own limit: the registry's log is rate-limited too
        else:
            problems.append(f"{tag} {' '.join(f'{k}={v}' for k, v in values.items())}".strip())
    priority = int(attrs.get("priority", "0"))
    rules = [
        ImportedRule(b, verdict, origin, log, f"zone {zone}")
        for b in boxes
        if verdict and not b.is_empty()
    ]
    return rules, problems, priority, verdict


def import_zone(zone: Zone, defs: Definitions) -> Imported:
    imported = Imported("firewalld", families={4, 6})
    pre: list[tuple[int, ImportedRule]] = []
    post: list[tuple[int, ImportedRule]] = []
    deny: list[ImportedRule] = []
    allow: list[ImportedRule] = []
    for origin, parts in zone.rules:
        try:
            rules, problems, priority, verdict = _rule(zone.name, origin, parts, defs)
        except ValueError as exc:
            raise bad_input(origin, f"cannot read rich rule ({exc})") from None
        text = " ".join([p[0] + "".join(f' {k}="{v}"' for k, v in p[1].items()) for p in parts])
        if problems:
            box = rules[0].match if rules else None
            keep = verdict is Verdict.ACCEPT and all(p.startswith("rate limit") for p in problems)
            imported.skip(origin, text, "; ".join(problems), box)
            if not keep:
                continue
        if verdict is None:
            imported.skip(origin, text, "no verdict (a log or audit rule alone)")
            continue
        if any(r.match.protocols == PORT_PROTOCOLS for r in rules):
            imported.skip(origin, text, OTHER_PROTOCOLS)
        if priority < 0:
            pre.extend((priority, r) for r in rules)
        elif priority > 0:
            post.extend((priority, r) for r in rules)
        else:
            (allow if verdict is Verdict.ACCEPT else deny).extend(rules)
    for name in zone.services:
        found, why = _service_matches(name, defs)
        origin = f"{zone.origin}: service {name}"
        if why:
            imported.skip(origin, f"service {name}", "; ".join(why), found[0] if found else None)
            continue
        allow.extend(
            ImportedRule(m, Verdict.ACCEPT, origin, False, f"firewalld service {name}")
            for m in found
        )
    for port, protocol in zone.ports:
        try:
            _port_match(port, protocol)
        except ValueError:
            raise bad_input(zone.origin, f"bad port {port}/{protocol}") from None
        allow.append(
            ImportedRule(
                _port_match(port, protocol),
                Verdict.ACCEPT,
                f"{zone.origin}: port {port}/{protocol}",
            )
        )
    imported.rules = [r for _, r in sorted(pre, key=lambda x: x[0])] + deny + allow
    imported.rules += [r for _, r in sorted(post, key=lambda x: x[0])]
    for other in zone.others:
        imported.skip(zone.origin, other, f"zone {zone.name}: not expressible")
    if zone.target not in TARGETS:
        raise InputError(f"unknown zone target {zone.target!r}", token=zone.origin)
    imported.default = TARGETS[zone.target]
    imported.default_origin = f"{zone.origin}: target {zone.target}"
    return imported


def import_firewalld(inputs: list[tuple[str, str]], wanted: str | None) -> Imported:
    defs = Definitions()
    zones: list[Zone] = []
    default_zone = None
    for name, text in inputs:
        stripped = text.lstrip()
        if stripped.startswith("default-zone:"):
            default_zone = stripped.split(":", 1)[1].strip()
        elif stripped.startswith("<"):
            root = _xml(text, name)
            if root.tag == "zone":
                zones.append(zone_from_xml(root, name))
            elif root.tag == "service":
                defs.services[_stem(name)] = [(c.tag, dict(c.attrib)) for c in root]
            elif root.tag == "ipset":
                nets = [
                    n
                    for e in root
                    if e.tag == "entry" and e.text
                    for n in parse_address_item(e.text.strip())
                ]
                defs.ipsets[_stem(name)] = Sources(collapse(nets))
            else:
                raise InputError(f"not a firewalld zone, service or ipset: <{root.tag}>", file=name)
        else:
            zones.extend(zones_from_text(text, name))
    names = [z.name for z in zones]
    pick = (
        wanted
        or default_zone
        or ("public" if "public" in names else names[0] if len(names) == 1 else None)
    )
    chosen = [z for z in zones if z.name == pick]
    if not chosen:
        raise InputError(
            f"zone {pick!r} not found", token=", ".join(names) or "no zone", hint="give --zone"
        )
    imported = import_zone(chosen[0], defs)
    for zone in zones:
        if zone.name != pick:
            imported.skip(zone.origin, f"zone {zone.name}", "another zone: not imported (--zone)")
    imported.set_names.update({v.include: k for k, v in defs.ipsets.items()})
    return imported
