"""The registry's JSON Schema, shipped in the package for editors and `pps registry schema`.

The loader (`registry.load`) is the authority and gives better errors (file:line:column, did
you mean); the schema describes the same format so editors can complete and check as you type.
A test checks every example registry validates against it.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any


def schema_text() -> str:
    """The schema as shipped (JSON text)."""
    return (
        resources.files("ppsguard.registry")
        .joinpath("data/registry.schema.json")
        .read_text("utf-8")
    )


def registry_schema() -> dict[str, Any]:
    value: dict[str, Any] = json.loads(schema_text())
    return value
