"""The exception tree of ppsguard, and the exit code each branch maps to.

    PpsError                      exit 3 unless a subclass says otherwise
    ├── InputError (ValueError)   exit 2: bad input, names file:line:column or the token
    │   └── UsageError            exit 2: a bad command-line value
    └── RuntimeFailure            exit 3: the environment failed us
        ├── PermissionDenied      exit 3: needs root or a capability
        └── KernelFeatureMissing  exit 3: netlink family, nftables, namespaces, ...

Per-port and per-socket failures inside engines are data (a result with a status), never raised.
The command line turns every PpsError into one line on stderr and the exit code below, and an
OSError that nothing below turned into one through `os_failure` (a path too long for
`Path.exists()`, which lets that errno through).
"""

from __future__ import annotations

import errno
from pathlib import Path

EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2
EXIT_RUNTIME = 3


class PpsError(Exception):
    """Root of every error ppsguard raises on purpose."""

    exit_code: int = EXIT_RUNTIME


class InputError(PpsError, ValueError):
    """Bad input: a file, a registry, a target, a port list. Carries where it went wrong."""

    exit_code = EXIT_BAD_INPUT

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        column: int | None = None,
        token: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line
        self.column = column
        self.token = token
        self.hint = hint
        super().__init__(self.__str__())

    @property
    def location(self) -> str:
        """`file:line:column` as far as known, or an empty string."""
        parts = [p for p in (self.file, self.line, self.column) if p is not None]
        return ":".join(str(p) for p in parts)

    def __str__(self) -> str:
        text = self.message
        if self.token is not None and repr(self.token) not in text:
            text = f"{text}: {self.token!r}"
        if self.location:
            text = f"{self.location}: {text}"
        if self.hint:
            text = f"{text} ({self.hint})"
        return text


class UsageError(InputError):
    """A command-line value that cannot be used (a bad port list, an unknown name)."""


class RuntimeFailure(PpsError):
    """The machine could not do what was asked (permission, kernel feature, a tool missing)."""

    exit_code = EXIT_RUNTIME


class PermissionDenied(RuntimeFailure):
    """The operation needs privileges the caller lacks; the message says which."""


class KernelFeatureMissing(RuntimeFailure):
    """A kernel interface or system tool this operation needs is not available."""


BAD_PATH = {  # errnos that say the path given is wrong: bad input, not a failing machine
    errno.ENOENT: "the folder does not exist",
    errno.ENOTDIR: "a part of the path is not a folder",
    errno.EISDIR: "it is a folder",
    errno.ENAMETOOLONG: "the name is too long",
    errno.ELOOP: "too many symbolic links in the path",
}


def os_failure(exc: OSError) -> PpsError:
    """An OSError as the error it means: the file it names and the reason; exit 2 for a path
    that cannot be (see `BAD_PATH`), PermissionDenied for EACCES/EPERM, else a runtime failure."""
    reason = exc.strerror or exc.__class__.__name__
    name = exc.filename if isinstance(exc.filename, str) else None
    if name is not None and len(name) > 160:
        name = f"{name[:120]}…({len(name)} characters)"
    if exc.errno in BAD_PATH:
        return InputError(reason, file=name)
    text = f"{name}: {reason}" if name else reason
    if exc.errno in (errno.EACCES, errno.EPERM):
        return PermissionDenied(text)
    return RuntimeFailure(text)
