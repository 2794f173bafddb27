"""The one bounded reader of files that come from outside the program.

Every file a user names (a registry and its includes, nmap XML, scope, exclude and target lists,
/etc/services) is read through `read_bytes` / `read_text`; evidence that is streamed rather than
read whole (`pps flows` captures and logs, any size) is opened through `open_regular`. They:
  - opens with O_NONBLOCK | O_NOCTTY | O_CLOEXEC, so a FIFO or a terminal never blocks the open;
  - fstat()s the open descriptor (no race with the name) and refuses anything but a regular file
    (FIFOs, devices such as /dev/zero, sockets, directories), naming what it is;
  - (read_bytes/read_text) refuse a file whose size is over the caller's limit before reading,
    and enforce the limit again while reading (a file that grows meanwhile is refused, never read
    whole);
  - reads `-` as standard input, bounded the same way (stdin may be a pipe: that is the point);
  - maps OS errors to ppsguard errors: a missing or unreadable name is InputError (exit 2),
    permission denied is PermissionDenied (exit 3).
It must not parse anything: callers get bytes or text and hand them to their pure parsers.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from pathlib import Path
from typing import BinaryIO

from ppsguard.errors import InputError, PermissionDenied

STDIN = "-"
_CHUNK = 1 << 16
_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a folder"),
)


def file_kind(mode: int) -> str:
    """What a non-regular file is, for a message ("a character device"); shared by the writer."""
    for test, name in _KINDS:
        if test(mode):
            return name
    return "a special file"


def _too_big(what: str, size: int | None, limit: int, file: str) -> InputError:
    shown = f"{size:,} bytes, larger" if isinstance(size, int) else "larger"
    return InputError(f"{what} is {shown} than the {limit:,} bytes allowed", file=file)


def _read_limited(handle: BinaryIO | int, limit: int, what: str, file: str) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        want = min(_CHUNK, limit + 1 - total)
        chunk = os.read(handle, want) if isinstance(handle, int) else handle.read(want)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            raise _too_big(what, None, limit, file)


def open_regular(path: str | Path, what: str = "file") -> int:
    """A blocking descriptor of `path` once it is known to be a regular file (see the module
    docstring); for readers that stream a file of any size (`pps flows` evidence) instead of
    reading it whole. The caller closes it."""
    name = str(path)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(name, flags)
    except OSError as exc:
        raise _os_error(exc, what, name) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise InputError(
                f"{what} is {file_kind(mode)}, not a regular file; ppsguard reads only "
                "regular files (use - for standard input)",
                file=name,
            )
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_bytes(path: str | Path, *, limit: int, what: str = "file") -> bytes:
    """The whole content of a regular file (or of stdin for `-`), at most `limit` bytes."""
    name = str(path)
    if name == STDIN:
        if sys.stdin is None:
            raise InputError(f"no standard input to read the {what} from", token=STDIN)
        try:
            return _read_limited(sys.stdin.buffer, limit, what, "<stdin>")
        except OSError as exc:
            raise _os_error(exc, what, "<stdin>") from None
    fd = open_regular(name, what)
    try:
        info = os.fstat(fd)
        if info.st_size > limit:
            raise _too_big(what, info.st_size, limit, name)
        return _read_limited(fd, limit, what, name)
    except OSError as exc:
        raise _os_error(exc, what, name) from None
    finally:
        os.close(fd)


def read_text(path: str | Path, *, limit: int, what: str = "file", errors: str = "strict") -> str:
    """`read_bytes` decoded as UTF-8; undecodable text is an InputError naming the byte offset
    (unless `errors` says how to replace it)."""
    data = read_bytes(path, limit=limit, what=what)
    try:
        return data.decode("utf-8", errors=errors)
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} is not UTF-8 text (byte {exc.start})", file=str(path)) from None


def _os_error(exc: OSError, what: str, name: str) -> InputError | PermissionDenied:
    reason = exc.strerror or exc.__class__.__name__
    if exc.errno in (errno.EACCES, errno.EPERM):
        return PermissionDenied(f"{name}: cannot read {what}: {reason}")
    return InputError(f"cannot read {what}: {reason}", file=name)
