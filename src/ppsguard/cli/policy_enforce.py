"""`pps policy compile | apply | confirm | rollback | status`: enforce the registry in the kernel.

Thin: load the registry, compile the host's policy, render, and hand over to `firewall.apply`
(check, snapshot, atomic apply, detached watchdog) or `firewall.live` (what the kernel holds).
See docs/firewall.md.
"""

from __future__ import annotations

import os
import select
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ppsguard.cli.output import emit_json, human, note, results, warn
from ppsguard.model.registry import HostPolicy
from ppsguard.report.sanitize import visible

if TYPE_CHECKING:
    from ppsguard.firewall.nft import Runner
    from ppsguard.firewall.watchdog import StateDir

RegistryArg = Annotated[
    Path, typer.Argument(help="The registry YAML file (includes are resolved next to it).")
]
HostOpt = Annotated[
    str | None,
    typer.Option("--host", help="Host name or address in the registry (omit if it has one host)."),
]
LogGroupOpt = Annotated[
    int,
    typer.Option(
        "--log-group",
        help="NFLOG group for logged entries (the monitor listens on it).",
        min=0,
        max=65535,
    ),
]
NetnsOpt = Annotated[
    str | None,
    typer.Option("--netns", help="Act inside this network namespace (ip netns exec NAME nft ...)."),
]


def _policy(registry_path: Path, host: str | None) -> HostPolicy:
    from ppsguard.policy.compile import compile_host_policy
    from ppsguard.registry.load import load_registry

    return compile_host_policy(load_registry(registry_path), host)


def _live_table_text(runner: Runner) -> str | None:
    from ppsguard.firewall.nft import RulesetRejected

    try:
        return runner.run(["nft", "list", "table", "inet", "ppsguard"])
    except RulesetRejected:  # no such table
        return None


def _live_drift(runner: Runner, state: StateDir) -> str | None:
    """Why the live table is not what ppsguard last applied (None when it is)."""
    from ppsguard.firewall.state import read_enforcement

    return read_enforcement(runner, state).drift


def _ask_confirm(seconds: float) -> bool:
    """On a terminal, ask whether to keep the rule set; False on timeout or no answer."""
    if not sys.stdin.isatty():
        return False
    human().print(f"Keep the new rule set? Type 'yes' within {seconds:.0f} s: ", end="")
    ready, _, _ = select.select([sys.stdin], [], [], seconds)
    if not ready:
        human().print()
        return False
    return sys.stdin.readline().strip().lower() in {"y", "yes"}


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
    import time

    deadline = pending.get("deadline")
    if not isinstance(deadline, int | float):
        return "waiting for confirm"
    return f"waiting for confirm, {max(0.0, deadline - time.time()):.0f} s left before rollback"


def register(group: typer.Typer) -> None:
    """Add compile, apply, confirm, rollback and status to the `policy` group."""

    @group.command("compile")
    def compile_command(
        registry: RegistryArg,
        host: HostOpt = None,
        target: Annotated[
            str, typer.Option("--target", "-t", help="Firewall target: nftables or iptables.")
        ] = "nftables",
        output: Annotated[
            Path | None,
            typer.Option(
                "--output",
                "-o",
                help="Write here (iptables: FILE.v4 and FILE.v6) instead of stdout.",
            ),
        ] = None,
        log_group: LogGroupOpt = 5,
    ) -> None:
        """Compile the registry into a firewall rule set for one host.

        nftables: one `inet ppsguard` table in a file that `nft -f FILE` loads on its own,
        replacing any earlier ppsguard table and touching no other (or use `pps policy apply`).
        iptables: iptables-restore and ip6tables-restore files (docs/firewall.md says what
        plain and --noflush loading do).
        """
        from ppsguard.firewall.render import RenderOptions, renderer

        options = RenderOptions(log_group=log_group)
        rendered = renderer(target).render(_policy(registry, host), options)
        if output is None:
            for item in rendered.files:
                if len(rendered.files) > 1:
                    sys.stdout.write(f"# --- {item.loader} ---\n")
                sys.stdout.write(item.text)
            return
        from ppsguard.files import write_all

        files = [
            (output if len(rendered.files) == 1 else Path(f"{output}.{item.suffix}"), item)
            for item in rendered.files
        ]
        write_all([(path, item.text) for path, item in files])  # all of them or none
        for path, item in files:
            note(f"wrote {path} (load with {item.loader})")

    @group.command("apply")
    def apply_command(  # noqa: PLR0917 - options mirror the command line
        registry: RegistryArg,
        host: HostOpt = None,
        netns: NetnsOpt = None,
        confirm_within: Annotated[
            str,
            typer.Option(
                "--confirm-within",
                metavar="SECONDS",
                help="Seconds to confirm before the watchdog restores ppsguard's previous table: "
                "0 for no window, else 10 to 3600.",
            ),
        ] = "120",
        dry_run: Annotated[
            bool,
            typer.Option("--dry-run", help="Show the diff and check with nft -c; change nothing."),
        ] = False,
        force: Annotated[
            bool, typer.Option("--force", help="Apply even if it would cut this SSH session.")
        ] = False,
        log_group: LogGroupOpt = 5,
    ) -> None:
        """Apply the registry's nftables table atomically, with an automatic rollback window.

        Shows the change, checks that it does not cut your SSH session (found through the
        process ancestry, so it works under sudo) and that nft accepts it, saves ppsguard's
        table, arms a detached watchdog, and only then replaces the `inet ppsguard` table in one
        transaction. Connections established before the apply stay open. Unless
        `pps policy confirm` runs within --confirm-within seconds, the watchdog puts ppsguard's
        previous table back; other tables are never touched.
        """
        from ppsguard.firewall.apply import (
            apply_policy,
            check_lockout,
            describe_change,
            previous_applied_text,
            replacement_batch,
            validate_window,
        )
        from ppsguard.firewall.nft import Runner
        from ppsguard.firewall.render import RenderOptions
        from ppsguard.firewall.render.nftables import NftablesRenderer
        from ppsguard.firewall.watchdog import StateDir

        window = validate_window(confirm_within)
        policy = _policy(registry, host)
        table = NftablesRenderer().render_table(policy, RenderOptions(log_group=log_group))
        runner = Runner(netns=netns)
        state = StateDir.for_netns(netns)
        console = results()
        state.check()
        previous = previous_applied_text(state)
        drift = _live_drift(runner, state)
        if drift is not None:
            warn(drift + "; the diff below is against the live listing")
            previous = _live_table_text(runner)
        change = describe_change(previous, table)
        if change.unchanged:
            console.print("No change against the last applied rule set.")
        else:
            console.print(
                visible(change.diff or "(no previous apply recorded)", keep_newlines=True)
            )
            console.print(
                visible(
                    f"entries added: {', '.join(change.added) or '-'}; "
                    f"removed: {', '.join(change.removed) or '-'}"
                )
            )
        if dry_run:
            if not force:
                check_lockout(policy, netns, warn)
            runner.nft_check(replacement_batch(table))
            console.print("nft -c: the rule set is valid; nothing applied (--dry-run).")
            return
        outcome = apply_policy(
            policy,
            runner=runner,
            state=state,
            window=window,
            log_group=log_group,
            force=force,
            details={"registry": str(registry), "host": policy.host},
            warn=warn,
        )
        kept = (
            f"; {outcome.kept_open} established connections kept open" if outcome.kept_open else ""
        )
        console.print(
            visible(f"applied {policy.host}'s policy (apply id {outcome.apply_id}){kept}.")
        )
        if window is None:
            return
        where = f" --netns {netns}" if netns else ""
        console.print(
            f"Run `pps policy confirm{where}` within {window:.0f} s, or ppsguard's previous table "
            f"is restored (watchdog pid {outcome.watchdog_pid})."
        )
        if _ask_confirm(window):
            from ppsguard.firewall.apply import confirm

            confirm(state)
            console.print("confirmed: the new rule set stays.")

    @group.command("confirm")
    def confirm_command(netns: NetnsOpt = None) -> None:
        """Keep the rule set applied by the last `pps policy apply` (stops the watchdog)."""
        from ppsguard.firewall.apply import confirm
        from ppsguard.firewall.watchdog import StateDir

        apply_id = confirm(StateDir.for_netns(netns))
        results().print(visible(f"confirmed apply {apply_id}."))

    @group.command("rollback")
    def rollback_command(netns: NetnsOpt = None) -> None:
        """Put ppsguard's table back as it was before the last apply (absent if it was absent).

        Only the `inet ppsguard` table is restored; other tables stay as they are now."""
        from ppsguard.firewall.apply import rollback
        from ppsguard.firewall.nft import Runner
        from ppsguard.firewall.watchdog import StateDir

        how = rollback(StateDir.for_netns(netns), Runner(netns=netns))
        results().print(
            visible(f"restored ppsguard's table as it was before the last apply ({how}).")
        )

    @group.command("status")
    def status_command(
        netns: NetnsOpt = None,
        registry: Annotated[
            Path | None,
            typer.Option(
                "--registry",
                help="Also evaluate every other table (and iptables-legacy) against this "
                "registry's allowed entries and name each rule that drops them.",
            ),
        ] = None,
        host: HostOpt = None,
        json_out: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False,
    ) -> None:
        """What the kernel holds: ppsguard's table, tables that can override it, counters.

        Exit 1 when the table is missing, changed since apply, or another table can drop
        traffic it accepts (with --registry: drops packets an entry allows).
        """
        from ppsguard.firewall.nft import Runner
        from ppsguard.firewall.state import EnforcementState, read_enforcement
        from ppsguard.firewall.watchdog import StateDir

        runner = Runner(netns=netns)
        state = StateDir.for_netns(netns)
        policy = _policy(registry, host) if registry is not None else None
        found = read_enforcement(runner, state, policy)
        if found.state is EnforcementState.UNKNOWN or found.live is None:
            from ppsguard.errors import RuntimeFailure

            raise RuntimeFailure("; ".join(found.notes) or "could not read nftables")
        live = found.live
        applied = (state.read_json(state.applied) or {}) if state.trusted() else {}
        unchanged = found.unchanged_since_apply
        pending = state.read_json(state.pending)
        problems: list[str] = []
        if pending and not _alive(pending.get("watchdog_pid")):
            problems.append("an apply waits for confirmation but its watchdog is not running")
        if live.owned_present and not unchanged:
            problems.append("inet ppsguard differs from what ppsguard last applied")
        problems.extend(p for p in found.problems if "was changed by hand" not in p)
        if policy is None:
            problems.extend(
                f"{c.family} {c.table} chain {c.name} (hook {c.hook}, priority {c.priority}, "
                f"policy {c.policy}, {c.drop_rules} drop/reject rules) can drop what ppsguard "
                "accepts"
                for c in live.overriding_chains
            )
        if not state.trusted():
            problems.append(f"apply record not trusted: {state.problem()}")
        if json_out:
            emit_json(
                {
                    "netns": netns,
                    "state": str(found.state),
                    "owned_present": live.owned_present,
                    "unchanged_since_apply": unchanged,
                    "applied": {k: v for k, v in applied.items() if k != "text"},
                    "pending_confirm": pending,
                    "tables": [f"{f} {n}" for f, n in live.tables],
                    "base_chains": live.base_chains,
                    "counters": live.counters,
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
                    "problems": problems,
                }
            )
        else:
            console = results()
            console.print(
                visible(
                    f"inet ppsguard: {'loaded' if live.owned_present else 'absent'}"
                    + (", unchanged since apply" if unchanged else "")
                    + (f"; {_left(pending)}" if pending else "")
                    + (f"; registry {found.state}" if policy is not None else "")
                )
            )
            tables = ", ".join(f"{f} {n}" for f, n in live.tables) or "none"
            console.print(visible("tables: " + tables))
            for item in live.counters:
                console.print(
                    visible(
                        f"  {item.entry_id:40} {item.packets:>10} packets {item.bytes:>12} bytes"
                    )
                )
            for problem in problems:
                warn(problem)
        if problems:
            raise typer.Exit(1)
