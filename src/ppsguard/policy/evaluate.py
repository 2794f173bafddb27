"""One connection attempt against a host's policy: which entry decides, and why, in registry terms.

`evaluate(policy, source, port, protocol, destination=None)` walks `HostPolicy.rules` in order
(first match wins, see `policy.compile`) and returns a `Decision`. A rule matches when the
protocol is equal, the port is in one of its ranges, the source is in one of its networks and, when
a destination is given, the destination is in one of its destination networks (destination None
means "any address of the host": destination constraints are not checked).

`explain(...)` adds the registry's words: the `Explanation` has exactly the five keys of
`pps policy explain --json`: verdict ("allow" or "deny"; a `reject` entry or default gives "deny"
and the reason says "rejected", the one word for both), log, entry {id, file, line}, reason, and
unchecked. When the default decides, the entry is `<host>/default` at the line where the default
was written (or the host's line when implicit).

`unchecked` lists what the answer assumed instead of checking: without a destination only the
deciding entry's destination can matter (an earlier entry that failed to match failed on protocol,
port or source, none of which depends on the destination; a default decision stays one when a
destination is added), so it is `["bind"]` when that entry has `bind: ADDRESS` or `bind:
loopback`, `["destination"]` for a `uses` entry's `to:`, else empty; the reason says it too.
Pure.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ppsguard.errors import UsageError
from ppsguard.model.net import IPAddress, Protocol
from ppsguard.model.registry import (
    ANYWHERE,
    Action,
    Entry,
    HostPolicy,
    Registry,
    Rule,
    SourceLocation,
)


@dataclass(frozen=True, slots=True)
class Decision:
    """The raw outcome: the action, whether logged, and the deciding rule (None = default)."""

    action: Action
    log: bool
    rule: Rule | None
    index: int  # position in policy.rules, -1 for the default


@dataclass(frozen=True, slots=True)
class EntryRef:
    id: str
    file: str
    line: int


@dataclass(frozen=True, slots=True)
class Explanation:
    verdict: str
    log: bool
    entry: EntryRef
    reason: str
    unchecked: tuple[str, ...] = ()


VERB = {Action.ALLOW: "allowed", Action.DENY: "denied", Action.REJECT: "rejected"}
REJECT_NOTE = " (rejected: the sender is told the port is closed)"


def rule_matches(
    rule: Rule,
    source: IPAddress,
    port: int,
    protocol: Protocol,
    destination: IPAddress | None = None,
) -> bool:
    if rule.protocol != protocol or not any(port in r for r in rule.ports):
        return False
    if not any(source in net for net in rule.sources):
        return False
    return destination is None or any(destination in net for net in rule.destinations)


def evaluate(
    policy: HostPolicy,
    source: IPAddress,
    port: int,
    protocol: Protocol,
    destination: IPAddress | None = None,
) -> Decision:
    """First-match evaluation of one attempt; see the module docstring."""
    for index, rule in enumerate(policy.rules):
        if rule_matches(rule, source, port, protocol, destination):
            return Decision(rule.action, rule.log, rule, index)
    return Decision(policy.default_action, policy.default_log, None, -1)


def _who(entry: Entry) -> str:
    who = ", ".join(entry.sources)
    if entry.sources == (ANYWHERE,):
        who = "anywhere"
    if entry.excluded:
        who += " except " + ", ".join(entry.excluded)
    return who


def explain(
    registry: Registry,
    policy: HostPolicy,
    *,
    source: IPAddress,
    port: int,
    protocol: Protocol,
    destination: IPAddress | None = None,
) -> Explanation:
    """`evaluate` plus the registry's words (see the module docstring)."""
    decision = evaluate(policy, source, port, protocol, destination)
    verdict = "allow" if decision.action is Action.ALLOW else "deny"
    logged = "logged" if decision.log else "not logged"
    attempt = f"{source} -> {port}/{protocol}"
    if decision.rule is None:
        loc = policy.default_location
        if loc is None:
            host = registry.host(policy.host)
            loc = host.location if host else SourceLocation(registry.files[0], 1, 1)
        reason = (
            f"{attempt}: no entry of host {policy.host!r} matches, so the default decides: "
            f"{VERB[policy.default_action]} ({logged})"
        )
        if policy.default_action is Action.REJECT:
            reason += REJECT_NOTE
        return Explanation(
            verdict, decision.log, EntryRef(f"{policy.host}/default", loc.file, loc.line), reason
        )
    rule = decision.rule
    entry = next((e for e in registry.entries() if e.id == rule.entry_id), None)
    what = entry.label if entry else f"{rule.protocol}"
    who = _who(entry) if entry else "its sources"
    kind = rule.kind.value
    reason = f"{attempt}: {VERB[rule.action]} ({logged}) by {kind} entry {rule.entry_id!r}: "
    reason += f"{what} from {who}"
    if rule.action is Action.REJECT:
        reason += REJECT_NOTE
    if entry is not None and entry.purpose:
        reason += f" — {entry.purpose}"
    unchecked: tuple[str, ...] = ()
    if destination is None and not rule.destination_is_any:
        bind = entry.bind if entry is not None else None
        if bind is not None:
            unchecked = ("bind",)
            shown = bind.address if bind.address is not None else bind.scope.value
            reason += (
                f"; NOT CHECKED: the entry's bind ({shown}), since no --to was given (any "
                "address of the host was assumed; give --to to check it)"
            )
        else:
            unchecked = ("destination",)
            reason += (
                "; NOT CHECKED: the entry's destination, since no --to was given (any "
                "address was assumed; give --to to check it)"
            )
    return Explanation(
        verdict,
        decision.log,
        EntryRef(rule.entry_id, rule.location.file, rule.location.line),
        reason,
        unchecked,
    )


def attempt_address(text: str, option: str) -> IPAddress:
    """An attempt's address as `pps policy explain` and the desk's explain form take it: an
    IPv4-mapped IPv6 address is the IPv4 address the kernel sees; a zone index (`fe80::1%eth0`)
    is refused, since rules match addresses, not interfaces. `option` names the field."""
    if "%" in text or not text.isascii():
        raise UsageError(f"{option} needs an address without a zone index", token=text)
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        raise UsageError(f"{option} needs an IPv4 or IPv6 address", token=text) from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
