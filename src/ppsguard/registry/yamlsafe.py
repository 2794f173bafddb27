"""Hostile-input-safe YAML: compose (never construct) a document into plain nodes with positions.

PyYAML's SafeLoader composes the text into a node graph; nothing is ever constructed from a tag,
so no code can run. On top of that this module:
  - refuses text larger than MAX_BYTES before parsing;
  - refuses every tag except the standard scalar/sequence/mapping ones and merge keys (`<<`);
  - caps anchors and aliases (billion laughs) and the total number of nodes visited when the graph
    is walked, so a small file cannot expand into a huge one;
  - caps the nesting depth (MAX_DEPTH), so a short file of nested brackets is a clear error, never
    a RecursionError;
  - turns every YAML error into an InputError naming file:line:column.
The result is a `Node` tree of dicts/lists/scalars, each with its SourceLocation.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import yaml

from ppsguard.errors import InputError
from ppsguard.model.registry import SourceLocation

MAX_BYTES = 4 * 1024 * 1024
MAX_ALIASES = 64
MAX_NODES = 200_000
MAX_DEPTH = 64  # a registry nests about 6 levels; deeper text is refused, never recursed into

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
_SCALAR_TAGS = {_STR, _INT, _FLOAT, _BOOL, _NULL, _TIMESTAMP}


@dataclass(frozen=True, slots=True)
class Node:
    """A composed YAML value: `value` is a str/int/float/bool/None/date, list[Node] or
    dict[str, tuple[Node, Node]] (key -> (key node, value node)), with where it was written."""

    value: Any
    location: SourceLocation

    @property
    def kind(self) -> str:
        if isinstance(self.value, dict):
            return "mapping"
        if isinstance(self.value, list):
            return "sequence"
        return "scalar"


# libyaml's loader when available: the pure-Python scanner takes ~30 s for a 10,000-entry
# registry, libyaml about 1 s. Composition never expands aliases (a node reached twice is the
# same object), so alias bombs are caught while walking the graph, below.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _loc(file: str, node: yaml.Node) -> SourceLocation:
    return SourceLocation(file, node.start_mark.line + 1, node.start_mark.column + 1)


def compose_text(text: str, file: str) -> Node | None:
    """Compose one YAML document; None for an empty document. Raises InputError."""
    if len(text) > MAX_BYTES:
        raise InputError(
            f"file is {len(text):,} characters, larger than the {MAX_BYTES:,} allowed "
            "for a registry; split it with include:",
            file=file,
        )
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "YAML syntax error"
        raise InputError(
            f"YAML syntax error: {problem}",
            file=file,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        ) from None
    except yaml.YAMLError as exc:
        raise InputError(f"YAML error: {exc}".splitlines()[0], file=file) from None
    finally:
        loader.dispose()
    if root is None:
        return None
    return _Walk(file, loader).convert(root)


class _Walk:
    """Converts the composed graph, counting values and repeated (aliased) nodes."""

    def __init__(self, file: str, loader: yaml.SafeLoader) -> None:
        self.file = file
        self.loader = loader
        self.budget = MAX_NODES
        self.seen: set[int] = set()
        self.aliases = 0
        self.depth = 0

    def convert(self, node: yaml.Node) -> Node:
        self.budget -= 1
        if self.depth >= MAX_DEPTH:
            raise InputError(
                f"values nested more than {MAX_DEPTH} levels deep",
                file=self.file,
                line=node.start_mark.line + 1,
                column=node.start_mark.column + 1,
            )
        if id(node) in self.seen or self.budget < 0:
            self.aliases += 1
            if self.aliases > MAX_ALIASES or self.budget < 0:
                raise InputError(
                    f"more than {MAX_ALIASES} YAML aliases or {MAX_NODES:,} values "
                    "(refusing a possible alias bomb)",
                    file=self.file,
                    line=node.start_mark.line + 1,
                    column=node.start_mark.column + 1,
                )
        self.seen.add(id(node))
        self.depth += 1
        try:
            return _convert(node, self.file, self, self.loader)
        finally:
            self.depth -= 1


def _convert(node: yaml.Node, file: str, walk: _Walk, loader: yaml.SafeLoader) -> Node:
    loc = _loc(file, node)
    if isinstance(node, yaml.ScalarNode):
        if node.tag not in _SCALAR_TAGS:
            raise InputError(
                f"YAML tag {node.tag!r} is not allowed (only plain values)",
                file=file,
                line=loc.line,
                column=loc.column,
            )
        return Node(_scalar(node, loader, file, loc), loc)
    if isinstance(node, yaml.SequenceNode):
        if node.tag != _SEQ:
            raise InputError(
                f"YAML tag {node.tag!r} is not allowed", file=file, line=loc.line, column=loc.column
            )
        return Node([walk.convert(item) for item in node.value], loc)
    if isinstance(node, yaml.MappingNode):
        if node.tag != _MAP:
            raise InputError(
                f"YAML tag {node.tag!r} is not allowed", file=file, line=loc.line, column=loc.column
            )
        out: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise InputError(
                    "YAML merge keys (<<) are not allowed",
                    file=file,
                    line=key_node.start_mark.line + 1,
                    column=key_node.start_mark.column + 1,
                )
            key = walk.convert(key_node)
            if not isinstance(key.value, str | int) or isinstance(key.value, bool):
                raise InputError(
                    "mapping keys must be plain names",
                    file=file,
                    line=key.location.line,
                    column=key.location.column,
                )
            name = str(key.value)
            if name in out:
                raise InputError(
                    f"duplicate key {name!r}",
                    file=file,
                    line=key.location.line,
                    column=key.location.column,
                )
            out[name] = (key, walk.convert(value_node))
        return Node(out, loc)
    raise InputError("unsupported YAML node", file=file, line=loc.line, column=loc.column)


def _scalar(node: yaml.ScalarNode, loader: yaml.SafeLoader, file: str, loc: SourceLocation) -> Any:
    try:
        value = loader.construct_object(node, deep=False)  # standard scalar tags only (checked)
    except (yaml.YAMLError, ValueError, OverflowError) as exc:
        raise InputError(
            f"bad value {node.value!r}: {exc}".splitlines()[0],
            file=file,
            line=loc.line,
            column=loc.column,
        ) from None
    if isinstance(value, dt.datetime):
        return value.date()
    return value
