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

from ppsguard.cli.output import emit_json, human, warn
from ppsguard.errors import UsageError
from ppsguard.model.net import Protocol
from ppsguard.model.registry import Action, HostPolicy

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


def _write_atomic(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text)
        temporary.replace(path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}", token=str(path)) from None


def lockout_problem(policy: HostPolicy) -> str | None:
    """Why this policy would cut the SSH connection we run over (None when it would not)."""
    from ppsguard.firewall.apply import ssh_session
    from ppsguard.policy.evaluate import evaluate

    session = ssh_session()
    if session is None:
        return None
    decision = evaluate(policy, session.client, session.server_port, Protocol.TCP, session.server)
    if decision.action is Action.ALLOW:
        return None
    by = decision.rule.entry_id if decision.rule else f"{policy.host}/default"
    return (
        f"the new rule set would {decision.action} your SSH connection from {session.client} "
        f"to port {session.server_port}/tcp (decided by {by}); add an entry allowing it, or "
        "use --force"
    )


def _live_table_text(runner: Runner) -> str | None:
    from ppsguard.firewall.nft import RulesetRejected

    try:
        return runner.run(["nft", "list", "table", "inet", "ppsguard"])
    except RulesetRejected:  # no such table
        return None


def _live_drift(runner: Runner, state: StateDir) -> str | None:
    """Why the live table is not what ppsguard last applied (None when it is)."""
    from ppsguard.firewall.live import parse_ruleset

    live = parse_ruleset(runner.nft_list_json())
    applied = state.read_json(state.applied)
    recorded = applied.get("fingerprint") if applied else None
    if recorded is None:
        return (
            "inet ppsguard exists but was not applied by ppsguard" if live.owned_present else None
        )
    if not live.owned_present:
        return "inet ppsguard was removed since the last apply"
    if live.owned_fingerprint != recorded:
        return "inet ppsguard was changed by hand since the last apply"
    return None


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

        nftables: one `inet ppsguard` table (load with `pps policy apply`, or `nft -f`).
        iptables: iptables-restore and ip6tables-restore files.
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
        for item in rendered.files:
            path = output if len(rendered.files) == 1 else Path(f"{output}.{item.suffix}")
            _write_atomic(path, item.text)
            human().print(f"wrote {path} (load with {item.loader})")

    @group.command("apply")
    def apply_command(  # noqa: PLR0917 - options mirror the command line
        registry: RegistryArg,
        host: HostOpt = None,
        netns: NetnsOpt = None,
        confirm_within: Annotated[
            float,
            typer.Option(
                "--confirm-within",
                help="Seconds to confirm before the watchdog restores the old rule set (0: none).",
                min=0,
            ),
        ] = 120.0,
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

        Shows the change, checks it with `nft -c`, snapshots the whole rule set, replaces the
        `inet ppsguard` table in one transaction, and starts a detached watchdog that restores the
        snapshot unless `pps policy confirm` runs within --confirm-within seconds.
        """
        from ppsguard.firewall.apply import (
            apply_table,
            describe_change,
            previous_applied_text,
            replacement_batch,
        )
        from ppsguard.firewall.nft import Runner
        from ppsguard.firewall.render.nftables import NftablesRenderer
        from ppsguard.firewall.watchdog import StateDir

        policy = _policy(registry, host)
        from ppsguard.firewall.render import RenderOptions

        table = NftablesRenderer().render_table(policy, RenderOptions(log_group=log_group))
        runner = Runner(netns=netns)
        state = StateDir.for_netns(netns)
        console = human()
        if netns is None and not force:
            problem = lockout_problem(policy)
            if problem:
                raise UsageError(f"refusing to apply: {problem}")
        previous = previous_applied_text(state)
        drift = _live_drift(runner, state)
        if drift is not None:
            warn(drift + "; the diff below is against the live listing")
            previous = _live_table_text(runner)
        change = describe_change(previous, table)
        if change.unchanged:
            console.print("No change against the last applied rule set.")
        else:
            console.print(change.diff or "(no previous apply recorded)", markup=False)
            console.print(
                f"entries added: {', '.join(change.added) or '-'}; "
                f"removed: {', '.join(change.removed) or '-'}"
            )
        if dry_run:
            runner.nft_check(replacement_batch(table))
            console.print("nft -c: the rule set is valid; nothing applied (--dry-run).")
            return
        window = confirm_within if confirm_within > 0 else None
        outcome = apply_table(
            table,
            runner=runner,
            state=state,
            window=window,
            details={"registry": str(registry), "host": policy.host},
        )
        console.print(f"applied {policy.host}'s policy (apply id {outcome.apply_id}).")
        if window is None:
            return
        where = f" --netns {netns}" if netns else ""
        console.print(
            f"Run `pps policy confirm{where}` within {window:.0f} s, or the previous rule set "
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
        human().print(f"confirmed apply {apply_id}.")

    @group.command("rollback")
    def rollback_command(netns: NetnsOpt = None) -> None:
        """Restore the rule set saved before the last apply (an empty one stays empty)."""
        from ppsguard.firewall.apply import rollback
        from ppsguard.firewall.nft import Runner
        from ppsguard.firewall.watchdog import StateDir

        rollback(StateDir.for_netns(netns), Runner(netns=netns))
        human().print("restored the snapshot taken before the last apply.")

    @group.command("status")
    def status_command(
        netns: NetnsOpt = None,
        json_out: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False,
    ) -> None:
        """What the kernel holds: ppsguard's table, tables that can override it, counters.

        Exit 1 when the table is missing, changed since apply, or another table can drop
        traffic it accepts.
        """
        from ppsguard.firewall.live import legacy_rule_lines, parse_ruleset
        from ppsguard.firewall.nft import Runner
        from ppsguard.firewall.watchdog import StateDir

        runner = Runner(netns=netns)
        state = StateDir.for_netns(netns)
        live = parse_ruleset(runner.nft_list_json())
        applied = state.read_json(state.applied) or {}
        legacy_text = runner.legacy_rules()
        legacy = legacy_rule_lines(legacy_text) if legacy_text is not None else ()
        recorded = applied.get("fingerprint")
        unchanged = bool(recorded) and recorded == live.owned_fingerprint
        pending = state.read_json(state.pending)
        problems = []
        if pending and not _alive(pending.get("watchdog_pid")):
            problems.append("an apply waits for confirmation but its watchdog is not running")
        if not live.owned_present:
            problems.append("ppsguard's table inet ppsguard is not loaded")
        elif not unchanged:
            problems.append("inet ppsguard differs from what ppsguard last applied")
        problems.extend(
            f"{c.family} {c.table} chain {c.name} (hook {c.hook}, priority {c.priority}, "
            f"policy {c.policy}, {c.drop_rules} drop/reject rules) can drop what ppsguard accepts"
            for c in live.overriding_chains
        )
        if legacy:
            problems.append(f"{len(legacy)} iptables-legacy rules are active (invisible to nft)")
        if json_out:
            emit_json(
                {
                    "netns": netns,
                    "owned_present": live.owned_present,
                    "unchanged_since_apply": unchanged,
                    "applied": {k: v for k, v in applied.items() if k != "text"},
                    "pending_confirm": pending,
                    "tables": [f"{f} {n}" for f, n in live.tables],
                    "base_chains": live.base_chains,
                    "counters": live.counters,
                    "legacy_rules": list(legacy),
                    "problems": problems,
                }
            )
        else:
            console = human()
            console.print(
                f"inet ppsguard: {'loaded' if live.owned_present else 'absent'}"
                + (", unchanged since apply" if unchanged else "")
                + (f"; {_left(pending)}" if pending else "")
            )
            console.print("tables: " + (", ".join(f"{f} {n}" for f, n in live.tables) or "none"))
            for item in live.counters:
                console.print(
                    f"  {item.entry_id:40} {item.packets:>10} packets {item.bytes:>12} bytes"
                )
            for problem in problems:
                warn(problem)
        if problems:
            raise typer.Exit(1)
