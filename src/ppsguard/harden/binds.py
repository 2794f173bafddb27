"""Where a well-known daemon is told which addresses to listen on (pure; the data is a file).

`data/binds.toml` names, for each daemon, the executables that identify it, its config files,
the key and a one-line pattern for the current setting, and the line that narrows the bind to
loopback. `find_setting` runs a daemon's pattern over config text the caller read; it never
opens a file. The rules are read once from the package (importlib.resources).

    >>> rule = rule_for("/usr/bin/redis-server", "redis-server")
    >>> rule.key, find_setting(rule, "port 6379\\nbind * -::*\\n")
    ('bind', (2, '* -::*'))
"""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import PurePosixPath

MAX_LINE = 4096  # longer config lines are not matched (a pattern never runs on a huge line)


@dataclass(frozen=True, slots=True)
class BindSample:
    """A made-up config excerpt and what the pattern must find in it (line 0: not set)."""

    text: str
    line: int
    value: str | None


@dataclass(frozen=True, slots=True)
class BindRule:
    """One daemon's listen setting."""

    name: str
    executables: tuple[str, ...]
    files: tuple[str, ...]
    key: str
    pattern: re.Pattern[str]
    narrow: str
    default: str
    source: str
    samples: tuple[BindSample, ...] = ()


def parse_rules(text: str) -> tuple[BindRule, ...]:
    """The rules in a binds.toml text (a bad file is a bug in the package: ValueError)."""
    data = tomllib.loads(text)
    rules: list[BindRule] = []
    for item in data.get("daemon", []):
        samples = tuple(
            BindSample(s["text"], int(s["line"]), s.get("value")) for s in item.get("sample", [])
        )
        rules.append(
            BindRule(
                name=item["name"],
                executables=tuple(item["executables"]),
                files=tuple(item["files"]),
                key=item["key"],
                pattern=re.compile(item["pattern"]),
                narrow=item["narrow"],
                default=item["default"],
                source=item["source"],
                samples=samples,
            )
        )
    return tuple(rules)


@functools.cache
def rules() -> tuple[BindRule, ...]:
    """The rules shipped with ppsguard."""
    text = resources.files("ppsguard.harden").joinpath("data/binds.toml").read_text("utf-8")
    return parse_rules(text)


def rule_for(exe: str | None, comm: str | None) -> BindRule | None:
    """The rule of the daemon a process is (by executable basename, else command name)."""
    names = [PurePosixPath(exe).name] if exe else []
    names += [comm] if comm else []
    for name in names:
        for rule in rules():
            if name in rule.executables:
                return rule
    return None


def find_setting(rule: BindRule, text: str) -> tuple[int, str] | None:
    """(line number, value) of the first line of `text` that sets the rule's key, or None."""
    for number, line in enumerate(text.splitlines(), start=1):
        if len(line) > MAX_LINE:
            continue
        found = rule.pattern.match(line)
        if found:
            return number, found.group("value").strip()
    return None


__all__ = ["BindRule", "BindSample", "find_setting", "parse_rules", "rule_for", "rules"]
