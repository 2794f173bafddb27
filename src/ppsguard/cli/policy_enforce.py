"""Commands of a `pps` group, added by `register` (see the group's module)."""

from __future__ import annotations

import typer


def register(group: typer.Typer) -> None:
    """Add this module's commands to `group`."""
