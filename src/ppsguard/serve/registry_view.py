"""The registry as the desk shows it: resolved entries per host, lint, the compiled rule set, and
the explain form's answer — each by the same library call the `pps policy` commands make, so the
desk and the command line cannot disagree.

The registry file is read again only when its modification time changes. Nothing here writes or
applies anything.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ppsguard.errors import PpsError, UsageError
from ppsguard.model.registry import Entry, Registry, SourceLocation
from ppsguard.policy.evaluate import attempt_address

_cache: dict[str, tuple[float, Registry]] = {}


def load(path: Path) -> Registry:
    """The registry at `path`, from the cache while the file is unchanged."""
    from ppsguard.registry.load import load_registry

    key = str(path)
    try:
        stamp = path.stat().st_mtime
    except OSError as exc:
        raise UsageError(f"cannot read the registry: {exc.strerror}", token=key) from None
    cached = _cache.get(key)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    registry = load_registry(path)
    _cache[key] = (stamp, registry)
    return registry


def host_names(registry: Registry) -> list[str]:
    return [h.name for h in registry.hosts]


@dataclass(frozen=True, slots=True)
class EntryRow:
    id: str
    kind: str
    action: str
    what: str
    sources: str
    purpose: str
    owner: str
    where: str
    log: bool


def entry_row(entry: Entry) -> EntryRow:
    ports = ", ".join(str(p) for p in entry.ports[:8])
    sources = ", ".join(entry.sources) or "-"
    if entry.excluded:
        sources += " except " + ", ".join(entry.excluded)
    return EntryRow(
        entry.id,
        entry.kind.value,
        entry.action.value,
        f"{entry.service} ({ports})" if entry.service else ports,
        sources,
        entry.purpose or "",
        entry.owner or "",
        f"{entry.location.file}:{entry.location.line}",
        entry.log,
    )


def entries(registry: Registry, host: str | None) -> list[EntryRow]:
    """The host's entries in evaluation order (denies first), as the audit holds them."""
    from ppsguard.audit.machine import baseline_for

    baseline, _ = baseline_for(registry, host)
    return [entry_row(e) for e in baseline.entries]


def find_entry(registry: Registry, host: str | None, entry_id: str) -> EntryRow | None:
    """One entry of the host by id (None when the registry has no such entry)."""
    for row in entries(registry, host):
        if row.id == entry_id:
            return row
    return None


def lint(registry: Registry) -> list[dict[str, Any]]:
    """`pps policy lint`'s findings, as rows."""
    from ppsguard.policy.lint import lint_registry

    return [
        {
            "level": f.level.value,
            "code": f.code,
            "message": f.message,
            "host": f.host or "",
            "entries": ", ".join(f.entries),
            "where": f"{f.location.file}:{f.location.line}",
        }
        for f in lint_registry(registry, today=dt.date.today())
    ]


def compiled(registry: Registry, host: str | None, target: str) -> list[tuple[str, str]]:
    """(file suffix, text) of `pps policy compile --target TARGET` for the host."""
    from ppsguard.firewall.render import RenderOptions, renderer
    from ppsguard.policy.compile import compile_host_policy

    rendered = renderer(target).render(compile_host_policy(registry, host), RenderOptions())
    return [(f.suffix, f.text) for f in rendered.files]


def explain(
    registry: Registry, host: str | None, source: str, to_port: str, to: str | None
) -> dict[str, Any]:
    """The explain document `pps policy explain --json` prints, for the form's values."""
    from ppsguard.policy.compile import compile_host_policy
    from ppsguard.policy.evaluate import explain as explain_attempt
    from ppsguard.registry.naming import parse_port_text
    from ppsguard.report.policy_documents import explain_document

    src = attempt_address(source, "from")
    dst = attempt_address(to, "to") if to else None
    if dst is not None and dst.version != src.version:
        raise UsageError("from and to must be of the same address family", token=to)
    try:
        ports = parse_port_text(to_port, SourceLocation("to-port", 1, 1))
    except ValueError as exc:
        raise UsageError(f"to-port: {getattr(exc, 'message', exc)}", token=to_port) from None
    if len(ports) != 1 or len(ports[0].ports) != 1:
        raise UsageError("to-port needs one port and one protocol, e.g. 110/tcp", token=to_port)
    result = explain_attempt(
        registry,
        compile_host_policy(registry, host),
        source=src,
        port=ports[0].ports.first,
        protocol=ports[0].protocol,
        destination=dst,
    )
    return explain_document(result)


def problem(exc: Exception) -> str:
    """One line for the page, as the command line would say it."""
    if isinstance(exc, PpsError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
