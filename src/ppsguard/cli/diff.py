"""The `pps diff` command: what changed between two runs — recorded run ids, saved --json
documents, or nmap XML files (ours from -oX or nmap's) — with ndiff's exit codes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ppsguard.cli import output
from ppsguard.cli.storeopt import ReadStoreOption, read_url
from ppsguard.digits import decimal
from ppsguard.errors import EXIT_BAD_INPUT, InputError, PpsError
from ppsguard.report.sanitize import visible

HELP = """Compare two runs: ports opened, closed, or changed state, service or version; findings
new and fixed.

A and B are each a run id from the store (see `pps fleet --json` / `pps history --json`, or the
line `--store` prints), a document saved with `pps audit|scan|sockets --json`, or an nmap XML
file (`pps scan -oX`, `nmap -oX`). Like ndiff: exit 0 same, 1 different, 2 error.
"""


class DiffError(PpsError):
    """Any failure of `pps diff` exits 2, as ndiff's do."""

    exit_code = EXIT_BAD_INPUT


def load(token: str, store: str | None) -> Any:
    """The Snapshot of one side: a file (JSON document or nmap XML), else a recorded run id."""
    from ppsguard.store import documents

    path = Path(token)
    if path.exists():
        from ppsguard.infile import read_text  # the one bounded reader: regular files only
        from ppsguard.scan.nmap_import import MAX_NMAP_BYTES

        text = read_text(path, limit=MAX_NMAP_BYTES, what="result file")
        if text.lstrip().startswith("<"):
            from ppsguard.cli.scan import result_json
            from ppsguard.scan.nmap_import import load_nmap_xml

            return documents.snapshot("scan", result_json(load_nmap_xml(text, token)), token)
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(exc.msg, file=path, line=exc.lineno, column=exc.colno) from None
        return documents.snapshot(documents.kind_of(document, token), document, token)
    run = decimal(token)
    if run is not None:
        from ppsguard.store.read import run_document

        kind, document, host = run_document(read_url(store), run)
        return documents.snapshot(kind, document, f"run {token} ({kind} of {host})")
    raise InputError("neither a file nor a recorded run id", token=token)


def _view(view: Any) -> str:
    if view is None:
        return "-"
    words = [view.state, view.service, view.version]
    return " ".join(str(w) for w in words if w)


def render(diff: Any, a: str, b: str) -> None:
    def write(text: str) -> None:  # stored text came from outside: the one sanitizer
        sys.stdout.write(visible(text, keep_newlines=True))

    write(f"- {a}\n+ {b}\n")
    host = None
    for change in diff.ports:
        if change.host != host:
            host = change.host
            write(f"{host or '(this host)'}:\n")
        port = f"{change.port}/{change.protocol}"
        write(
            f"  {change.change:<8} {port:<12} {_view(change.before)}  ->  {_view(change.after)}\n"
        )
    for sign, word, rows in (("+", "new", diff.new_findings), ("-", "fixed", diff.fixed_findings)):
        for f in rows:
            where = f" {f['protocol']}/{f['port']}" if f.get("port") is not None else ""
            write(f"{sign} {word} finding {f['severity']} {f['type']}{where}: {f['title']}\n")
    if diff.same:
        write("no differences\n")
    sys.stdout.flush()


def register(app: typer.Typer) -> None:
    """Add `pps diff` to `app`."""

    @app.command(
        "diff", help=HELP, short_help="What changed between two runs, documents or nmap XML files."
    )
    def diff_command(
        a: Annotated[str, typer.Argument(help="The earlier run: run id, JSON document or XML.")],
        b: Annotated[str, typer.Argument(help="The later run: run id, JSON document or XML.")],
        json_out: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False,
        store: ReadStoreOption = None,
    ) -> None:
        from ppsguard.store.diff import compare

        try:
            left, right = load(a, store), load(b, store)
        except PpsError as exc:
            raise DiffError(str(exc)) from None
        diff = compare(left, right)
        if json_out:
            output.emit_json(diff.as_dict(left.label, right.label))
        else:
            render(diff, left.label, right.label)
        if not diff.same:
            raise typer.Exit(1)
