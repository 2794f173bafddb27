"""Render a HostPolicy for iptables-restore and ip6tables-restore (one file per family).

Each file declares only what it owns: INPUT's policy and the chain `PPSGUARD-INPUT`, which INPUT
jumps to (FORWARD and OUTPUT are not declared, so their policies are never changed). Loaded with
plain `iptables-restore` it replaces the whole `filter` table (as iptables-persistent's rules.v4
does); with `iptables-restore --noflush` it empties and refills PPSGUARD-INPUT (a declared chain
is flushed even then), sets INPUT's policy, appends the jump at the end of INPUT and keeps every
other rule (see docs/firewall.md for the exact semantics). `PPSGUARD-INPUT` holds the same order as
the nftables target — established and
related first, ICMPv6 neighbour discovery, invalid dropped, loopback accepted, then the registry's
rules in first-match order, then the default as an explicit last rule. iptables has no verdict
maps, so the chain is flat (cost grows with the rules; prefer the nftables target for large
registries). Ports use `multiport` (at most 15 ports per rule, a range counting as two), each
rule carries `-m comment --comment "<entry id>"`, logged rules get a rate-limited
`-j NFLOG --nflog-group G --nflog-prefix "pps:<entry id> "`. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator

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

CHAIN = "PPSGUARD-INPUT"
_MULTIPORT_SLOTS = 15
_ND_TYPES = (
    "neighbour-solicitation",
    "neighbour-advertisement",
    "router-solicitation",
    "router-advertisement",
)


def port_groups(ports: tuple[PortRange, ...]) -> Iterator[str | None]:
    """multiport arguments in chunks of at most 15 slots; None = every port (no match)."""
    if len(ports) == 1 and ports[0] == PortRange(0, 65535):
        yield None
        return
    chunk: list[str] = []
    used = 0
    for port_range in ports:
        cost = 1 if port_range.first == port_range.last else 2
        if used + cost > _MULTIPORT_SLOTS:
            yield ",".join(chunk)
            chunk, used = [], 0
        chunk.append(
            str(port_range.first)
            if port_range.first == port_range.last
            else f"{port_range.first}:{port_range.last}"
        )
        used += cost
    if chunk:
        yield ",".join(chunk)


def _target(action: Action, protocol: Protocol | None, version: int) -> str:
    if action is Action.ALLOW:
        return "-j ACCEPT"
    if action is Action.DENY:
        return "-j DROP"
    if protocol is Protocol.TCP:
        return "-j REJECT --reject-with tcp-reset"
    if protocol is Protocol.UDP:
        return (
            "-j REJECT --reject-with icmp-port-unreachable"
            if version == 4
            else "-j REJECT --reject-with icmp6-port-unreachable"
        )
    return (
        "-j REJECT --reject-with icmp-admin-prohibited"
        if version == 4
        else "-j REJECT --reject-with icmp6-adm-prohibited"
    )


def _log(entry_id: str, options: RenderOptions) -> str:
    return (
        f"-m limit --limit {options.log_rate_per_second}/second --limit-burst {options.log_burst} "
        f'-j NFLOG --nflog-group {options.log_group} --nflog-prefix "{log_prefix(entry_id)}"'
    )


def _addresses(networks: tuple[IPNetwork, ...], version: int) -> list[str | None]:
    own = [n for n in networks if n.version == version]
    if not own:
        return []
    if own[0].prefixlen == 0:
        return [None]
    return [str(n) for n in own]


def _rule_lines(rule: Rule, version: int, options: RenderOptions) -> list[str]:
    lines: list[str] = []
    comment = f'-m comment --comment "{rule.entry_id}"'
    for source in _addresses(rule.sources, version):
        for destination in _addresses(rule.destinations, version):
            for group in port_groups(rule.ports):
                match = [f"-A {CHAIN}", f"-p {rule.protocol}"]
                if source is not None:
                    match.append(f"-s {source}")
                if destination is not None:
                    match.append(f"-d {destination}")
                if group is not None:
                    match.append(f"-m multiport --dports {group}")
                match.append(comment)
                head = " ".join(match)
                if rule.log:
                    lines.append(f"{head} {_log(rule.entry_id, options)}")
                lines.append(f"{head} {_target(rule.action, rule.protocol, version)}")
    return lines


def _default_lines(policy: HostPolicy, version: int, options: RenderOptions) -> list[str]:
    entry = default_entry_id(policy)
    comment = f'-m comment --comment "{entry}"'
    lines = []
    if policy.default_log:
        lines.append(f"-A {CHAIN} {comment} {_log(entry, options)}")
    if policy.default_action is Action.REJECT:
        for protocol in (Protocol.TCP, Protocol.UDP):
            target = _target(Action.REJECT, protocol, version)
            lines.append(f"-A {CHAIN} -p {protocol} {comment} {target}")
    lines.append(f"-A {CHAIN} {comment} {_target(policy.default_action, None, version)}")
    return lines


class IptablesRenderer:
    """The `iptables` target: rules.v4 for iptables-restore, rules.v6 for ip6tables-restore."""

    name = "iptables"
    features = frozenset(Feature)

    def render(self, policy: HostPolicy, options: RenderOptions | None = None) -> Rendered:
        options = options or RenderOptions()
        check_supported(policy, self.name, self.features)
        return Rendered(
            target=self.name,
            host=policy.host,
            files=(
                RenderedFile("v4", "iptables-restore", self.render_family(policy, 4, options)),
                RenderedFile("v6", "ip6tables-restore", self.render_family(policy, 6, options)),
            ),
        )

    def render_family(self, policy: HostPolicy, version: int, options: RenderOptions) -> str:
        policy_word = "ACCEPT" if policy.default_action is Action.ALLOW else "DROP"
        tool = "iptables-restore" if version == 4 else "ip6tables-restore"
        lines = [
            f"# ppsguard policy for host {policy.host} (IPv{version}): {len(policy.rules)} rules, "
            f"default {policy.default_action}",
            f"# load: {tool} FILE (replaces the filter table) or {tool} --noflush FILE",
            f"# (replaces chain {CHAIN} only, keeps other rules; see docs/firewall.md)",
            "*filter",
            f":INPUT {policy_word} [0:0]",
            f":{CHAIN} - [0:0]",
            f"-A INPUT -j {CHAIN}",
            *self.chain_body(policy, version, options),
            "COMMIT",
        ]
        return "\n".join(lines) + "\n"

    def chain_body(self, policy: HostPolicy, version: int, options: RenderOptions) -> list[str]:
        """The `-A PPSGUARD-INPUT ...` lines alone (what `pps policy apply` loads)."""
        check_supported(policy, self.name, self.features)
        lines = [f"-A {CHAIN} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"]
        if version == 6:
            lines.extend(
                f"-A {CHAIN} -p ipv6-icmp -m icmp6 --icmpv6-type {kind} -j ACCEPT"
                for kind in _ND_TYPES
            )
        lines.append(f"-A {CHAIN} -m conntrack --ctstate INVALID -j DROP")
        lines.append(f"-A {CHAIN} -i lo -j ACCEPT")
        for rule in live_rules(policy):
            lines.extend(_rule_lines(rule, version, options))
        lines.extend(_default_lines(policy, version, options))
        return lines
