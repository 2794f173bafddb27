"""The machine documents' common ground: their names and versions, their JSON Schemas, validation.

Every document ppsguard prints for machines (`--json`, `--jsonl` rows) carries two keys first:
`schema`, a name such as `ppsguard.scan`, and `version`, an integer raised only when a change
would break a reader (a new key is not such a change). Each name has a JSON Schema (draft
2020-12) that ships in the package as `ppsguard/report/schemas/<name>.json`:

    name                built by / read back by (module: function)     printed by
    ppsguard.socket     sockets_document: socket_document/load_socket  pps sockets --json (rows)
    ppsguard.inventory  sockets_document: inventory_document/load_inventory (the store)
    ppsguard.scan       scan_document: scan_document/load_scan         pps scan --json
    ppsguard.audit      audit_document: audit_document/load_audit      pps audit --json
    ppsguard.lint       policy_documents: lint_document/load_lint      pps policy lint --json
    ppsguard.explain    policy_documents: explain_document/load_explain  pps policy explain --json
    ppsguard.harden-plan  harden_document: plan_document/load_plan     pps harden plan --json

`ppsguard.report.reader.load_document(value)` reads any of them back by its `schema` key. Loaders
validate first, so a document from elsewhere (a file, the store, a web client) that does not fit
is one `InputError` naming the place (`hosts/0/ports/3/state: 'opne' is not one of ...`).
Pure: values in, values out; the schemas are read with importlib.resources, not from a path.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any, TypeVar

from ppsguard.errors import InputError

T = TypeVar("T")
SCHEMA_KEY = "schema"
VERSION_KEY = "version"
# Every document name and the version this ppsguard writes (and the newest it reads).
VERSIONS: dict[str, int] = {
    "ppsguard.socket": 1,
    "ppsguard.inventory": 1,
    "ppsguard.scan": 1,
    "ppsguard.audit": 1,
    "ppsguard.lint": 1,
    "ppsguard.explain": 1,
    "ppsguard.harden-plan": 1,
}


def stamp(name: str) -> dict[str, Any]:
    """The two leading keys of a document: `{"schema": name, "version": N}`."""
    return {SCHEMA_KEY: name, VERSION_KEY: VERSIONS[name]}


@functools.cache
def json_schema(name: str) -> dict[str, Any]:
    """The JSON Schema of document `name`, as shipped in the package."""
    if name not in VERSIONS:
        raise InputError("unknown document schema", token=name, hint=_known())
    text = resources.files("ppsguard.report").joinpath(f"schemas/{name}.json").read_text("utf-8")
    value: dict[str, Any] = json.loads(text)
    return value


def schema_name(value: object) -> str:
    """The `schema` of a document, checked against the names and versions this ppsguard reads."""
    if not isinstance(value, Mapping):
        raise InputError(f"not a ppsguard document: a JSON {_kind(value)}, not an object")
    name = value.get(SCHEMA_KEY)
    if not isinstance(name, str) or name not in VERSIONS:
        raise InputError("not a ppsguard document: unknown schema", token=str(name), hint=_known())
    version = value.get(VERSION_KEY)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InputError(f"{name}: the version must be a positive integer", token=str(version))
    if version > VERSIONS[name]:
        raise InputError(
            f"{name} version {version} is newer than this ppsguard reads ({VERSIONS[name]})",
            hint="upgrade ppsguard",
        )
    return name


def validate(value: object, name: str | None = None) -> str:
    """Check `value` against its schema (or `name`'s); return the name or raise InputError."""
    import jsonschema  # only loaders need it: keeps `pps` start-up free of it

    found = schema_name(value)
    if name is not None and found != name:
        raise InputError(f"expected a {name} document, got {found}", token=found)
    error = jsonschema.exceptions.best_match(_validator(found).iter_errors(value))
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path) or "(document)"
        raise InputError(f"{found}: {where}: {_short(error.message)}")
    return found


@functools.cache
def _validator(name: str) -> Any:
    """One compiled validator per document name (building one costs more than most checks)."""
    import jsonschema

    return jsonschema.Draft202012Validator(json_schema(name))


def loader(name: str) -> Callable[[Callable[[Mapping[str, Any]], T]], Callable[[object], T]]:
    """Make a converter of a `name` document into a loader: validate first, and turn a value the
    schema lets through but the model refuses (an address `"abc"`, a date `"soon"`) into one
    InputError instead of a ValueError from deep inside."""

    def wrap(convert: Callable[[Mapping[str, Any]], T]) -> Callable[[object], T]:
        @functools.wraps(convert)
        def load(value: object) -> T:
            validate(value, name)
            assert isinstance(value, Mapping)
            try:
                return convert(value)
            except InputError:
                raise
            except (ValueError, TypeError, KeyError) as exc:
                raise InputError(f"{name}: a value does not fit: {_short(str(exc))}") from None

        return load

    return wrap


def _known() -> str:
    return "known: " + ", ".join(VERSIONS)


def _kind(value: object) -> str:
    return {list: "array", str: "string", int: "number", float: "number"}.get(
        type(value), type(value).__name__
    )


def _short(message: str, limit: int = 200) -> str:
    return message if len(message) <= limit else message[: limit - 1] + "…"
