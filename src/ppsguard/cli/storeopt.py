"""`--store [URL]` for the commands that record their run (sockets, scan, audit, watch, flows
audit) and for those that read the store (history, diff, fleet, store *): the two options, the
argv rewrite that lets it stand alone, and the one recording call.

The command prints its result first and records afterwards, so a store that is down costs one
error line and exit 3, never the result. Must not know the store's tables.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

STORE_HELP = (
    "Record this run in a store: --store alone = the default SQLite file (/var/lib/ppsguard/"
    "ppsguard.db as root, else $XDG_DATA_HOME/ppsguard/), or sqlite:///PATH, PATH.db, "
    "postgresql://user@host/db. PPSGUARD_STORE sets it too. See docs/store.md."
)
StoreOption = Annotated[str | None, typer.Option("--store", metavar="[URL]", help=STORE_HELP)]
READ_STORE_HELP = (
    "The store to use: omitted or --store alone = the default SQLite file "
    "(/var/lib/ppsguard/ppsguard.db as root, else $XDG_DATA_HOME/ppsguard/), or sqlite:///PATH, "
    "PATH.db, postgresql://user@host/db. PPSGUARD_STORE sets it too. See docs/store.md."
)
ReadStoreOption = Annotated[
    str | None, typer.Option("--store", metavar="[URL]", help=READ_STORE_HELP)
]
_STORE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
DEFAULT = "default"


def looks_like_store(token: str) -> bool:
    """Is the token after a bare `--store` its URL (else `--store` stands alone)?"""
    return token == DEFAULT or "://" in token or token.endswith(_STORE_SUFFIXES)


def expand_store_flag(args: list[str]) -> list[str]:
    """`--store` followed by nothing, an option or a non-store argument means the default store."""
    out: list[str] = []
    for index, arg in enumerate(args):
        out.append(arg)
        if arg == "--store":
            following = args[index + 1] if index + 1 < len(args) else None
            if following is None or following == "--" or not looks_like_store(following):
                out.append(DEFAULT)
    return out


STORE_ENV = "PPSGUARD_STORE"  # store.urls.STORE_ENV, named here so that asking costs no import


def store_url(given: str | None) -> str | None:
    if given is None and not os.environ.get(STORE_ENV):
        return None  # no store asked for: SQLAlchemy is not imported (0.38 s of a command)
    from ppsguard.store.urls import resolve_url

    return resolve_url(given)


def read_url(given: str | None) -> str:
    """The store a reading command reads (`--store`, PPSGUARD_STORE, else the default); a SQLite
    file that does not exist is an error, not a new empty store."""
    from ppsguard.errors import RuntimeFailure
    from ppsguard.store.urls import default_url, resolve_url

    url = resolve_url(given) or default_url()
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///") :])
        if not path.exists():
            raise RuntimeFailure(f"no store at {path}: record runs with --store first")
    return url


def record(
    given: str | None,
    kind: str,
    document: Any,
    *,
    netns: str | None = None,
    registry: Path | None = None,
) -> None:
    """Record `document` when a store was asked for (option or PPSGUARD_STORE); one line on
    stderr says where. A failing store raises RuntimeFailure (exit 3) after the output is out."""
    url = store_url(given)
    if url is None:
        return
    from ppsguard.store import record_run
    from ppsguard.store.urls import display

    done = record_run(url, kind, document, netns=netns, registry=registry)
    what = "recorded" if done.new else "already recorded"
    sys.stderr.write(f"pps: {what} {kind} run {done.run_id} in {display(url)}\n")


def emit(value: Any) -> None:
    """A store document as indented JSON on stdout; naive times are UTC (`+00:00`). orjson:
    `pps fleet --json` of 1,000 hosts spent ~0.3 s in the generic encoder, ~10 ms here."""
    import orjson

    sys.stdout.write(
        orjson.dumps(
            value, option=orjson.OPT_INDENT_2 | orjson.OPT_NAIVE_UTC | orjson.OPT_NON_STR_KEYS
        ).decode()
    )
    sys.stdout.write("\n")
    sys.stdout.flush()


def when(value: dt.datetime | None) -> str:
    """A stored time for a table: `2026-12-01 10:00:00Z`."""
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%SZ")


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def parse_since(text: str | None) -> dt.datetime | None:
    """`--since`: an ISO date/time (UTC unless it says otherwise) or a duration back (7d)."""
    if text is None:
        return None
    from ppsguard.errors import UsageError
    from ppsguard.store.documents import parse_time
    from ppsguard.store.history import parse_duration

    back = parse_duration(text)
    if back is not None:
        return now() - back
    parsed = parse_time(text)
    if parsed is None:
        raise UsageError(
            "not a date, time or duration (2026-12-01, 2026-12-01T10:00, 7d)", token=text
        )
    return parsed
