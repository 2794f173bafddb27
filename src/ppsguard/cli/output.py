"""Where output goes: the result of every command on stdout, diagnostics on stderr.

The result — a table, a card, a JSON document, CSV, a report — goes to stdout in every format,
as ss and nmap do, so `pps sockets | grep tcp` and `pps audit > report.txt` work. stderr carries
only warnings, errors, progress and live views.

On a terminal, small tables keep Rich's look (colour unless `--no-color` or NO_COLOR); piped,
or past FAST_ROWS rows, tables are plain aligned text with one header line and no box drawing
(`streams.table_lines`: a Rich table costs ~0.4 ms per row, the plain path ~3 µs). JSON is
pretty-printed only on a terminal or with `--pretty`.

Every console here is built with `markup=False`: text from outside the program is never read
as Rich markup, and every cell and line goes through `report.sanitize.visible`. Commands must
not build their own Console nor write raw outside text to a stream.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ppsguard.report.sanitize import visible

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

_state: dict[str, bool] = {"no_color": False, "pretty": False}
PIPE_WIDTH = 160  # columns for Rich output that is not on a terminal (logs see whole lines)
FAST_ROWS = 1000  # a table with more rows takes the plain fast path, even on a terminal


def set_no_color(value: bool) -> None:
    _state["no_color"] = value


def set_pretty(value: bool) -> None:
    _state["pretty"] = value


def color_disabled() -> bool:
    return _state["no_color"] or "NO_COLOR" in os.environ


def stdout_is_terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def pretty_json() -> bool:
    """Pretty-printed JSON: on a terminal, or when `--pretty` was given."""
    return _state["pretty"] or stdout_is_terminal()


def _console(*, stderr: bool) -> Console:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    try:
        terminal = stream.isatty()
    except (AttributeError, ValueError):
        terminal = False
    return Console(
        file=stream,
        markup=False,
        emoji=False,
        highlight=False,
        no_color=color_disabled(),
        soft_wrap=not terminal,
        width=None if terminal else PIPE_WIDTH,
    )


def results() -> Console:
    """The console for a command's human-readable result: stdout (colour only on a terminal)."""
    return _console(stderr=False)


def human() -> Console:
    """The console for diagnostics people read: stderr. Not for results (use `results`)."""
    return _console(stderr=True)


def styled(style: str, text: object) -> Text:
    """Outside text as a Rich `Text` in `style`: made visible, never read as markup."""
    from rich.text import Text

    return Text(visible(text), style=style)


def emit_line(text: object = "") -> None:
    """One plain result line on stdout (made visible)."""
    sys.stdout.write(visible(text, keep_newlines=True) + "\n")


def emit_json(value: Any, *, plain: bool = False) -> None:
    """A JSON document on stdout; `Streamed` members are written item by item."""
    from ppsguard.report.streams import write_json

    sys.stdout.flush()
    write_json(sys.stdout.buffer, value, pretty=pretty_json(), plain=plain)


def emit_jsonl(rows: Iterable[Any], *, plain: bool = False) -> None:
    from ppsguard.report.streams import write_jsonl

    sys.stdout.flush()
    write_jsonl(sys.stdout.buffer, rows, plain=plain)


def emit_csv(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> None:
    from ppsguard.report.streams import write_csv

    write_csv(sys.stdout, columns, rows)


def emit_table(
    header: Sequence[str],
    rows: Callable[[], Iterable[Sequence[object]]],
    *,
    count: int,
    title: str | None = None,
    styles: Mapping[int, Callable[[Sequence[object]], str]] | None = None,
    widths: Sequence[int] | None = None,
) -> None:
    """A table of `count` rows on stdout: Rich on a terminal when small, plain aligned otherwise.

    `rows` is called once per pass (the plain path measures, then writes). `styles` maps a
    column to a function giving the Rich style of that cell from its row (terminal only);
    `widths`, when the caller knows them, spares the plain path its measuring pass.
    """
    from ppsguard.report.streams import table_lines, write_lines

    if stdout_is_terminal() and count <= FAST_ROWS:
        from rich.table import Table

        table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
        for column in header:
            table.add_column(column, overflow="fold")
        for row in rows():
            table.add_row(
                *(
                    styled(styles[i](row) if styles and i in styles else "", cell)
                    for i, cell in enumerate(row)
                )
            )
        results().print(table)
        return
    if title is not None and stdout_is_terminal():
        emit_line(title)
    sys.stdout.flush()
    write_lines(sys.stdout, table_lines(header, rows, widths=widths))


def warn(message: object) -> None:
    """A warning on stderr: `warning: ...`, the message made visible."""
    from rich.text import Text

    line = Text("warning: ", style="yellow")
    line.append(visible(message))
    human().print(line)


def note(message: object) -> None:
    """A diagnostic note on stderr (`wrote FILE`, a seed to repeat a run): made visible."""
    human().print(visible(message, keep_newlines=True))
