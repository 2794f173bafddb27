"""Is the registry enforced by the iptables target? `judge_chains` (pure) and its I/O edge.

The same `Enforcement` as `state.py` gives for the nftables target, judged from our chain
`PPSGUARD-INPUT` per family (`ipchains.OwnedChain`) and the fingerprint recorded at apply:
- `changed`: a family lacks the chain, INPUT does not jump to it exactly once and first, the
  chain differs from what was applied, or (no record) rules of entries are missing;
- `overridden`: another table or chain drops packets an entry allows (`fate.interference` over
  the nft rule set and the iptables-legacy rules; our jump counts as the accept it is for
  the packets of allowed entries);
- `none` / `foreign`: our chains are absent and were never recorded.
`read_iptables_enforcement` reads the saves of the recorded backend, the nft rule set and the
legacy rules. Nothing here changes the rule set.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ppsguard.firewall.ipchains import JUMP, OwnedChain, fingerprint
from ppsguard.firewall.live import EntryCounter, LiveRuleset, legacy_rule_lines, parse_ruleset
from ppsguard.firewall.render.iptables import CHAIN
from ppsguard.firewall.state import Enforcement, EnforcementState, foreign_effects

if TYPE_CHECKING:
    from ppsguard.firewall.fate import Effect
    from ppsguard.firewall.nft import Runner
    from ppsguard.firewall.statedir import StateDir
    from ppsguard.model.registry import HostPolicy

_NAMES = {"v4": "IPv4", "v6": "IPv6"}
BACKEND_NAMES = {"legacy": "legacy", "nft": "nf_tables"}


def chain_problems(chains: dict[str, OwnedChain]) -> list[str]:
    """Why our chains are not in place, per family."""
    found: list[str] = []
    for family, chain in sorted(chains.items()):
        name = _NAMES.get(family, family)
        if not chain.present:
            found.append(f"{CHAIN} ({name}) is not loaded")
        if chain.present and chain.jumps != (1,):
            where = ", ".join(str(p) for p in chain.jumps) or "nowhere"
            found.append(f"INPUT ({name}) must jump to {CHAIN} once, first; it jumps at: {where}")
    return found


def entry_counters(chains: dict[str, OwnedChain]) -> tuple[EntryCounter, ...]:
    """Packets and bytes per entry id over both families (the rules that decide, not log)."""
    totals: dict[str, list[int]] = {}
    for chain in chains.values():
        for entry, packets, size in chain.counters:
            slot = totals.setdefault(entry, [0, 0, 0])
            slot[0] += packets
            slot[1] += size
            slot[2] += 1
    return tuple(EntryCounter(k, v[0], v[1], v[2]) for k, v in sorted(totals.items()))


def judge_chains(
    chains: dict[str, OwnedChain],
    *,
    backend: str,
    recorded: str | None,
    live: LiveRuleset | None = None,
    expected_entries: frozenset[str] | None = None,
    legacy_rules: tuple[str, ...] = (),
    effects: tuple[tuple[str, Effect], ...] = (),
    notes: tuple[str, ...] = (),
) -> Enforcement:
    """The verdict for the iptables target (see the module docstring). Pure."""
    counters = entry_counters(chains)
    present = any(c.present for c in chains.values())
    current = fingerprint(chains)
    drift: str | None = None
    if recorded is not None and not present:
        drift = f"{CHAIN} was removed since the last apply"
    elif recorded is not None and current != recorded:
        drift = f"{CHAIN} was changed by hand since the last apply"
    elif recorded is None and present:
        drift = f"{CHAIN} exists but was not applied by ppsguard"
    missing: frozenset[str] = frozenset()
    if expected_entries is not None and present:
        missing = expected_entries - {c.entry_id for c in counters}
    problems = tuple(chain_problems(chains)) if present or recorded else ()
    state = EnforcementState.ENFORCED
    if not present and recorded is None:
        state = EnforcementState.FOREIGN if (live and not live.empty) else EnforcementState.NONE
    elif drift or missing or problems:
        state = EnforcementState.CHANGED
    elif effects:
        state = EnforcementState.OVERRIDDEN
    return Enforcement(
        state,
        live=live,
        recorded_fingerprint=recorded,
        unchanged_since_apply=recorded is not None and current == recorded,
        missing_entries=missing,
        legacy_rules=legacy_rules,
        effects=effects,
        notes=notes,
        drift=drift,
        target="iptables",
        backend=backend,
        chains=tuple(sorted(chains.items())),
        chain_counters=counters,
        chain_problems=problems,
    )


def our_chain_as_accept(ruleset_json: str) -> str:
    """The nft rule set with PPSGUARD-INPUT left out and each jump to it made an `accept`
    (iptables-nft shows them as `ip filter` / `ip6 filter` objects): for the packets of an
    allowed entry, which are all `fate.interference` walks, that is what our chain does — and
    what comes after the jump in INPUT never sees them."""
    document = json.loads(ruleset_json)
    kept: list[Any] = []
    for item in document.get("nftables", []):
        body = item.get("rule") or item.get("chain") if isinstance(item, dict) else None
        if isinstance(body, dict) and body.get("table") == "filter":
            if body.get("chain", body.get("name")) == CHAIN:
                continue
            expr = body.get("expr")
            if isinstance(expr, list) and {"jump": {"target": CHAIN}} in expr:
                body["expr"] = [
                    {"accept": None} if e == {"jump": {"target": CHAIN}} else e for e in expr
                ]
        kept.append(item)
    return json.dumps({"nftables": kept})


def _ours(line: str) -> bool:
    return line.startswith((f"-A {CHAIN} ", f":{CHAIN} "))


def _legacy_as_accept(text: str) -> str:
    """The same for iptables-legacy-save text (our chain's lines out, the jump an accept)."""
    return "\n".join(
        "-A INPUT -j ACCEPT" if line.strip() == f"-A INPUT {JUMP}" else line
        for line in text.splitlines()
        if not _ours(line.strip())
    )


def read_iptables_enforcement(
    runner: Runner, state: StateDir, policy: HostPolicy | None, backend: str
) -> Enforcement:
    """Gather our chains (recorded backend), the nft rule set and the legacy rules; judge."""
    from ppsguard.errors import PpsError
    from ppsguard.firewall.ipsave import detect_backend, read_owned
    from ppsguard.firewall.state import expected_entry_ids

    notes: list[str] = []
    try:
        chains = read_owned(runner, backend)
    except PpsError as exc:
        return Enforcement(
            EnforcementState.UNKNOWN,
            notes=(f"could not read iptables ({backend}): {exc}",),
            target="iptables",
            backend=backend,
        )
    live: LiveRuleset | None = None
    ruleset_json = '{"nftables": []}'
    try:
        ruleset_json = our_chain_as_accept(runner.nft_list_json())
        live = parse_ruleset(ruleset_json)
    except PpsError as exc:
        notes.append(f"could not read nftables: {exc}")
    legacy_text: dict[str, str] = {}
    shown: list[str] = []
    for family, ipv6 in (("ip", False), ("ip6", True)):
        try:
            text = runner.legacy_rules(ipv6=ipv6)
        except PpsError:
            text = None
        if text and backend == "legacy":  # our own backend: judged below, not "invisible"
            text = _legacy_as_accept(text)
        elif text:
            shown.extend(legacy_rule_lines(text))
        if text and legacy_rule_lines(text):
            legacy_text[family] = text
    legacy = tuple(shown)
    try:
        machine = detect_backend(runner)
    except PpsError:
        machine = backend
    if machine != backend:
        notes.append(
            f"ppsguard's chains are on the {BACKEND_NAMES[backend]} backend, but this machine's "
            f"`iptables` command uses {BACKEND_NAMES.get(machine, machine)}: `iptables -L` "
            "does not show them"
        )
    recorded = None
    if state.trusted():
        value = (state.read_json(state.iptables_applied) or {}).get("fingerprint")
        recorded = value if isinstance(value, str) else None
    else:
        notes.append(f"apply record not trusted: {state.problem()}")
    return judge_chains(
        chains,
        backend=backend,
        recorded=recorded,
        live=live,
        expected_entries=expected_entry_ids(policy) if policy is not None else None,
        legacy_rules=legacy,
        effects=foreign_effects(ruleset_json, legacy_text, policy),
        notes=tuple(notes),
    )
