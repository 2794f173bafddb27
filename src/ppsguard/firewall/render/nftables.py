"""Render a HostPolicy as one nftables table, `inet ppsguard`, whose per-packet cost stays flat.

Layout (see docs/firewall.md):

    table inet ppsguard
      map tcp_ports / udp_ports / sctp_ports   interval verdict maps: port range -> jump segment
      chain tcp_N / udp_N / ...                one chain per distinct list of rules covering a
                                               port segment, holding those rules in registry
                                               order (first match wins), each with a counter and
                                               `comment "<entry id>"`; logged rules get a rate-
                                               limited `log group G prefix "pps:<entry id> "`
      map saddr4_N / saddr6_N                  first-match address maps: inside a port chain a
                                               run of same-family rules with one destination
                                               match becomes `ip saddr vmap @saddr4_N`, each
                                               address jumping to the first rule of the run
                                               whose sources contain it (see addrmap.py)
      chain rule_N                             one rule reached through an address map: its log
                                               rule, counter, comment and verdict
      chain input (hook input, priority filter)
        ct state established,related accept; ICMPv6 neighbour discovery; ct state invalid drop;
        iif lo accept; `tcp dport vmap @tcp_ports` ...; the default as an explicit last rule.

The port space of each protocol is cut at every rule boundary into elementary segments; rules
covering the same segments share a chain. A packet costs one map lookup plus the rules whose
ports contain its port, so 10,000 entries on distinct ports cost what 10 do; with the address
maps, 10,000 entries each allowing one address to the same port cost what 10 do too. The base
chain policy is drop when the default is deny/reject (belt and braces: if the last rule were
removed by hand the chain still fails closed) and accept when the default is allow.

`render()` (what `pps policy compile` writes) puts `table inet ppsguard {}` + `delete table inet
ppsguard` before the table, so `nft -f FILE` alone replaces our table idempotently and changes
nothing else; `render_table()` is the bare table that `pps policy apply` wraps the same way.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ppsguard.firewall.render.addrmap import first_match_intervals, interval_text
from ppsguard.firewall.render.base import (
    Feature,
    Rendered,
    RenderedFile,
    RenderOptions,
    check_supported,
    default_entry_id,
    live_rules,
    log_prefix,
)
from ppsguard.model.net import IPNetwork, PortRange, Protocol
from ppsguard.model.registry import Action, HostPolicy, Rule

TABLE = "ppsguard"


def replacement_preamble() -> str:
    """The two lines that make a file of our table replace whatever `inet ppsguard` exists."""
    return f"table inet {TABLE} {{}}\ndelete table inet {TABLE}\n"


_PROTOCOLS = (Protocol.TCP, Protocol.UDP, Protocol.SCTP)
_MAX_PORT_END = 65536
_ND_TYPES = "nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, nd-router-advert"


@dataclass(frozen=True, slots=True)
class Segment:
    """A port range of one protocol and the indexes (in policy order) of the rules covering it."""

    ports: PortRange
    rules: tuple[int, ...]


def segments(rules: tuple[Rule, ...], protocol: Protocol) -> list[Segment]:
    """Cut the port space at every rule boundary; adjacent segments with equal rules merge."""
    starts: dict[int, list[int]] = {}
    ends: dict[int, list[int]] = {}
    for index, rule in enumerate(rules):
        if rule.protocol != protocol:
            continue
        for port_range in rule.ports:
            starts.setdefault(port_range.first, []).append(index)
            ends.setdefault(port_range.last + 1, []).append(index)
    points = sorted(set(starts) | set(ends))
    active: dict[int, int] = {}
    out: list[Segment] = []
    for position, point in enumerate(points):
        for index in ends.get(point, []):
            active[index] -= 1
            if active[index] == 0:
                del active[index]
        for index in starts.get(point, []):
            active[index] = active.get(index, 0) + 1
        if not active or position + 1 >= len(points):
            continue
        covering = tuple(sorted(active))
        last = min(points[position + 1], _MAX_PORT_END) - 1
        if out and out[-1].rules == covering and out[-1].ports.last + 1 == point:
            out[-1] = Segment(PortRange(out[-1].ports.first, last), covering)
        else:
            out.append(Segment(PortRange(point, last), covering))
    return out


class _Sets:
    """Named address sets, one per distinct list of networks (shared by every rule using it)."""

    def __init__(self) -> None:
        self.names: dict[tuple[int, tuple[str, ...]], str] = {}

    def reference(self, networks: Iterable[IPNetwork]) -> str:
        items = [
            str(n.network_address) if n.prefixlen == n.max_prefixlen else str(n) for n in networks
        ]
        if len(items) == 1:
            return items[0]
        version = 6 if ":" in items[0] else 4
        key = (version, tuple(items))
        name = self.names.get(key)
        if name is None:
            name = f"addr{version}_{len(self.names)}"
            self.names[key] = name
        return f"@{name}"

    def definitions(self) -> list[str]:
        out = []
        for (version, items), name in self.names.items():
            kind = "ipv4_addr" if version == 4 else "ipv6_addr"
            out.append(
                f"\tset {name} {{\n\t\ttype {kind}\n\t\tflags interval\n\t\telements = {{ "
                + ", ".join(items)
                + " }\n\t}"
            )
        return out


@dataclass(frozen=True, slots=True)
class _Item:
    """One rule restricted to one address family: its destination match and its sources."""

    index: int
    destination: str
    sources: tuple[IPNetwork, ...]


def _family_items(index: int, rule: Rule, sets: _Sets) -> dict[int, _Item]:
    """The rule per address family it applies to (a rule without sources or destinations of a
    family matches no packet of that family)."""
    out: dict[int, _Item] = {}
    for version, keyword in ((4, "ip"), (6, "ip6")):
        sources = tuple(n for n in rule.sources if n.version == version)
        destinations = [n for n in rule.destinations if n.version == version]
        if not sources or not destinations:
            continue
        destination = (
            f"{keyword} daddr {sets.reference(destinations)} "
            if destinations[0].prefixlen != 0
            else ""
        )
        out[version] = _Item(index, destination, sources)
    return out


def _plain_match(item: _Item, version: int, sets: _Sets) -> str:
    keyword = "ip" if version == 4 else "ip6"
    source = (
        f"{keyword} saddr {sets.reference(item.sources)} " if item.sources[0].prefixlen != 0 else ""
    )
    match = source + item.destination
    return match or f"meta nfproto {'ipv4' if version == 4 else 'ipv6'} "


class _Maps:
    """Named first-match source maps (`saddr4_N`) and the per-rule chains they jump to."""

    def __init__(self) -> None:
        self.names: dict[tuple[int, tuple[str, ...]], str] = {}
        self.rule_chains: dict[int, str] = {}

    def reference(self, version: int, elements: tuple[str, ...]) -> str:
        key = (version, elements)
        name = self.names.get(key)
        if name is None:
            name = f"saddr{version}_{len(self.names)}"
            self.names[key] = name
        return f"@{name}"

    def rule_chain(self, index: int) -> str:
        return self.rule_chains.setdefault(index, f"rule_{index}")

    def definitions(self) -> list[str]:
        out = []
        for (version, elements), name in self.names.items():
            kind = "ipv4_addr" if version == 4 else "ipv6_addr"
            out.append(
                f"\tmap {name} {{\n\t\ttype {kind} : verdict\n\t\tflags interval\n"
                "\t\telements = {\n" + ",\n".join(f"\t\t\t{e}" for e in elements) + "\n\t\t}\n\t}"
            )
        return out


def _verdict(action: Action, protocol: Protocol | None) -> str:
    if action is Action.ALLOW:
        return "accept"
    if action is Action.DENY:
        return "drop"
    if protocol is Protocol.TCP:
        return "reject with tcp reset"
    if protocol is Protocol.UDP:
        return "reject with icmpx type port-unreachable"
    return "reject with icmpx type admin-prohibited"


def _log(entry_id: str, options: RenderOptions) -> str:
    return (
        f"limit rate {options.log_rate_per_second}/second burst {options.log_burst} packets "
        f'log group {options.log_group} prefix "{log_prefix(entry_id)}"'
    )


def _rule_lines(rule: Rule, options: RenderOptions, match: str = "") -> list[str]:
    """The rule's log line (if logged) and its counter+verdict line, both commented."""
    lines: list[str] = []
    comment = f'comment "{rule.entry_id}"'
    if rule.log:
        lines.append(f"{match}{_log(rule.entry_id, options)} {comment}")
    lines.append(f"{match}counter {_verdict(rule.action, rule.protocol)} {comment}")
    return lines


def _run_lines(run: list[_Item], version: int, rules: tuple[Rule, ...], ctx: _Context) -> list[str]:
    """A run of same-family items sharing a destination match: one rule, or one map lookup."""
    if len(run) == 1:
        item = run[0]
        return _rule_lines(rules[item.index], ctx.options, _plain_match(item, version, ctx.sets))
    for item in run:  # every rule keeps its chain, counter and comment, even if shadowed
        ctx.maps.rule_chain(item.index)
    elements = tuple(
        f"{interval_text(first, last, version)} : jump {ctx.maps.rule_chain(run[owner].index)}"
        for first, last, owner in first_match_intervals([item.sources for item in run])
    )
    if not elements:
        return []
    keyword = "ip" if version == 4 else "ip6"
    return [f"{run[0].destination}{keyword} saddr vmap {ctx.maps.reference(version, elements)}"]


def _flush(block: dict[int, list[_Item]], rules: tuple[Rule, ...], ctx: _Context) -> list[str]:
    """Render the pending items, IPv4 then IPv6 (a packet has one family, so the families'
    relative order does not matter; within a family registry order is kept)."""
    lines: list[str] = []
    for version in (4, 6):
        items = block[version]
        start = 0
        while start < len(items):
            end = start + 1
            while end < len(items) and items[end].destination == items[start].destination:
                end += 1
            lines.extend(_run_lines(items[start:end], version, rules, ctx))
            start = end
        items.clear()
    return lines


def _chain_body(indexes: tuple[int, ...], rules: tuple[Rule, ...], ctx: _Context) -> list[str]:
    """The rules of one port chain in first-match order, runs merged into address maps."""
    lines: list[str] = []
    block: dict[int, list[_Item]] = {4: [], 6: []}
    for index in indexes:
        rule = rules[index]
        if rule.source_is_any and rule.destination_is_any:
            lines.extend(_flush(block, rules, ctx))
            lines.extend(_rule_lines(rule, ctx.options))
            continue
        for version, item in _family_items(index, rule, ctx.sets).items():
            block[version].append(item)
    lines.extend(_flush(block, rules, ctx))
    return lines


@dataclass(frozen=True, slots=True)
class _Context:
    options: RenderOptions
    sets: _Sets
    maps: _Maps


def _default_lines(policy: HostPolicy, options: RenderOptions) -> list[str]:
    entry = default_entry_id(policy)
    comment = f'comment "{entry}"'
    lines = []
    if policy.default_log:
        lines.append(f"{_log(entry, options)} {comment}")
    if policy.default_action is Action.REJECT:
        lines.append(f"meta l4proto tcp counter reject with tcp reset {comment}")
        lines.append(f"meta l4proto udp counter {_verdict(Action.REJECT, Protocol.UDP)} {comment}")
        lines.append(f"counter {_verdict(Action.REJECT, None)} {comment}")
    else:
        lines.append(f"counter {_verdict(policy.default_action, None)} {comment}")
    return lines


class NftablesRenderer:
    """The `nftables` target: one `inet ppsguard` table, loaded with `nft -f`."""

    name = "nftables"
    features = frozenset(Feature)

    def render(self, policy: HostPolicy, options: RenderOptions | None = None) -> Rendered:
        """The loadable file: `render_file` (self-contained, idempotent under `nft -f`)."""
        return Rendered(
            target=self.name,
            host=policy.host,
            files=(RenderedFile("nft", "nft -f", self.render_file(policy, options)),),
        )

    def render_file(self, policy: HostPolicy, options: RenderOptions | None = None) -> str:
        """The table behind its replacement preamble, so plain `nft -f FILE` replaces our table
        whatever was there (absent, ours from another registry, hand-edited) in one transaction
        and touches no other table: `table inet ppsguard {}` creates it if absent (a no-op
        otherwise), `delete table inet ppsguard` removes it whole, then the new table."""
        table = self.render_table(policy, options)
        header, _, body = table.partition("\n")
        usage = "# load: nft -f FILE (replaces table inet ppsguard, whatever was there; no other)\n"
        return f"{header}\n{usage}{replacement_preamble()}{body}"

    def render_table(self, policy: HostPolicy, options: RenderOptions | None = None) -> str:
        options = options or RenderOptions()
        check_supported(policy, self.name, self.features)
        rules = live_rules(policy)
        out = [
            f"# ppsguard policy for host {policy.host}: {len(policy.rules)} rules, "
            f"default {policy.default_action}{' (logged)' if policy.default_log else ''}",
            f"table inet {TABLE} {{",
        ]
        dispatch: list[str] = []
        chains: list[str] = []
        maps: list[str] = []
        sets = _Sets()
        ctx = _Context(options, sets, _Maps())
        for protocol in _PROTOCOLS:
            cut = segments(rules, protocol)
            if not cut:
                continue
            names: dict[tuple[int, ...], str] = {}
            elements: list[str] = []
            for segment in cut:
                name = names.get(segment.rules)
                if name is None:
                    name = f"{protocol}_{len(names)}"
                    names[segment.rules] = name
                    body = _chain_body(segment.rules, rules, ctx)
                    chains.append(
                        f"\tchain {name} {{\n" + "".join(f"\t\t{b}\n" for b in body) + "\t}"
                    )
                elements.append(
                    f"\t\t\t{segment.ports.first}-{segment.ports.last} : jump {name}"
                    if segment.ports.first != segment.ports.last
                    else f"\t\t\t{segment.ports.first} : jump {name}"
                )
            maps.append(
                f"\tmap {protocol}_ports {{\n\t\ttype inet_service : verdict\n\t\tflags interval\n"
                "\t\telements = {\n" + ",\n".join(elements) + "\n\t\t}\n\t}"
            )
            dispatch.append(f"{protocol} dport vmap @{protocol}_ports")
        out.extend(sets.definitions())
        out.extend(ctx.maps.definitions())
        out.extend(maps)
        out.extend(chains)
        for index, name in sorted(ctx.maps.rule_chains.items()):
            body = _rule_lines(rules[index], options)
            out.append(f"\tchain {name} {{\n" + "".join(f"\t\t{b}\n" for b in body) + "\t}")
        policy_word = "accept" if policy.default_action is Action.ALLOW else "drop"
        base = [
            "ct state established,related accept",
            f"icmpv6 type {{ {_ND_TYPES} }} accept",
            "ct state invalid drop",
            'iif "lo" accept',
            *dispatch,
            *_default_lines(policy, options),
        ]
        out.append(
            "\tchain input {\n"
            f"\t\ttype filter hook input priority filter; policy {policy_word};\n"
            + "".join(f"\t\t{line}\n" for line in base)
            + "\t}"
        )
        out.append("}")
        return "\n".join(out) + "\n"
