"""The exception tree of ppsguard, and the exit code each branch maps to.

    PpsError                      exit 3 unless a subclass says otherwise
    ├── InputError (ValueError)   exit 2: bad input, names file:line:column or the token
    │   └── UsageError            exit 2: a bad command-line value
    └── RuntimeFailure            exit 3: the environment failed us
        ├── PermissionDenied      exit 3: needs root or a capability
        └── KernelFeatureMissing  exit 3: netlink family, nftables, namespaces, ...

Per-port and per-socket failures inside engines are data (a result with a status), never raised.
The command line turns every PpsError into one line on stderr and the exit code below.
"""

from __future__ import annotations

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
