"""The lab's namespaces: their names, housekeeping (kill what runs inside, delete, clean up after
a crash), the probe that says whether the lab can run here, and entering one from a thread.

Every namespace is named `ppsl-<owner pid>-<lab id>-<host>`; labs made by `pps lab up` use owner 0
(persistent). Only namespaces with the prefix are ever deleted, and only processes inside them (or
started by the lab) are ever killed, by pid. `hosts.py` builds labs on top of this.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from ppsguard.digits import decimal
from ppsguard.errors import PermissionDenied, UsageError
from ppsguard.inventory.netns import setns_current_thread

PREFIX = "ppsl"
PERSISTENT_OWNER = 0
NETNS_DIR = Path("/run/netns")


def run_ip(*args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run iproute2's `ip` with `args` (output captured as text)."""
    return subprocess.run(
        ["ip", *args], capture_output=True, text=True, check=check, timeout=timeout
    )


def list_lab_namespaces() -> list[str]:
    """Names of the namespaces that belong to any lab (the common prefix)."""
    if not NETNS_DIR.is_dir():
        return []
    return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(PREFIX + "-"))


def _namespace_owner(name: str) -> int | None:
    parts = name.split("-")
    if len(parts) < 4:
        return None
    return decimal(parts[1])


def _pid_alive(pid: int) -> bool:
    if pid == PERSISTENT_OWNER:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _pids_in_namespace(name: str) -> list[int]:
    result = run_ip("netns", "pids", name, check=False)
    return [pid for word in result.stdout.split() if (pid := decimal(word)) is not None]


def kill_pids(pids: Sequence[int], grace_s: float = 2.0) -> None:
    """SIGTERM, wait up to `grace_s`, then SIGKILL what is left. Only pids the lab owns."""
    alive = [pid for pid in pids if pid != os.getpid()]
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in alive if _reap_or_alive(pid)]
        if alive:
            time.sleep(0.05)
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for pid in alive:
        _reap_or_alive(pid)


def _reap_or_alive(pid: int) -> bool:
    try:
        done, _status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return _pid_alive(pid) and not _is_zombie(pid)
    return done == 0


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def delete_namespace(name: str) -> None:
    """Kill every process inside a lab namespace, then delete it (idempotent)."""
    if not name.startswith(PREFIX + "-"):
        raise UsageError("refusing to delete a namespace outside the lab", token=name)
    for _ in range(3):
        pids = _pids_in_namespace(name)
        if not pids:
            break
        kill_pids(pids)
    run_ip("netns", "del", name, check=False)


def clean_leftovers(*, include_live: bool = False) -> list[str]:
    """Delete lab namespaces whose owner process is gone (all of them with `include_live`).

    Persistent labs (owner 0, from `pps lab up`) count as live. Returns the names removed.
    """
    removed = []
    for name in list_lab_namespaces():
        owner = _namespace_owner(name)
        if include_live or owner is None or not _pid_alive(owner):
            delete_namespace(name)
            removed.append(name)
    return removed


_probe_cache: dict[str, str | None] = {}


def lab_unavailable_reason() -> str | None:
    """Why the lab cannot run here (None when it can): needs root, iproute2 and netns support."""
    if "reason" in _probe_cache:
        return _probe_cache["reason"]
    reason: str | None = None
    if os.geteuid() != 0:
        reason = "the network lab needs root (network namespaces)"
    elif shutil.which("ip") is None:
        reason = "the network lab needs iproute2's `ip` (apt-get install iproute2)"
    else:
        probe = f"{PREFIX}-{os.getpid()}-probe-x"
        result = run_ip("netns", "add", probe, check=False)
        if result.returncode != 0:
            reason = f"cannot create a network namespace: {result.stderr.strip()}"
        else:
            run_ip("netns", "del", probe, check=False)
    _probe_cache["reason"] = reason
    return reason


@contextlib.contextmanager
def inside_namespace(path: Path) -> Iterator[None]:
    """Run the current THREAD inside the network namespace at `path`, and return it afterwards.

    setns(CLONE_NEWNET) is per thread; sockets created inside keep their namespace after the
    thread returns. Use from a dedicated thread (see `Host.call`) so no other code of the
    process ever runs in the wrong namespace; if switching back fails the process aborts
    rather than continue in a namespace it did not ask for.
    """
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(path, os.O_RDONLY)
        try:
            setns_current_thread(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            try:
                setns_current_thread(own)
            except PermissionDenied:  # pragma: no cover - cannot happen as root
                os.abort()
    finally:
        os.close(own)


def persistent_labs() -> dict[str, list[str]]:
    """Labs made by `pps lab up` (owner 0): lab id -> namespace names."""
    labs: dict[str, list[str]] = {}
    for name in list_lab_namespaces():
        parts = name.split("-")
        if _namespace_owner(name) == PERSISTENT_OWNER:
            labs.setdefault(parts[2], []).append(name)
    return labs


__all__ = [
    "NETNS_DIR",
    "PERSISTENT_OWNER",
    "PREFIX",
    "clean_leftovers",
    "delete_namespace",
    "inside_namespace",
    "kill_pids",
    "lab_unavailable_reason",
    "list_lab_namespaces",
    "persistent_labs",
    "run_ip",
]
