"""The one atomic file writer: every file ppsguard writes goes through `write_atomic`, `write_all`
or, for a stream too big for memory (Parquet), `atomic_file`.

A report, a scan's `-oX`, a compiled rule set, a draft registry and the firewall state files are
written the same way, so that a failed write never leaves a half-written file and never clobbers
the one that was there:

1. the folder is opened once (`O_DIRECTORY`) and everything below happens relative to it;
2. a temporary file with a random name is created in that folder with `O_CREAT | O_EXCL |
   O_NOFOLLOW`: it cannot exist before, and a symlink planted under its name is never followed
   (in a folder others can write, such as /tmp, nobody can make us write through their link);
3. the data is written and `fsync`ed, then renamed over the target (rename replaces a symlink at
   the target name, it does not follow it), then the folder is `fsync`ed so the rename survives
   a crash;
4. on any failure the temporary file is removed and the previous file is left as it was.
The new file keeps the permissions of the regular file it replaces (0644 less the umask when
there was none), unless the caller names a mode (the firewall state: 0600).

`write_all` does the same for several files that belong together (iptables' rules.v4 and
rules.v6): every temporary file is written and synced before the first rename, so a full disk
changes none of them; the renames that follow restore the previous files if one fails.

Errors are `ppsguard.errors`: a missing folder, a path that is a folder, or a name that is too
long is bad input (`InputError`, exit 2); permission denied, a read-only file system and a full
disk are runtime failures (`RuntimeFailure`, exit 3). Every message names the file.
This module does nothing but write files: no rendering, no printing.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from ppsguard.errors import BAD_PATH, InputError, PermissionDenied, PpsError, RuntimeFailure
from ppsguard.infile import file_kind

_RUNTIME = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EFBIG: "the file is too large",
}
_ATTEMPTS = 16  # random names to try before giving up (a collision needs 2**64 luck)


def write_atomic(
    path: str | Path, data: str | bytes, *, mode: int | None = None, sync: bool = True
) -> None:
    """Replace `path` by `data` (text is UTF-8) atomically; see the module docstring.

    `mode`: the new file's permissions; by default those of the regular file it replaces, or
    0o644 (less the umask) for a new one. `sync=False` skips the two fsyncs (still atomic, not
    durable across a power loss): for state that lives no longer than the kernel's own.
    """
    write_all([(Path(path), data)], mode=mode, sync=sync)


def write_all(
    files: Sequence[tuple[Path, str | bytes]], *, mode: int | None = None, sync: bool = True
) -> None:
    """Replace every `(path, data)` or none of them: all temporary files first, then the renames."""
    staged: list[_Staged] = []
    try:
        for path, data in files:
            staged.append(_stage(Path(path), data, mode, sync))
        _commit(staged, sync)
    finally:
        for item in staged:
            item.discard()


def error_for(path: Path, exc: OSError) -> PpsError:
    """The ppsguard error for an OSError met while writing `path` (bad input or runtime)."""
    code = exc.errno or 0
    if code == errno.ENOENT:
        folder = path.parent if str(path.parent) else Path()
        return InputError(f"cannot write {path}: the folder {folder} does not exist")
    if code in BAD_PATH:
        return InputError(f"cannot write {path}: {BAD_PATH[code]}")
    if code in (errno.EACCES, errno.EPERM):
        return PermissionDenied(f"cannot write {path}: permission denied")
    reason = _RUNTIME.get(code) or exc.strerror or str(exc)
    return RuntimeFailure(f"cannot write {path}: {reason}")


class _Staged:
    """A temporary file written and synced beside its target, not yet renamed."""

    def __init__(self, target: Path, folder_fd: int, temporary: str) -> None:
        self.target = target
        self.name = target.name
        self.folder_fd = folder_fd
        self.temporary: str | None = temporary
        self.backup: str | None = None  # a hard link to the file this one replaces
        self.existed = True  # whether a file was there (unknown: assume so, never delete it)

    def discard(self) -> None:
        for name in (self.temporary, self.backup):
            if name is not None:
                with suppress(OSError):
                    os.unlink(name, dir_fd=self.folder_fd)
        self.temporary = self.backup = None
        os.close(self.folder_fd)

    def restore(self) -> None:
        """Undo this file's rename: the previous file back, or no file when there was none."""
        try:
            if self.backup is not None:
                os.rename(
                    self.backup, self.name, src_dir_fd=self.folder_fd, dst_dir_fd=self.folder_fd
                )
                self.backup = None
            elif not self.existed:
                os.unlink(self.name, dir_fd=self.folder_fd)
        except OSError:
            pass  # best effort: the error that made us undo is the one reported


@contextmanager
def _mapped(path: Path) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise error_for(path, exc) from None


def _open_staged(path: Path, mode: int | None) -> tuple[_Staged, int]:
    """The temporary file beside `path`, created exclusively, and its open descriptor."""
    if not path.name or path.name in {".", ".."}:
        raise InputError(f"cannot write {path}: not a file name")
    folder = path.parent if str(path.parent) else Path()
    with _mapped(path):
        folder_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        with _mapped(path):
            kept = _existing_mode(path, folder_fd)
            temporary, fd = _create(path.name, folder_fd, 0o644 if mode is None else mode)
            if mode is None and kept is not None:
                os.fchmod(fd, kept)  # the replaced file's own permissions, umask or not
    except BaseException:
        os.close(folder_fd)
        raise
    return _Staged(path, folder_fd, temporary), fd


def _stage(path: Path, data: str | bytes, mode: int | None, sync: bool = True) -> _Staged:
    staged, fd = _open_staged(path, mode)
    try:
        with _mapped(path), os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
            handle.flush()
            if sync:
                os.fsync(handle.fileno())
    except BaseException:
        staged.discard()
        raise
    return staged


@contextmanager
def atomic_file(path: str | Path, *, mode: int | None = None) -> Iterator[BinaryIO]:
    """Stream into `path` atomically: write to the handle; when the block ends without an error
    the file replaces `path` (synced), otherwise it is removed and `path` is left as it was.

        with atomic_file("flows.parquet") as handle, pq.ParquetWriter(handle, schema) as out:
            ...

    For outputs too big to hold in memory; errors as for `write_atomic`.
    """
    target = Path(path)
    staged, fd = _open_staged(target, mode)
    try:
        with _mapped(target), os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        _commit([staged])
    finally:
        staged.discard()


def _existing_mode(path: Path, folder_fd: int) -> int | None:
    """The permission bits of the regular file at `path` (None: nothing, or a symlink there);
    a folder there is refused (EISDIR), and so is a device, FIFO or socket, or a link to one:
    renaming over /dev/null or /dev/stdout (a link to /proc/self/fd/1) would replace the
    system's node with our file (as root, for everyone)."""
    try:
        info = os.stat(path.name, dir_fd=folder_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    if stat.S_ISDIR(info.st_mode):
        raise OSError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    kind = info.st_mode
    if stat.S_ISLNK(kind):
        with suppress(OSError):  # a dangling link is replaced, as a link to a file is
            kind = os.stat(path.name, dir_fd=folder_fd).st_mode
    if not (stat.S_ISREG(kind) or stat.S_ISLNK(kind) or stat.S_ISDIR(kind)):
        raise InputError(
            f"cannot write {path}: it is {file_kind(kind)}, not a regular file (ppsguard replaces "
            "files whole; without the option the result goes to standard output)"
        )
    return stat.S_IMODE(info.st_mode) if stat.S_ISREG(info.st_mode) else None


def _create(name: str, folder_fd: int, mode: int) -> tuple[str, int]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for _ in range(_ATTEMPTS):
        temporary = f".{name[:200]}.{secrets.token_hex(8)}.tmp"
        try:
            return temporary, os.open(temporary, flags, mode, dir_fd=folder_fd)
        except FileExistsError:
            continue
    raise RuntimeFailure(f"cannot create a temporary file beside {name}")


def _commit(staged: list[_Staged], sync: bool = True) -> None:
    """Rename every staged file over its target; on a failure, put the previous ones back."""
    if len(staged) > 1:
        for item in staged:
            _hard_link_backup(item)
    done: list[_Staged] = []
    for item in staged:
        try:
            with _mapped(item.target):
                os.rename(
                    item.temporary or "",
                    item.name,
                    src_dir_fd=item.folder_fd,
                    dst_dir_fd=item.folder_fd,
                )
        except BaseException:
            for previous in reversed(done):
                previous.restore()
            raise
        item.temporary = None
        done.append(item)
    for item in staged if sync else ():
        try:
            os.fsync(item.folder_fd)
        except OSError as exc:
            raise error_for(item.target, exc) from None


def _hard_link_backup(item: _Staged) -> None:
    """A second name for the current target (no data copied), so a later failure can undo."""
    backup = f".{item.name[:200]}.{secrets.token_hex(8)}.old"
    try:
        os.link(
            item.name,
            backup,
            src_dir_fd=item.folder_fd,
            dst_dir_fd=item.folder_fd,
            follow_symlinks=False,  # a link planted at the name stays a link, never its target
        )
    except FileNotFoundError:
        item.existed = False  # nothing there before: undoing means removing the new file
    except OSError:
        pass  # no hard links here (vfat, some FUSE file systems): this one cannot be undone
    else:
        item.backup = backup
