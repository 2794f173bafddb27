"""Where output goes: machine output on stdout; tables, colour and progress on stderr.

Every command renders through these helpers so that `pps ... --json | jq` always works and
`--no-color` / NO_COLOR are honoured in one place.
"""

from __future__ import annotations

import csv
import io
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich.console import Console

from ppsguard.report.jsonout import dumps_json, dumps_jsonl, to_jsonable

_state: dict[str, bool] = {"no_color": False}
PIPE_WIDTH = 160  # columns when stderr is not a terminal: logs and tests see whole lines


def set_no_color(value: bool) -> None:
    _state["no_color"] = value


def color_disabled() -> bool:
    return _state["no_color"] or "NO_COLOR" in os.environ


def human() -> Console:
    """The console for people: stderr, colour unless disabled, never parsed by machines."""
    width = None if sys.stderr.isatty() else PIPE_WIDTH
    return Console(
        stderr=True, no_color=color_disabled(), highlight=False, soft_wrap=False, width=width
    )


def emit_json(value: Any) -> None:
    sys.stdout.write(dumps_json(value))
    sys.stdout.write("\n")
    sys.stdout.flush()


def emit_jsonl(rows: Iterable[Any]) -> None:
    for line in dumps_jsonl(rows):
        sys.stdout.write(line)
        sys.stdout.write("\n")
    sys.stdout.flush()


def emit_csv(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_cell(to_jsonable(v)) for k, v in row.items()})
    sys.stdout.write(buffer.getvalue())
    sys.stdout.flush()


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return dumps_json(value, indent=None)
    return str(value)


def warn(message: str) -> None:
    human().print(f"[yellow]warning:[/yellow] {message}", markup=True)
