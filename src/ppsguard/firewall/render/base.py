"""What every firewall renderer shares: the Renderer protocol, its features, and refusals.

A renderer turns a `HostPolicy` (ordered first-match rules + default) into the text a firewall
tool loads. Each renderer declares the features it can express; `check_supported` refuses a
policy that needs anything else, naming the entry and where it was written, so a policy is never
half-compiled (the Aerleon model: `UnsupportedFilterError`). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol as TypingProtocol

from ppsguard.errors import InputError
from ppsguard.model.net import Protocol
from ppsguard.model.registry import Action, HostPolicy, Rule
from ppsguard.registry.naming import ENTRY_ID, ENTRY_ID_HINT

LOG_PREFIX = "pps:"
_MAX_LOG_PREFIX = 63  # the xt NFLOG target's limit (nft's is larger)


class UnsupportedFeature(InputError):
    """The target cannot express something the policy needs; nothing was rendered."""


class Feature(StrEnum):
    """Things a policy may need from a target."""

    IPV4 = "ipv4"
    IPV6 = "ipv6"
    TCP = "tcp"
    UDP = "udp"
    SCTP = "sctp"
    ALLOW = "allow"
    DENY = "deny"
    REJECT = "reject"
    LOG = "log"
    SOURCES = "sources"
    DESTINATIONS = "destinations"
    PORT_RANGES = "port-ranges"


_PROTOCOL_FEATURE = {
    Protocol.TCP: Feature.TCP,
    Protocol.UDP: Feature.UDP,
    Protocol.SCTP: Feature.SCTP,
}
_ACTION_FEATURE = {
    Action.ALLOW: Feature.ALLOW,
    Action.DENY: Feature.DENY,
    Action.REJECT: Feature.REJECT,
}


@dataclass(frozen=True, slots=True)
class RenderOptions:
    """Knobs shared by the renderers (NFLOG group and the log rate limit)."""

    log_group: int = 5
    log_rate_per_second: int = 10
    log_burst: int = 20


@dataclass(frozen=True, slots=True)
class RenderedFile:
    """One output: `suffix` names it (`nft`, `v4`, `v6`); `loader` is the tool that reads it."""

    suffix: str
    loader: str
    text: str


@dataclass(frozen=True, slots=True)
class Rendered:
    target: str
    host: str
    files: tuple[RenderedFile, ...]


class Renderer(TypingProtocol):
    """A firewall target."""

    name: str
    features: frozenset[Feature]

    def render(self, policy: HostPolicy, options: RenderOptions = ...) -> Rendered: ...


def rule_features(rule: Rule) -> set[Feature]:
    needed: set[Feature] = (
        {_ACTION_FEATURE[rule.action]} if rule.action in _ACTION_FEATURE else set()
    )
    feature = _PROTOCOL_FEATURE.get(rule.protocol)
    if feature is not None:
        needed.add(feature)
    if rule.log:
        needed.add(Feature.LOG)
    if not rule.source_is_any:
        needed.add(Feature.SOURCES)
    if not rule.destination_is_any:
        needed.add(Feature.DESTINATIONS)
    if any(r.first != r.last for r in rule.ports):
        needed.add(Feature.PORT_RANGES)
    for network in (*rule.sources, *rule.destinations):
        needed.add(Feature.IPV4 if network.version == 4 else Feature.IPV6)
    return needed


def _refuse(rule: Rule, target: str, what: str) -> UnsupportedFeature:
    at = rule.location
    return UnsupportedFeature(
        f"target {target} cannot express {what} (entry {rule.entry_id})",
        file=at.file,
        line=at.line,
        column=at.column,
    )


def check_supported(policy: HostPolicy, target: str, features: frozenset[Feature]) -> None:
    """Raise UnsupportedFeature for the first rule the target cannot express."""
    for rule in policy.rules:
        if rule.protocol not in _PROTOCOL_FEATURE:
            raise _refuse(rule, target, f"protocol {rule.protocol} (only port protocols)")
        missing = rule_features(rule) - features
        if missing:
            raise _refuse(rule, target, ", ".join(sorted(missing)))
        if rule.log and len(log_prefix(rule.entry_id)) > _MAX_LOG_PREFIX:
            raise _refuse(rule, target, f"a log prefix longer than {_MAX_LOG_PREFIX} characters")
        if not ENTRY_ID.fullmatch(rule.entry_id):
            raise _refuse(
                rule,
                target,
                f"entry id {rule.entry_id!r} in a rule comment and log prefix ({ENTRY_ID_HINT})",
            )
    if not ENTRY_ID.fullmatch(default_entry_id(policy)):
        raise UnsupportedFeature(
            f"target {target} cannot carry host name {policy.host!r} in a comment",
            token=policy.host,
        )
    if _ACTION_FEATURE[policy.default_action] not in features:
        raise UnsupportedFeature(f"target {target} cannot express default {policy.default_action}")
    if policy.default_log and Feature.LOG not in features:
        raise UnsupportedFeature(f"target {target} cannot log the default")


def default_entry_id(policy: HostPolicy) -> str:
    """The id the default carries in comments and log prefixes (as `pps policy explain` says)."""
    return f"{policy.host}/default"


def live_rules(policy: HostPolicy) -> tuple[Rule, ...]:
    """The rules that can match something (empty source or destination sets match nothing)."""
    return tuple(r for r in policy.rules if r.sources and r.destinations and r.ports)


def log_prefix(entry_id: str) -> str:
    """The NFLOG prefix carrying the entry id: `pps:<entry id> ` (the monitor strips it)."""
    return f"{LOG_PREFIX}{entry_id} "


def entry_from_prefix(prefix: str) -> str | None:
    """Inverse of `log_prefix`: the entry id in an NFLOG prefix, or None if not ours."""
    text = prefix.rstrip("\x00").strip()
    return text[len(LOG_PREFIX) :] if text.startswith(LOG_PREFIX) else None
