"""The state folder of the safe apply: where the rollback lives, and the rules it must obey.

One folder per network namespace under `$PPSGUARD_STATE_DIR` (default /var/lib/ppsguard):

    <base>/<root | netns-NAME>/
        snapshot-owned.nft   ppsguard's table alone before the apply (empty: it was absent)
        pending.json         apply id, deadline, watchdog pid, while a window is open
        confirmed            marker: contains the apply id that was confirmed
        applied.json         fingerprint and text of the last applied table
        target.json          the target (nftables | iptables, and backend) of the last apply
        snapshot-iptables.json, applied-iptables.json   the same two for the iptables target
        apply-log.jsonl      one line per apply / confirm / rollback, with what changed
        lock                 flock serialising apply, confirm, rollback and the watchdog

Root restores what is in this folder, so nobody else may write there: the base folder must be
owned by root (the effective user) and writable by nobody else, the namespace folder must be owned
by root and mode 0700, and neither may be a symbolic link (`check`). Writes go through the one
atomic writer, `ppsguard.files` (a random temporary name created exclusively, fsync, rename, fsync
of the folder), and a full disk is a `RuntimeFailure` naming the file — never a traceback, never
a half-written file.
This module does not run firewall tools (see `nft.py`) and does not decide anything.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ppsguard.errors import RuntimeFailure

DEFAULT_STATE_DIR = "/var/lib/ppsguard"
# Room an apply needs in the state folder beyond the texts it writes (log lines, JSON records).
SPACE_MARGIN = 64 * 1024


class StateFolderRefused(RuntimeFailure):
    """The state folder is not safe to restore from (owner, mode or a symbolic link)."""


def _describe(error: OSError) -> str:
    if error.errno == errno.ENOSPC:
        return "no space left on the device"
    if error.errno == errno.EDQUOT:
        return "disk quota exceeded"
    return error.strerror or str(error)


@dataclass(frozen=True, slots=True)
class StateDir:
    """The state files of one network namespace."""

    path: Path
    netns: str | None

    @classmethod
    def for_netns(cls, netns: str | None, base: str | Path | None = None) -> StateDir:
        root = Path(base or os.environ.get("PPSGUARD_STATE_DIR") or DEFAULT_STATE_DIR)
        return cls(path=root / (f"netns-{netns}" if netns else "root"), netns=netns)

    @property
    def snapshot(self) -> Path:
        """Kept for readers of older folders; the rollback uses `owned_snapshot` only."""
        return self.path / "snapshot.nft"

    @property
    def owned_snapshot(self) -> Path:
        return self.path / "snapshot-owned.nft"

    @property
    def pending(self) -> Path:
        return self.path / "pending.json"

    @property
    def confirmed(self) -> Path:
        return self.path / "confirmed"

    @property
    def applied(self) -> Path:
        return self.path / "applied.json"

    @property
    def log(self) -> Path:
        return self.path / "apply-log.jsonl"

    # the iptables target's files, and which target the last apply used -------------------
    @property
    def iptables_snapshot(self) -> Path:
        return self.path / "snapshot-iptables.json"

    @property
    def iptables_applied(self) -> Path:
        return self.path / "applied-iptables.json"

    def target(self) -> tuple[str, str | None]:
        """(target, backend) of the last apply here (`target.json`); nftables when none."""
        found = self.read_json(self.path / "target.json") or {}
        target, backend = found.get("target"), found.get("backend")
        return (
            target if target in {"nftables", "iptables"} else "nftables",
            backend if isinstance(backend, str) else None,
        )

    def set_target(self, target: str, backend: str | None = None) -> None:
        record = {"target": target} | ({"backend": backend} if backend else {})
        self.write_atomic(self.path / "target.json", json.dumps(record) + "\n")

    def applied_record(self) -> Path:
        """The record of the last apply of the current target."""
        return self.iptables_applied if self.target()[0] == "iptables" else self.applied

    # the folder rules -----------------------------------------------------------------------
    def problem(self) -> str | None:
        """Why this folder must not be trusted (None when it is safe or does not exist yet)."""
        owner = os.geteuid()
        for folder, exact in ((self.path.parent, False), (self.path, True)):
            try:
                info = os.lstat(folder)
            except FileNotFoundError:
                continue
            except OSError as exc:
                return f"cannot inspect state folder {folder}: {_describe(exc)}"
            mode = stat.S_IMODE(info.st_mode)
            if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
                return f"state folder {folder} is not a plain folder (a symbolic link or a file)"
            if info.st_uid != owner:
                return (
                    f"state folder {folder} is owned by uid {info.st_uid}, not root "
                    f"(fix: chown root:root {folder}; chmod 700 {folder})"
                )
            if (exact and mode & 0o077) or (not exact and mode & 0o022):
                wanted = "0700" if exact else "0700 or 0755"
                return (
                    f"state folder {folder} is mode {mode:04o}, must be {wanted} "
                    f"(others could plant the rule set root restores; fix: chmod 700 {folder})"
                )
        return None

    def check(self) -> None:
        """Refuse a folder another user could write into; create it (0700) when missing."""
        problem = self.problem()
        if problem:
            raise StateFolderRefused(f"refusing to use the state folder: {problem}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.path.mkdir(exist_ok=True, mode=0o700)
        except OSError as exc:
            raise RuntimeFailure(
                f"cannot create state folder {self.path}: {_describe(exc)}"
            ) from None
        problem = self.problem()
        if problem:
            raise StateFolderRefused(f"refusing to use the state folder: {problem}")

    def trusted(self) -> bool:
        """True when records read from here can be believed (the folder rules hold)."""
        return self.problem() is None

    def require_space(self, needed: int) -> None:
        """Fail before anything changes when the folder's file system cannot hold `needed`."""
        try:
            info = os.statvfs(self.path)
        except OSError as exc:
            raise RuntimeFailure(
                f"cannot inspect state folder {self.path}: {_describe(exc)}"
            ) from None
        free = info.f_bavail * info.f_frsize
        if free < needed + SPACE_MARGIN:
            raise RuntimeFailure(
                f"state folder {self.path} has {free:,} bytes free, an apply needs "
                f"{needed + SPACE_MARGIN:,}: nothing was applied (free some space)"
            )

    # locking ----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self, timeout: float | None = None) -> Iterator[bool]:
        """Hold the folder's lock; with `timeout`, give up waiting after that long (yields
        False then, and the caller goes on without it: a stuck holder must not stop a rollback)."""
        self.check()
        with (self.path / "lock").open("a") as handle:
            held = self._acquire(handle.fileno(), timeout)
            try:
                yield held
            finally:
                if held:
                    fcntl.flock(handle, fcntl.LOCK_UN)

    @staticmethod
    def _acquire(fd: int, timeout: float | None) -> bool:
        if timeout is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
            return True
        give_up = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= give_up:
                    return False
                time.sleep(0.1)

    # files ------------------------------------------------------------------------------------
    def write_atomic(self, target: Path, text: str) -> None:
        """Write `target` all or nothing, durably, readable by root only, through the one atomic
        writer (`ppsguard.files`); any failure is one RuntimeFailure line naming the file."""
        from ppsguard.errors import InputError
        from ppsguard.files import write_atomic

        try:
            write_atomic(target, text, mode=0o600)
        except InputError as exc:  # inside the state folder a bad path is the machine's doing
            raise RuntimeFailure(str(exc)) from None

    def read_json(self, target: Path) -> dict[str, Any] | None:
        try:
            value = json.loads(target.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return None
        return value if isinstance(value, dict) else None

    def read_text(self, target: Path) -> str:
        try:
            return target.read_text() if target.exists() else ""
        except OSError as exc:
            raise RuntimeFailure(f"cannot read {target}: {_describe(exc)}") from None

    def record(self, action: str, **fields: Any) -> None:
        """Append one line to the apply log (durably)."""
        self.check()
        row: dict[str, Any] = {
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "action": action,
        }
        row["netns"] = self.netns
        row.update(fields)
        line = (json.dumps(row, sort_keys=True) + "\n").encode()
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(self.log, flags, 0o600)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise RuntimeFailure(f"cannot write {self.log}: {_describe(exc)}") from None
