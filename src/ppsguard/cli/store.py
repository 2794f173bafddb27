"""The `pps store` commands: `stats` (how big it is), `prune --keep 90d` (retention) and
`import FILE` (a document saved with --json, recorded later). Thin: the store room does the work."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from ppsguard.cli.storeopt import ReadStoreOption, emit, now, read_url, when
from ppsguard.errors import InputError, UsageError

HELP = """Look after the store that --store writes: its size, retention, and late imports.

See docs/store.md for the default location, PostgreSQL for a fleet, and a systemd timer recipe.
"""


def register(app: typer.Typer) -> None:
    """Add `pps store stats|prune|import` to `app`."""
    group = typer.Typer(help=HELP, no_args_is_help=True)
    app.add_typer(
        group, name="store", short_help="The store of runs: stats, prune --keep 90d, import FILE."
    )

    @group.command("stats", help="Rows per table, runs per kind, oldest and newest run, bytes.")
    def stats_command(
        json_out: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False,
        store: ReadStoreOption = None,
    ) -> None:
        from ppsguard.store.read import stats
        from ppsguard.store.urls import display

        url = read_url(store)
        doc = stats(url)
        if json_out:
            emit({"store": display(url), **doc})
            return
        rows = doc["rows"]
        kinds = ", ".join(f"{k} {v}" for k, v in doc["runs_by_kind"].items()) or "none"
        sys.stdout.write(
            f"store      {display(url)} ({doc['dialect']}, schema {doc['revision']})\n"
            f"hosts      {rows['hosts']}\n"
            f"runs       {rows['runs']} ({kinds})\n"
            f"findings   {rows['findings']} rows\n"
            f"doors      {rows['doors']} rows\n"
            f"oldest     {when(doc['oldest_run'])}\n"
            f"newest     {when(doc['newest_run'])}\n"
            f"documents  {doc['document_bytes']:,} bytes\n"
            f"size       {doc['size_bytes']:,} bytes\n"
        )

    @group.command(
        "prune",
        help="Delete runs observed longer ago than --keep (their findings and doors too, and "
        "hosts left with no run), in one transaction.",
    )
    def prune_command(
        keep: Annotated[str, typer.Option("--keep", help="How much to keep: 90d, 12w, 48h.")],
        store: ReadStoreOption = None,
    ) -> None:
        from ppsguard.store.history import parse_duration
        from ppsguard.store.read import prune

        span = parse_duration(keep)
        if span is None:
            raise UsageError("not a duration (90d, 12w, 48h)", token=keep)
        gone = prune(read_url(store), now() - span)
        sys.stdout.write(
            f"pruned {gone['runs']} runs ({gone['findings']} findings, {gone['doors']} doors), "
            f"{gone['hosts']} hosts with no run left\n"
        )

    @group.command(
        "import",
        help="Record a document saved earlier with `pps audit|scan|sockets --json > FILE` "
        "(e.g. while the store was down). The host is this machine (in --netns) unless the "
        "document names one or --hostname/--machine-id say which; importing the same document "
        "twice records it once.",
        short_help="Record a document saved earlier with --json (e.g. while the store was down).",
    )
    def import_command(  # noqa: PLR0917 - Typer maps parameters to options
        file: Annotated[Path, typer.Argument(help="The saved JSON document.")],
        netns: Annotated[
            str | None, typer.Option("--netns", help="The network namespace it was taken in.")
        ] = None,
        registry: Annotated[
            Path | None, typer.Option("--registry", help="The registry file the run used.")
        ] = None,
        hostname: Annotated[
            str | None, typer.Option("--hostname", help="The host the document came from.")
        ] = None,
        machine_id: Annotated[
            str | None, typer.Option("--machine-id", help="That host's /etc/machine-id.")
        ] = None,
        store: ReadStoreOption = None,
    ) -> None:
        from ppsguard.infile import read_text  # the one bounded reader: regular files only
        from ppsguard.store import documents, record_run
        from ppsguard.store.identity import HostIdentity
        from ppsguard.store.urls import display

        text = read_text(file, limit=256 * 1024 * 1024, what="JSON document")
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(exc.msg, file=file, line=exc.lineno, column=exc.colno) from None
        kind = documents.kind_of(document, str(file))
        identity = HostIdentity.from_dict(
            document.get("identity") if isinstance(document, dict) else None
        )
        if hostname is not None or machine_id is not None:
            from ppsguard.store.identity import this_host

            here = identity or this_host(netns)
            identity = HostIdentity(
                (machine_id or here.machine_id)[:64], (hostname or here.hostname)[:255], here.netns
            )
        from ppsguard.store.urls import default_url, resolve_url

        url = resolve_url(store) or default_url()
        done = record_run(url, kind, document, netns=netns, registry=registry, identity=identity)
        word = "imported" if done.new else "already recorded:"
        sys.stdout.write(f"{word} {kind} run {done.run_id} in {display(url)}\n")
