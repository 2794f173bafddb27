"""The `pps policy` group: verdicts and analysis (explain, lint) and enforcement (compile, apply,
status, confirm, rollback). The two halves live in their own modules."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the `policy` group to `app`."""
    from ppsguard.cli import policy_analysis, policy_enforce, policy_status

    group = typer.Typer(
        help="Evaluate, analyse, compile and apply the firewall policy derived from a registry.",
        no_args_is_help=True,
    )
    policy_analysis.register(group)
    policy_enforce.register(group)
    policy_status.register(group)
    app.add_typer(group, name="policy")
