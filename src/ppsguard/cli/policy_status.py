"""`pps policy status`: what the kernel holds — the enforcing target, drift, other managers.

Thin: `firewall.enforcement.read_enforcement` judges (nftables or iptables, as the last apply
chose), `firewall.others` names the other firewall managers present; this module renders both.
See docs/firewall.md.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ppsguard.cli.output import emit_json, results, warn
from ppsguard.cli.policy_enforce import HostOpt, NetnsOpt, _policy
from ppsguard.report.sanitize import visible

if TYPE_CHECKING:
    from ppsguard.firewall.state import Enforcement


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _left(pending: dict[str, object]) -> str:
    deadline = pending.get("deadline")
    if not isinstance(deadline, int | float):
        return "waiting for confirm"
    return f"waiting for confirm, {max(0.0, deadline - time.time()):.0f} s left before rollback"


def _headline(found: Enforcement) -> str:
    """`inet ppsguard: loaded, unchanged since apply` (nftables) or `target iptables
    (nf_tables backend) chain PPSGUARD-INPUT: loaded (IPv4, IPv6), unchanged since apply`."""
    from ppsguard.firewall.ipstate import BACKEND_NAMES

    unchanged = ", unchanged since apply" if found.unchanged_since_apply else ""
    if found.target == "iptables":
        loaded = [("IPv4" if f == "v4" else "IPv6") for f, c in found.chains if c.in_place]
        backend = BACKEND_NAMES.get(found.backend or "", found.backend)
        return (
            f"target iptables ({backend} backend) chain PPSGUARD-INPUT: "
            + (f"loaded ({', '.join(loaded)})" if loaded else "absent")
            + unchanged
        )
    present = found.live is not None and found.live.owned_present
    return f"inet ppsguard: {'loaded' if present else 'absent'}{unchanged}"


def _problems(found: Enforcement, pending: dict[str, Any] | None, with_policy: bool) -> list[str]:
    problems: list[str] = []
    if pending and not _alive(pending.get("watchdog_pid")):
        problems.append("an apply waits for confirmation but its watchdog is not running")
    live = found.live
    owned = found.target == "nftables" and live is not None and live.owned_present
    if owned and not found.unchanged_since_apply:
        problems.append("inet ppsguard differs from what ppsguard last applied")
    problems.extend(p for p in found.problems if "was changed by hand" not in p)
    if found.target == "iptables" and found.drift:
        problems.append(found.drift)
    if not with_policy and live is not None:
        problems.extend(
            f"{c.family} {c.table} chain {c.name} (hook {c.hook}, priority {c.priority}, "
            f"policy {c.policy}, {c.drop_rules} drop/reject rules) can drop what ppsguard "
            "accepts"
            for c in live.overriding_chains
            if not (found.target == "iptables" and c.table == "filter" and c.name == "INPUT")
        )
    return list(dict.fromkeys(problems))


def register(group: typer.Typer) -> None:
    """Add `status` to the `policy` group."""

    @group.command("status")
    def status_command(
        netns: NetnsOpt = None,
        registry: Annotated[
            Path | None,
            typer.Option(
                "--registry",
                help="Also evaluate every other table (and iptables-legacy) against this "
                "registry's allowed entries and name each rule that drops them, and compare "
                "what other firewall managers do with the registry's ports.",
            ),
        ] = None,
        host: HostOpt = None,
        json_out: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False,
    ) -> None:
        """What the kernel holds: the enforcing target, drift, counters, other managers.

        Says which target the last apply used (nftables: table inet ppsguard; iptables: chain
        PPSGUARD-INPUT on the legacy or nf_tables backend), whether it is loaded and unchanged
        since apply, packets per entry, and which other firewall managers (ufw, firewalld,
        Docker, libvirt, kube-proxy) hold rules and what they do to the registry's ports.
        Exit 1 when ppsguard's rules are missing, changed since apply, or another table can
        drop traffic they accept (with --registry: drops packets an entry allows).
        """
        from ppsguard.errors import RuntimeFailure
        from ppsguard.firewall.enforcement import read_enforcement
        from ppsguard.firewall.nft import Runner
        from ppsguard.firewall.others import coexistence_lines
        from ppsguard.firewall.state import EnforcementState
        from ppsguard.firewall.watchdog import StateDir

        runner = Runner(netns=netns)
        state = StateDir.for_netns(netns)
        policy = _policy(registry, host) if registry is not None else None
        found = read_enforcement(runner, state, policy)
        if found.state is EnforcementState.UNKNOWN or (
            found.live is None and found.target == "nftables"
        ):
            raise RuntimeFailure("; ".join(found.notes) or "could not read the rule set")
        applied = (state.read_json(state.applied_record()) or {}) if state.trusted() else {}
        pending = state.read_json(state.pending)
        problems = _problems(found, pending, policy is not None)
        if not state.trusted():
            problems.append(f"apply record not trusted: {state.problem()}")
        managers, notes = coexistence_lines(runner, policy)
        live = found.live
        tables = [f"{f} {n}" for f, n in live.tables] if live else []
        if json_out:
            emit_json(
                {
                    "netns": netns,
                    "target": found.target,
                    "backend": found.backend,
                    "state": str(found.state),
                    "owned_present": bool(live and live.owned_present)
                    if found.target == "nftables"
                    else any(c.present for _, c in found.chains),
                    "chains": {
                        f: {"present": c.present, "jumps": list(c.jumps), "rules": len(c.rules)}
                        for f, c in found.chains
                    },
                    "unchanged_since_apply": found.unchanged_since_apply,
                    "applied": {k: v for k, v in applied.items() if k != "text"},
                    "pending_confirm": pending,
                    "tables": tables,
                    "base_chains": live.base_chains if live else [],
                    "counters": found.counters,
                    "legacy_rules": list(found.legacy_rules),
                    "foreign_effects": [
                        {
                            "entry": entry,
                            "where": effect.where,
                            "rule": effect.rule,
                            "verdict": effect.verdict,
                            "certainty": effect.certainty,
                        }
                        for entry, effect in found.effects
                    ],
                    "managers": managers,
                    "problems": problems,
                }
            )
        else:
            console = results()
            console.print(
                visible(
                    _headline(found)
                    + (f"; {_left(pending)}" if pending else "")
                    + (f"; registry {found.state}" if policy is not None else "")
                )
            )
            console.print(visible("tables: " + (", ".join(tables) or "none")))
            for item in found.counters:
                console.print(
                    visible(
                        f"  {item.entry_id:40} {item.packets:>10} packets {item.bytes:>12} bytes"
                    )
                )
            if managers:
                console.print("other firewall managers:")
                for line in managers:
                    console.print(visible("  " + line))
            for message in (*notes, *problems):
                warn(message)
        if problems:
            raise typer.Exit(1)
