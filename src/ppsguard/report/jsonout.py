"""JSON and JSONL rendering of model values (dataclasses, enums, addresses, times, paths).

Serialisation happens here, at the edge, so the model stays free of validation libraries.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import ipaddress
import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import PurePath
from typing import Any


def to_jsonable(value: Any) -> Any:
    """Turn a model value into plain JSON types, recursively."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(to_jsonable(k)): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return str(value)
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, list | tuple | set | frozenset):
        items = [to_jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")


def dumps_json(value: Any, *, indent: int | None = 2) -> str:
    return json.dumps(to_jsonable(value), indent=indent, ensure_ascii=False)


def dumps_jsonl(rows: Iterable[Any]) -> Iterator[str]:
    for row in rows:
        yield json.dumps(to_jsonable(row), ensure_ascii=False, separators=(",", ":"))
