"""The store: every recorded run of the guard (inventories, scans, audits; later watch alerts and
flow audits) in one SQL database — SQLite by default, PostgreSQL for a fleet.

    from ppsguard.store import record_run
    run_id = record_run(url, "audit", document, netns=netns, registry=registry_path)

That one line is the whole recording API: `pps sockets`, `pps scan` and `pps audit` call it with
the JSON document they print, and `pps watch` / `pps flows audit` are meant to call it the same
way (kind "watch" / "flows-audit"). A run row keeps the full document plus normalised rows for
what `pps history`, `pps fleet` and `pps diff` query: hosts (machine-id, hostname, network
namespace), runs, findings (keyed by the finding's stable id) and doors (open ports).

What this room must not do: decide anything about security (the audit does), print (the CLI
does), or lose a result — every write is one transaction, and every database failure becomes one
`RuntimeFailure` line so the caller's own output is never the casualty. Documents enter through
`ppsguard.store.documents` only (the adapter to the report layer's formats).
"""

from __future__ import annotations

from ppsguard.store.identity import HostIdentity, this_host
from ppsguard.store.urls import STORE_ENV, default_url, resolve_url
from ppsguard.store.write import record_run

__all__ = [
    "STORE_ENV",
    "HostIdentity",
    "default_url",
    "record_run",
    "resolve_url",
    "this_host",
]
