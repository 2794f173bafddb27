"""`pps harden plan | apply | confirm | rollback`: turn off what the registry does not document.

Thin: `harden.survey` makes the plan (audit + /proc + configs + dpkg), `report.harden_document`
writes and reads it, `harden.apply` performs its unit changes behind the rollback watchdog.
See docs/harden.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ppsguard.cli.output import emit_json, emit_line, emit_table, note
from ppsguard.harden.plan import Plan
from ppsguard.report.sanitize import visible

PLAN_LIMIT = 64 << 20

PLAN_HELP = """Plan the change that removes each undocumented or risky listener.

The audit's findings (unregistered-listener, risky-service, exposure-widened) on this machine's
listeners, each with: the systemd unit to stop and disable (found from the holder's cgroup:
/system.slice/foo.service -> foo.service; a socket systemd holds -> foo.socket), the daemon's
bind setting to narrow (file:line, key, current value, the loopback line), and the Debian
package of the executable. A unit the registry documents (`unit:`), or one that also serves a
documented door, is never stopped: its change is the bind to narrow. The table goes to stdout
(--json for the ppsguard.harden-plan document); -o PLAN writes the document for `pps harden
apply`. Nothing is changed. Exit codes: 0 nothing to change, 1 the plan lists changes, 2 bad
input, 3 runtime failure. See docs/harden.md.
"""

APPLY_HELP = """Stop and disable the plan's units, restored unless confirmed in time.

Only where systemd is the init system (/run/systemd/system exists and PID 1 is systemd);
elsewhere one line says so, exit 3, nothing changed. Before the first unit changes, each unit's
state is saved and a detached watchdog is armed: unless `pps harden confirm` runs within
--confirm-within seconds, it unmasks, re-enables and restarts every unit as it was — even if
this command is killed or the SSH session drops. Units the registry documents are refused.
Exit codes: 0 applied (waiting for confirm), 2 bad plan or usage, 3 runtime failure.
"""


def _load(path: Path) -> Plan:
    from ppsguard.errors import InputError
    from ppsguard.infile import read_text
    from ppsguard.report.harden_document import load_plan

    text = read_text(path, limit=PLAN_LIMIT, what="harden plan")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"not JSON: {exc.msg}", file=str(path), line=exc.lineno, column=exc.colno
        ) from None
    try:
        plan = load_plan(value)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    refused = sorted({u.name for u in plan.units} & set(plan.protected))
    if refused:
        raise InputError(
            f"{path}: the plan stops a unit the registry documents (protected_units)",
            token=refused[0],
        )
    return plan


def _bind_cell(plan_bind: object) -> str:
    from ppsguard.harden.plan import BindChange

    if not isinstance(plan_bind, BindChange):
        return "-"
    if plan_bind.line is None:
        where = f"{plan_bind.file or 'no config file'}: {plan_bind.key} not set"
    else:
        where = f"{plan_bind.file}:{plan_bind.line} {plan_bind.key} {plan_bind.current}"
    return f"{where} -> {plan_bind.narrow}"


def print_plan(plan: Plan) -> None:
    """The readable plan: one row per door, the units apply would stop, the why of each row."""
    header = ("door", "finding", "process", "unit", "action", "bind to narrow", "package")
    rows = [
        (
            c.door,
            ", ".join(dict.fromkeys(f.type for f in c.findings)),
            f"{c.process or '-'}[{','.join(str(p) for p in c.pids[:3])}]",
            " + ".join(u for u in (c.socket_unit, c.service_unit) if u) or c.kind,
            c.action,
            _bind_cell(c.bind),
            c.package or "-",
        )
        for c in plan.changes
    ]
    clean = [tuple(visible(cell) for cell in row) for row in rows]
    title = f"hardening plan for {visible(plan.host)}: {len(plan.changes)} doors"
    emit_table(header, lambda: clean, count=len(clean), title=title)
    for change in plan.changes:
        emit_line(f"  {change.door} {change.action}: {change.why}")
    if plan.units:
        emit_line("units `pps harden apply` stops and disables, in order:")
        for unit in plan.units:
            emit_line(f"  {unit.name}  ({', '.join(unit.doors)})")
    else:
        emit_line("no unit to stop")
    for gap in plan.gaps:
        note(f"could not see: {gap}")


def register(app: typer.Typer) -> None:
    """Add the `harden` group to `app`."""
    group = typer.Typer(
        help="Plan and apply the changes that turn off undocumented or risky listeners.",
        no_args_is_help=True,
    )

    @group.command("plan", help=PLAN_HELP)
    def plan_command(  # noqa: PLR0917 - Typer maps parameters to options
        registry: Annotated[Path, typer.Argument(help="The registry YAML file.")],
        host: Annotated[
            str | None, typer.Option("--host", help="Host name or address in the registry.")
        ] = None,
        netns: Annotated[
            str | None, typer.Option("--netns", help="Plan for this network namespace.")
        ] = None,
        as_json: Annotated[
            bool, typer.Option("--json", help="The ppsguard.harden-plan document on stdout.")
        ] = False,
        output: Annotated[
            Path | None, typer.Option("--output", "-o", help="Also write the plan (JSON) here.")
        ] = None,
        config_root: Annotated[
            Path,
            typer.Option("--config-root", help="Read daemons' config files under this folder."),
        ] = Path("/"),
    ) -> None:
        from ppsguard.files import write_atomic
        from ppsguard.harden.survey import survey
        from ppsguard.report.harden_document import plan_document

        plan = survey(registry, host=host, netns=netns, config_root=config_root)
        document = plan_document(plan)
        if output is not None:
            write_atomic(output, json.dumps(document, indent=1) + "\n")
            note(f"plan written to {visible(output)}")
        if as_json:
            emit_json(document)
        else:
            print_plan(plan)
        raise typer.Exit(1 if plan.changes else 0)

    @group.command("apply", help=APPLY_HELP)
    def apply_command(
        plan_file: Annotated[Path, typer.Argument(help="A plan written by `pps harden plan -o`.")],
        confirm_within: Annotated[
            str,
            typer.Option(
                "--confirm-within",
                help="Seconds to confirm in (10-3600) before the units are restored; 0: none.",
            ),
        ] = "120",
        mask: Annotated[
            bool, typer.Option("--mask", help="Also mask the units (restored too).")
        ] = False,
    ) -> None:
        from ppsguard.errors import RuntimeFailure
        from ppsguard.firewall.apply import validate_window
        from ppsguard.harden.apply import apply_units, harden_state
        from ppsguard.harden.managers import SystemdManager, systemd_problem

        plan = _load(plan_file)
        validate_window(confirm_within)
        problem = systemd_problem()
        if problem is not None:
            raise RuntimeFailure(
                f"pps harden apply needs systemd as the init system, and this machine has none "
                f"({problem}): nothing was changed"
            )
        outcome = apply_units(
            [u.name for u in plan.units],
            manager=SystemdManager(),
            state=harden_state(),
            window=confirm_within,
            protected=plan.protected,
            mask=mask,
        )
        for line in outcome.changed:
            emit_line(line)
        for warning in outcome.warnings:
            note(f"warning: {warning}")
        if outcome.deadline is not None:
            emit_line(
                f"applied {outcome.apply_id}: run `pps harden confirm` within "
                f"{float(confirm_within):.0f} s, or every unit is restored"
            )
        else:
            emit_line(
                f"applied {outcome.apply_id} (no confirm window: `pps harden rollback` undoes it)"
            )

    @group.command("confirm", help="Keep the changes of the last `pps harden apply`.")
    def confirm_command() -> None:
        from ppsguard.harden.apply import confirm, harden_state

        emit_line(f"confirmed {confirm(harden_state())}")

    @group.command("rollback", help="Restore the units of the last `pps harden apply` now.")
    def rollback_command() -> None:
        from ppsguard.errors import RuntimeFailure
        from ppsguard.harden.apply import harden_state, rollback

        apply_id, failures = rollback(harden_state())
        if failures:
            raise RuntimeFailure(f"rollback of {apply_id} incomplete: " + "; ".join(failures))
        emit_line(f"rolled back {apply_id}")

    app.add_typer(group, name="harden")
