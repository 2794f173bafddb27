"""Network namespaces: find every one on the host, and run a function inside one safely.

Discovery reads /run/netns (named namespaces, `ip netns`) and /proc/*/ns/net (every namespace a
process lives in, e.g. containers), keyed by the namespace inode.

Container attribution: for each namespace other than the caller's, the /proc/<pid>/cgroup of up
to MAX_CGROUP_READS of its processes is read until one names a container (docker, containerd,
podman, LXC, systemd-nspawn, ...; see `containers.py`). The caller's own namespace is never
attributed: containers with host networking share it without owning it.

Entering: Python 3.11 has no `os.setns`, so `libc.setns(fd, CLONE_NEWNET)` is called through
ctypes -- always in a fresh, dedicated thread that exits when the function returns. A network
namespace belongs to a thread (task), so the caller's thread can never be left in the wrong
namespace, even if the function raises. Sockets (netlink included) opened in that thread stay
bound to the namespace after the thread is gone.
"""

# ruff: noqa: PTH115, PTH116, PTH208 -- /proc walks use os.* on str paths: no Path object per entry

from __future__ import annotations

import ctypes
import errno
import os
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from ppsguard.digits import decimal
from ppsguard.errors import KernelFeatureMissing, PermissionDenied, UsageError
from ppsguard.inventory.containers import parse_container
from ppsguard.inventory.procfs import parse_ns_link
from ppsguard.model.sockets import ContainerRef, NetnsInfo

CLONE_NEWNET = 0x40000000
RUN_NETNS = Path("/run/netns")
MAX_CGROUP_READS = 16  # per namespace: pids whose cgroup is read to find its container
T = TypeVar("T")


def current() -> NetnsInfo:
    """The namespace of the calling thread."""
    inode = os.stat("/proc/thread-self/ns/net").st_ino
    return NetnsInfo(inode=inode, name=_names().get(inode), pid=os.getpid())


def _names() -> dict[int, str]:
    names: dict[int, str] = {}
    try:
        entries = sorted(os.listdir(RUN_NETNS))
    except OSError:
        return names
    for name in entries:
        try:
            names.setdefault(os.stat(RUN_NETNS / name).st_ino, name)
        except OSError:
            continue
    return names


def discover() -> tuple[list[NetnsInfo], int]:
    """Every distinct network namespace (named ones and those of processes), and how many
    processes' namespaces could not be read (not root)."""
    names = _names()
    found: dict[int, NetnsInfo] = {}
    members: dict[int, list[int]] = {}
    unreadable = 0
    for entry in os.listdir("/proc"):
        if decimal(entry) is None:
            continue
        try:
            inode = parse_ns_link(os.readlink(f"/proc/{entry}/ns/net"))
        except FileNotFoundError:
            continue  # the process exited
        except OSError:
            unreadable += 1
            continue
        if inode is None:
            continue
        if inode not in found:
            found[inode] = NetnsInfo(inode=inode, name=names.get(inode), pid=int(entry))
            members[inode] = []
        if len(members[inode]) < MAX_CGROUP_READS:
            members[inode].append(int(entry))
    for inode, name in names.items():
        if inode not in found:
            found[inode] = NetnsInfo(inode=inode, name=name)
    own = os.stat("/proc/thread-self/ns/net").st_ino
    for inode, pids in members.items():
        if inode != own:  # host-network containers share the caller's namespace: not theirs
            found[inode] = _attributed(found[inode], pids)
    ordered = sorted(found.values(), key=lambda ns: (ns.inode != own, ns.name or "", ns.inode))
    return ordered, unreadable


def container_of_pid(pid: int) -> ContainerRef | None:
    """The container `pid` belongs to, from /proc/<pid>/cgroup (None: none, or unreadable)."""
    try:
        with open(f"/proc/{pid}/cgroup", "rb") as handle:  # noqa: PTH123
            text = handle.read(65536).decode("utf-8", "replace")
    except OSError:
        return None
    return parse_container(text)


def _attributed(ns: NetnsInfo, pids: list[int]) -> NetnsInfo:
    """`ns` with the container of the first of `pids` that is in one (several containers can
    share a namespace, e.g. a Kubernetes pod: the first found is reported)."""
    for pid in pids:
        container = container_of_pid(pid)
        if container is not None:
            return replace(ns, container=container)
    return ns


def resolve(name: str) -> NetnsInfo:
    """A namespace by /run/netns name, by "net:[INODE]"/INODE, by "pid:PID", or by the
    container it belongs to ("docker:3f2a1b9c0d4e", as `pps sockets` labels it)."""
    names = _names()
    for inode, known in names.items():
        if known == name:
            return NetnsInfo(inode=inode, name=name)
    pid = decimal(name[4:]) if name.startswith("pid:") else None
    if pid is not None:
        try:
            pid_inode = parse_ns_link(os.readlink(f"/proc/{pid}/ns/net"))
        except OSError as error:
            raise UsageError(f"cannot read the namespace of pid {pid}", token=name) from error
        if pid_inode is not None:
            found = NetnsInfo(inode=pid_inode, name=names.get(pid_inode), pid=pid)
            own = os.stat("/proc/thread-self/ns/net").st_ino
            return found if pid_inode == own else _attributed(found, [pid])
    wanted = parse_ns_link(name) or decimal(name)
    if wanted is not None or ":" in name:
        for ns in discover()[0]:
            if ns.inode == wanted or (ns.container is not None and str(ns.container) == name):
                return ns
    raise UsageError(
        "no such network namespace", token=name, hint="see `ip netns list` or use --all-netns"
    )


def _open(ns: NetnsInfo) -> int:
    candidates: list[str] = []
    if ns.name:
        candidates.append(str(RUN_NETNS / ns.name))
    if ns.pid is not None:
        candidates.append(f"/proc/{ns.pid}/ns/net")
    last: OSError | None = None
    for path in candidates:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as error:
            last = error
            continue
        if os.fstat(fd).st_ino == ns.inode:
            return fd
        os.close(fd)  # the pid was reused by a process in another namespace
    if isinstance(last, PermissionError):
        raise PermissionDenied(f"cannot open namespace {ns}: permission denied (run as root)")
    raise KernelFeatureMissing(f"namespace {ns} is gone or has no handle")


def setns_current_thread(fd: int) -> None:
    """Move the calling thread into the network namespace open at `fd` (ctypes setns)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        if code in (errno.EPERM, errno.EACCES):
            raise PermissionDenied("setns into a network namespace needs CAP_SYS_ADMIN (root)")
        raise KernelFeatureMissing(f"setns failed: {os.strerror(code)}")


def run_in_netns(ns: NetnsInfo, function: Callable[[], T], *, timeout: float = 300.0) -> T:
    """Call `function` inside `ns` in a dedicated thread that exits afterwards; return its result.

    Runs in the caller's thread when `ns` is already the caller's namespace.
    """
    if os.stat("/proc/thread-self/ns/net").st_ino == ns.inode:
        return function()
    fd = _open(ns)
    results: list[T] = []
    errors: list[BaseException] = []

    def body() -> None:
        try:
            setns_current_thread(fd)
            results.append(function())
        except BaseException as error:  # re-raised in the caller's thread
            errors.append(error)

    try:
        worker = threading.Thread(target=body, name=f"ppsguard-netns-{ns.inode}", daemon=True)
        worker.start()
        worker.join(timeout)
    finally:
        os.close(fd)
    if worker.is_alive():
        raise KernelFeatureMissing(f"work inside namespace {ns} did not finish in {timeout:g}s")
    if errors:
        raise errors[0]
    return results[0]
