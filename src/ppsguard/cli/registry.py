"""The `pps registry` group: the PPS registry's schema and validation (registry_docs) and drafting a
registry from what is observed (registry_init)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the `registry` group to `app`."""
    from ppsguard.cli import registry_docs, registry_import, registry_init

    group = typer.Typer(
        help="The PPS registry: the one document of what should be open, for whom and why.",
        no_args_is_help=True,
    )
    registry_docs.register(group)
    registry_init.register(group)
    registry_import.register(group)
    app.add_typer(group, name="registry")
