"""`pps policy compile | apply | confirm | rollback`: enforce the registry in the kernel.

Thin: load the registry, compile the host's policy, render, and hand over to `firewall.apply`
(check, snapshot, atomic apply, detached watchdog); `pps policy status` is in policy_status.
See docs/firewall.md.
"""

from __future__ import annotations

import select
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ppsguard.cli.output import human, note, results, warn
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
    """Why the live nftables table is not what ppsguard last applied (None when it is)."""
    from ppsguard.firewall.state import read_nft_enforcement

    return read_nft_enforcement(runner, state).drift


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


def _offer_confirm(
    window: float | None, netns: str | None, watchdog_pid: int | None, state: StateDir
) -> None:
    if window is None:
        return
    where = f" --netns {netns}" if netns else ""
    console = results()
    console.print(
        f"Run `pps policy confirm{where}` within {window:.0f} s, or ppsguard's previous rules "
        f"are restored (watchdog pid {watchdog_pid})."
    )
    if _ask_confirm(window):
        from ppsguard.firewall.apply import confirm

        confirm(state)
        console.print("confirmed: the new rule set stays.")


def _show_change(previous: str | None, new: str) -> None:
    from ppsguard.firewall.apply import describe_change

    change = describe_change(previous, new)
    console = results()
    if change.unchanged:
        console.print("No change against the last applied rule set.")
        return
    console.print(visible(change.diff or "(no previous apply recorded)", keep_newlines=True))
    console.print(
        visible(
            f"entries added: {', '.join(change.added) or '-'}; "
            f"removed: {', '.join(change.removed) or '-'}"
        )
    )


def _apply_iptables(  # noqa: PLR0917 - the apply command's options
    policy: HostPolicy,
    registry: Path,
    netns: str | None,
    window: float | None,
    dry_run: bool,
    force: bool,
    log_group: int,
    backend: str,
) -> None:
    """`pps policy apply --target iptables` (see `firewall.iptables`)."""
    from ppsguard.firewall.apply import check_lockout
    from ppsguard.firewall.enforcement import read_enforcement
    from ppsguard.firewall.ipchains import body_text
    from ppsguard.firewall.ipstate import BACKEND_NAMES
    from ppsguard.firewall.iptables import applied_text, apply_iptables, check_iptables
    from ppsguard.firewall.nft import Runner
    from ppsguard.firewall.render import RenderOptions
    from ppsguard.firewall.render.iptables import IptablesRenderer
    from ppsguard.firewall.watchdog import StateDir

    runner = Runner(netns=netns)
    state = StateDir.for_netns(netns)
    state.check()
    options = RenderOptions(log_group=log_group)
    renderer = IptablesRenderer()
    new = body_text({f: renderer.chain_body(policy, v, options) for f, v in (("v4", 4), ("v6", 6))})
    previous = applied_text(state)
    found = read_enforcement(runner, state)
    if found.target == "iptables" and found.drift is not None:
        warn(found.drift + "; the diff below is against the live chains")
        previous = body_text({f: list(c.rules) for f, c in found.chains})
    _show_change(previous, new)
    console = results()
    if dry_run:
        if not force:
            check_lockout(policy, netns, warn)
        used = check_iptables(policy, runner, backend, log_group)
        console.print(
            f"iptables-restore --test ({BACKEND_NAMES[used]} backend): the rule set is valid; "
            "nothing applied (--dry-run)."
        )
        return
    outcome = apply_iptables(
        policy,
        runner=runner,
        state=state,
        window=window,
        backend=backend,
        log_group=log_group,
        force=force,
        details={"registry": str(registry), "host": policy.host},
        warn=warn,
    )
    kept = f"; {outcome.kept_open} established connections kept open" if outcome.kept_open else ""
    used = (state.read_json(state.path / "target.json") or {}).get("backend", "?")
    console.print(
        visible(
            f"applied {policy.host}'s policy to iptables ({BACKEND_NAMES.get(str(used), used)} "
            f"backend, chain PPSGUARD-INPUT, IPv4 and IPv6; apply id {outcome.apply_id}){kept}."
        )
    )
    _offer_confirm(window, netns, outcome.watchdog_pid, state)


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
            note(f"wrote {visible(path)} (load with {item.loader})")

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
                help="Seconds to confirm before the watchdog restores ppsguard's previous rules: "
                "0 for no window, else 10 to 3600.",
            ),
        ] = "120",
        dry_run: Annotated[
            bool,
            typer.Option(
                "--dry-run",
                help="Show the diff and check (nft -c / iptables-restore --test); change nothing.",
            ),
        ] = False,
        force: Annotated[
            bool, typer.Option("--force", help="Apply even if it would cut this SSH session.")
        ] = False,
        log_group: LogGroupOpt = 5,
        target: Annotated[
            str,
            typer.Option(
                "--target",
                "-t",
                help="nftables (table inet ppsguard) or iptables (chain PPSGUARD-INPUT).",
            ),
        ] = "nftables",
        backend: Annotated[
            str,
            typer.Option(
                "--backend",
                help="iptables only: auto (what `iptables -V` names), legacy or nft.",
            ),
        ] = "auto",
    ) -> None:
        """Apply the registry's rule set atomically, with an automatic rollback window.

        Shows the change, checks that it does not cut your SSH session (found through the
        process ancestry, so it works under sudo) and that the tool accepts it, saves
        ppsguard's own rules, arms a detached watchdog, and only then loads the new ones:
        nftables replaces the `inet ppsguard` table in one transaction; iptables refills the
        chain PPSGUARD-INPUT and keeps one jump to it first in INPUT, with one
        `iptables-restore --noflush` commit per family (IPv4, IPv6) on the backend
        `iptables -V` names. Connections established before the apply stay open. Unless
        `pps policy confirm` runs within --confirm-within seconds, the watchdog puts
        ppsguard's previous rules back; nothing else is ever touched.
        """
        from ppsguard.firewall.apply import (
            apply_policy,
            check_lockout,
            previous_applied_text,
            replacement_batch,
            validate_window,
        )
        from ppsguard.firewall.nft import Runner
        from ppsguard.firewall.render import RenderOptions
        from ppsguard.firewall.render.nftables import NftablesRenderer
        from ppsguard.firewall.watchdog import StateDir

        window = validate_window(confirm_within)
        if target not in {"nftables", "iptables"}:
            from ppsguard.errors import UsageError

            raise UsageError("unknown target", token=target, hint="nftables or iptables")
        policy = _policy(registry, host)
        if target == "iptables":
            _apply_iptables(policy, registry, netns, window, dry_run, force, log_group, backend)
            return
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
        _show_change(previous, table)
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
        _offer_confirm(window, netns, outcome.watchdog_pid, state)

    @group.command("confirm")
    def confirm_command(netns: NetnsOpt = None) -> None:
        """Keep the rule set applied by the last `pps policy apply` (stops the watchdog)."""
        from ppsguard.firewall.apply import confirm
        from ppsguard.firewall.watchdog import StateDir

        apply_id = confirm(StateDir.for_netns(netns))
        results().print(visible(f"confirmed apply {apply_id}."))

    @group.command("rollback")
    def rollback_command(netns: NetnsOpt = None) -> None:
        """Put ppsguard's rules back as they were before the last apply (absent if absent).

        Only what the last apply's target owns is restored — the `inet ppsguard` table, or
        the iptables chain PPSGUARD-INPUT and its jump; everything else stays as it is now."""
        from ppsguard.firewall.apply import rollback
        from ppsguard.firewall.nft import Runner
        from ppsguard.firewall.watchdog import StateDir

        how = rollback(StateDir.for_netns(netns), Runner(netns=netns))
        results().print(
            visible(f"restored ppsguard's rules as they were before the last apply ({how}).")
        )
