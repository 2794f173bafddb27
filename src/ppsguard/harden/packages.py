"""Which Debian package installed a file: dpkg's own file lists, read without running dpkg.

`dpkg -S PATH` answers by reading /var/lib/dpkg/info/*.list; so do we, once for every path
wanted, so a plan of twenty listeners reads the lists once. Debian's merged /usr means an
executable run as /usr/sbin/sshd may be listed as /sbin/sshd (or the other way round): both
spellings are looked up. `owners_in_list` is pure; `packages_of` reads the folder.
"""

# ruff: noqa: PTH208 -- one listdir of dpkg's folder: names only, no Path object per entry

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

DPKG_INFO = Path("/var/lib/dpkg/info")
_MAX_LIST = 64 << 20  # a .list file bigger than this is not dpkg's


def spellings(path: str) -> tuple[str, ...]:
    """`path` and its merged-/usr alias (`/usr/sbin/x` <-> `/sbin/x`)."""
    for top in ("/bin/", "/sbin/", "/lib/", "/lib64/"):
        if path.startswith("/usr" + top):
            return (path, path[4:])
        if path.startswith(top):
            return (path, "/usr" + path)
    return (path,)


def owners_in_list(text: str, wanted: Iterable[str]) -> set[str]:
    """Which of `wanted` (exact paths) one package's .list text names.

    >>> sorted(owners_in_list("/.\\n/usr\\n/usr/sbin/sshd\\n", ["/usr/sbin/sshd", "/x"]))
    ['/usr/sbin/sshd']
    """
    lines = set(text.splitlines())
    return {path for path in wanted if path in lines}


def package_name(list_file: str) -> str:
    """`openssh-server.list` -> `openssh-server`; `libc6:amd64.list` -> `libc6`."""
    return list_file.removesuffix(".list").split(":", 1)[0]


def packages_of(paths: Iterable[str], info: Path = DPKG_INFO) -> dict[str, str]:
    """{path: package} for each of `paths` some installed package lists (others are absent).

    A missing or unreadable dpkg folder (not Debian) gives {}: the plan says "package unknown".
    """
    asked = {p for p in paths if p}
    aliases = {alias: path for path in asked for alias in spellings(path)}
    found: dict[str, str] = {}
    try:
        names = sorted(n for n in os.listdir(info) if n.endswith(".list"))
    except OSError:
        return found
    for name in names:
        if len(found) == len(asked):
            break
        try:
            with (info / name).open("rb") as handle:
                data = handle.read(_MAX_LIST)
        except OSError:
            continue
        if not any(alias.encode() in data for alias in aliases):
            continue  # the quick test: most lists name none of the paths
        for alias in owners_in_list(data.decode("utf-8", "replace"), aliases):
            found.setdefault(aliases[alias], package_name(name))
    return found


__all__ = ["owners_in_list", "package_name", "packages_of", "spellings"]
