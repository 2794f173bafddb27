"""Is the registry enforced here? One answer for `pps audit`, `pps policy status` and the drift
check of `pps policy apply`.

`judge` is pure: from the live rule set, the record of the last apply (trusted only when the
state folder obeys its rules, see `statedir.py`), the entries the registry's policy renders,
iptables-legacy rules and the foreign effects found by `fate.interference`, it returns an
`Enforcement`:
- `none`: no rules at all; `unknown`: the rule set could not be read;
- `foreign`: ppsguard's table is absent and other tables decide;
- `changed`: ppsguard's table differs from what was applied (or, with no record, lacks rules
  of entries the policy renders);
- `overridden`: ppsguard's table is in place, but another table or chain (any family, hook or
  priority; iptables-legacy too) drops, rejects, queues or rewrites packets of an entry the
  registry allows — each such place is an `Effect` naming the table, chain and rule;
- `enforced`: none of the above.
`read_nft_enforcement` is the I/O edge that gathers the inputs (nft, iptables-legacy-save,
the state folder); `enforcement.read_enforcement` picks it or the iptables target's
(`ipstate.py`) by what the last apply used. Nothing here changes the rule set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from ppsguard.firewall.fate import Effect, entry_spaces, interference
from ppsguard.firewall.ipchains import OwnedChain
from ppsguard.firewall.legacy import legacy_objects
from ppsguard.firewall.live import (
    BaseChain,
    EntryCounter,
    LiveRuleset,
    legacy_rule_lines,
    parse_ruleset,
)

if TYPE_CHECKING:
    from ppsguard.firewall.nft import Runner
    from ppsguard.firewall.statedir import StateDir
    from ppsguard.model.registry import HostPolicy


class EnforcementState(StrEnum):
    NONE = "none"
    ENFORCED = "enforced"
    OVERRIDDEN = "overridden"
    CHANGED = "changed"
    FOREIGN = "foreign"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Enforcement:
    """The judgement, with what it rests on."""

    state: EnforcementState
    live: LiveRuleset | None = None
    recorded_fingerprint: str | None = None
    unchanged_since_apply: bool = False
    missing_entries: frozenset[str] = frozenset()
    legacy_rules: tuple[str, ...] = ()
    effects: tuple[tuple[str, Effect], ...] = ()  # (entry id, effect)
    notes: tuple[str, ...] = ()
    drift: str | None = None  # why the live table is not what ppsguard last applied
    target: str = "nftables"  # the target of the last apply: nftables or iptables
    backend: str | None = None  # iptables: "legacy" or "nft"
    chains: tuple[tuple[str, OwnedChain], ...] = ()  # iptables: ("v4" | "v6", our chain)
    chain_counters: tuple[EntryCounter, ...] = ()  # iptables: per entry, both families
    chain_problems: tuple[str, ...] = ()  # iptables: a family without the chain or its jump

    @property
    def counters(self) -> tuple[EntryCounter, ...]:
        """Packets and bytes per entry id, from the enforcing target's own rules."""
        if self.target == "iptables":
            return self.chain_counters
        return self.live.counters if self.live else ()

    @property
    def overriding(self) -> tuple[BaseChain, ...]:
        return self.live.overriding_chains if self.live else ()

    @property
    def problems(self) -> tuple[str, ...]:
        """One line per reason the registry is not (or not surely) enforced."""
        found: list[str] = []
        if self.state is EnforcementState.UNKNOWN:
            found.extend(self.notes)
        if self.target == "iptables":
            found.extend(self.chain_problems)
        elif self.live is not None and not self.live.owned_present:
            found.append("ppsguard's table inet ppsguard is not loaded")
        if self.drift:
            found.append(self.drift)
        if self.missing_entries:
            found.append("rules missing for entries: " + ", ".join(sorted(self.missing_entries)))
        found.extend(line for _, _, line in describe_effects(self.effects))
        if self.legacy_rules:
            found.append(
                f"{len(self.legacy_rules)} iptables-legacy rules are active (invisible to nft)"
            )
        return tuple(dict.fromkeys(found))


def describe_effect(entry_id: str, effect: Effect, families: str | None = None) -> str:
    """`inet other chain input (hook input, priority 10) rule "tcp dport 80 drop (handle 7)"
    drops IPv4 tcp packets that entry 'http' allows` (`families` replaces "IPv4")."""
    how = {
        "all": "",
        "some": " (some packets: " + ", ".join(effect.packets.conditions) + ")",
        "uncertain": " (uncertain: " + ", ".join(effect.packets.unknown[:3]) + ")",
    }[effect.certainty]
    verb = {
        "drop": "drops",
        "reject": "rejects",
        "queue": "queues to user space",
        "rewrite": "rewrites (NAT)",
        "uncertain": "may change the fate of",
    }.get(effect.verdict, effect.verdict)
    family = families or f"IPv{effect.packets.version}"
    return (
        f"{effect.where} (hook {effect.hook}, priority {effect.priority}) rule "
        f'"{effect.rule}" {verb} {family} {effect.packets.protocol} packets that entry '
        f"{entry_id!r} allows{how}"
    )


def describe_effects(
    effects: tuple[tuple[str, Effect], ...],
) -> list[tuple[str, Effect, str]]:
    """(entry, effect, line) per effect, the IPv4 and IPv6 lines of one rule and entry merged."""
    families: dict[tuple[str, str, str, str], list[str]] = {}
    first: dict[tuple[str, str, str, str], tuple[str, Effect]] = {}
    for entry, effect in effects:
        key = (entry, effect.where, effect.rule, effect.verdict + effect.certainty)
        families.setdefault(key, []).append(f"IPv{effect.packets.version}")
        first.setdefault(key, (entry, effect))
    return [
        (*first[key], describe_effect(*first[key], families=" and ".join(sorted(set(names)))))
        for key, names in families.items()
    ]


def drift_reason(live: LiveRuleset, recorded: str | None) -> str | None:
    """Why the live table is not what ppsguard last applied (None when it is)."""
    if recorded is None:
        return (
            "inet ppsguard exists but was not applied by ppsguard" if live.owned_present else None
        )
    if not live.owned_present:
        return "inet ppsguard was removed since the last apply"
    if live.owned_fingerprint != recorded:
        return "inet ppsguard was changed by hand since the last apply"
    return None


def judge(
    live: LiveRuleset,
    *,
    recorded: str | None,
    expected_entries: frozenset[str] | None = None,
    legacy_rules: tuple[str, ...] = (),
    effects: tuple[tuple[str, Effect], ...] = (),
    notes: tuple[str, ...] = (),
) -> Enforcement:
    """The verdict on one host (see the module docstring). Pure."""
    base = Enforcement(
        EnforcementState.ENFORCED,
        live=live,
        recorded_fingerprint=recorded,
        legacy_rules=legacy_rules,
        effects=effects,
        notes=notes,
    )
    if live.empty and not legacy_rules:
        return _with(base, EnforcementState.NONE, notes=(*notes, "no nftables tables at all"))
    if not live.owned_present:
        tables = ", ".join(f"{f} {n}" for f, n in live.tables) or "iptables-legacy"
        return _with(
            base,
            EnforcementState.FOREIGN,
            notes=(*notes, f"tables: {tables}"),
            drift=drift_reason(live, recorded),
        )
    missing: frozenset[str] = frozenset()
    if expected_entries is not None:
        missing = expected_entries - {c.entry_id for c in live.counters}
    if recorded:
        unchanged = recorded == live.owned_fingerprint
    else:
        unchanged = not missing
        notes = (*notes, "no apply record here; judged by the entries present in the table")
    state = EnforcementState.ENFORCED
    if not unchanged or missing:
        state = EnforcementState.CHANGED
    elif effects:
        state = EnforcementState.OVERRIDDEN
    return _with(
        base,
        state,
        notes=notes,
        unchanged=unchanged and bool(recorded),
        missing=missing,
        drift=drift_reason(live, recorded) if recorded else None,
    )


def _with(
    base: Enforcement,
    state: EnforcementState,
    *,
    notes: tuple[str, ...],
    unchanged: bool = False,
    missing: frozenset[str] = frozenset(),
    drift: str | None = None,
) -> Enforcement:
    return Enforcement(
        state,
        live=base.live,
        recorded_fingerprint=base.recorded_fingerprint,
        unchanged_since_apply=unchanged,
        missing_entries=missing,
        legacy_rules=base.legacy_rules,
        effects=base.effects,
        notes=notes,
        drift=drift,
    )


def foreign_effects(
    ruleset_json: str, legacy: dict[str, str], policy: HostPolicy | None
) -> tuple[tuple[str, Effect], ...]:
    """What foreign tables and iptables-legacy rules do to the policy's allowed entries."""
    if policy is None:
        return ()
    document = json.loads(ruleset_json)
    objects = [o for o in document.get("nftables", []) if isinstance(o, dict)]
    for family, text in legacy.items():
        objects.extend(legacy_objects(text, family))
    return tuple(interference(objects, entry_spaces(policy.rules)))


def read_nft_enforcement(
    runner: Runner, state: StateDir, policy: HostPolicy | None = None
) -> Enforcement:
    """Gather the live rule set, the apply record and iptables-legacy rules; judge them."""
    from ppsguard.errors import PpsError

    try:
        ruleset_json = runner.nft_list_json()
        live = parse_ruleset(ruleset_json)
    except PpsError as exc:
        return Enforcement(EnforcementState.UNKNOWN, notes=(f"could not read nftables: {exc}",))
    notes: list[str] = []
    legacy_text: dict[str, str] = {}
    for family, ipv6 in (("ip", False), ("ip6", True)):
        try:
            text = runner.legacy_rules(ipv6=ipv6)
        except PpsError:
            text = None
        if text and legacy_rule_lines(text):
            legacy_text[family] = text
    legacy = tuple(line for text in legacy_text.values() for line in legacy_rule_lines(text))
    recorded = None
    if state.trusted():
        applied = state.read_json(state.applied) or {}
        value = applied.get("fingerprint")
        recorded = value if isinstance(value, str) else None
    else:
        notes.append(f"apply record not trusted: {state.problem()}")
    expected = expected_entry_ids(policy) if policy is not None else None
    return judge(
        live,
        recorded=recorded,
        expected_entries=expected,
        legacy_rules=legacy,
        effects=foreign_effects(ruleset_json, legacy_text, policy),
        notes=tuple(notes),
    )


def expected_entry_ids(policy: HostPolicy) -> frozenset[str]:
    """Entry ids the nftables rendering of `policy` names in its rule comments."""
    from ppsguard.errors import InputError
    from ppsguard.firewall.apply import entry_ids
    from ppsguard.firewall.render.nftables import NftablesRenderer

    try:
        text = NftablesRenderer().render_table(policy)
    except InputError:
        return frozenset()
    return frozenset(i for i in entry_ids(text) if not i.startswith("default"))
