"""`collect()`: the socket inventory of one, or every, network namespace, with owners.

Sources: netlink sock_diag (kernel-side state filter) and, when netlink is unavailable, the
/proc/net tables (`source="procfs"` forces it; the records are identical). Owners come from one
/proc/*/fd walk shared by all namespaces (socket inodes are unique host-wide). Everything that
could not be seen becomes a sentence in `Inventory.gaps`.

Cost (50k loopback TCP sockets, the loaded 2-core benchmark machine, benchmarks/inventory.py):
the full table with all owners takes ~320-440 ms (`ss -tanp` ~1.1-2 s, warm psutil ~0.9 s); the
listeners alone ~1 ms. Of the full table: netlink dump ~100 ms CPU (kernel ~45), the owner walk
~160-180 ms (about 70% of it readlink syscalls), building the records ~85 ms (records.py: a
same-layout twin class instead of the frozen dataclass __init__: ~4x cheaper). The walk runs in a
thread beside the dump; a serial walk, a forked child and a spawned helper were measured no
faster under load (GIL; copy-on-write faults and CPU contention for the child). The walk alone
costs about a fifth of psutil's whole call, so "5x faster than psutil" is out of reach for any
design that reads every /proc/<pid>/fd link, which is the only way to find every holder.
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Literal

from ppsguard.errors import KernelFeatureMissing, PermissionDenied
from ppsguard.inventory import netns as netns_mod
from ppsguard.inventory import sockdiag
from ppsguard.inventory.owners import CompactWalk, ProcessDescriber, walk_compact
from ppsguard.inventory.procfs import parse_proc_net
from ppsguard.inventory.raw import RawSocket
from ppsguard.inventory.records import build_records
from ppsguard.knowledge.ranges import host_ephemeral_range
from ppsguard.model.net import Protocol
from ppsguard.model.sockets import (
    TCP_CLOSE,
    TCP_ESTABLISHED,
    TCP_LISTEN,
    Inventory,
    NetnsInfo,
    Owner,
)

Source = Literal["auto", "netlink", "procfs"]
OwnerMode = bool | Literal["first"]
_PROC_FILES = {Protocol.TCP: "tcp", Protocol.UDP: "udp", Protocol.RAW: "raw"}


def state_numbers(protocol: Protocol, *, listening: bool, active: bool) -> set[int]:
    """The kernel state numbers that make up "listening" / "active" for `protocol`."""
    datagram = protocol in (Protocol.UDP, Protocol.RAW)
    numbers: set[int] = set()
    if listening:
        numbers.add(TCP_CLOSE if datagram else TCP_LISTEN)
    if active:
        numbers |= {TCP_ESTABLISHED} if datagram else set(range(1, 13)) - {TCP_LISTEN}
    return numbers


def _dump_netlink(
    protocols: Sequence[Protocol],
    numbers: dict[Protocol, set[int]],
    gaps: list[str],
    label: str,
    *,
    fallback: bool,
) -> list[RawSocket]:
    rows: list[RawSocket] = []
    sock = sockdiag.open_socket()
    try:
        for protocol in protocols:
            mask = sockdiag.state_mask(numbers[protocol])
            try:
                rows.extend(sockdiag.dump(sock, protocol, states=mask))
            except sockdiag.ProtocolNotSupported as error:
                if fallback and protocol in _PROC_FILES:
                    # e.g. raw_diag not loaded: /proc/net/raw still lists raw sockets.
                    rows.extend(_dump_procfs([protocol], numbers, gaps, label))
                else:
                    gaps.append(f"{protocol} sockets not listed{label}: {error}")
    finally:
        sock.close()
    return rows


def _dump_procfs(
    protocols: Sequence[Protocol], numbers: dict[Protocol, set[int]], gaps: list[str], label: str
) -> list[RawSocket]:
    rows: list[RawSocket] = []
    for protocol in protocols:
        base = _PROC_FILES.get(protocol)
        if base is None:
            gaps.append(f"{protocol} sockets not listed{label}: /proc/net has no table for it")
            continue
        for name in (base, base + "6"):
            path = f"/proc/thread-self/net/{name}"
            try:
                with open(path, encoding="ascii", errors="replace") as handle:  # noqa: PTH123
                    text = handle.read()
            except FileNotFoundError:
                continue  # e.g. IPv6 disabled
            except OSError as error:
                gaps.append(f"{path} unreadable{label}: {error.strerror}")
                continue
            wanted = numbers[protocol]
            rows.extend(r for r in parse_proc_net(text, protocol, source=path) if r.state in wanted)
    return rows


def _dump_here(
    protocols: Sequence[Protocol],
    numbers: dict[Protocol, set[int]],
    source: Source,
    gaps: list[str],
    label: str,
) -> tuple[list[RawSocket], str]:
    if source != "procfs":
        try:
            rows = _dump_netlink(protocols, numbers, gaps, label, fallback=source == "auto")
            return rows, "netlink"
        except (KernelFeatureMissing, PermissionDenied) as error:
            if source == "netlink":
                raise
            gaps.append(f"netlink unavailable{label} ({error}); read /proc/net instead")
    return _dump_procfs(protocols, numbers, gaps, label), "procfs"


def collect(
    *,
    listening: bool = True,
    active: bool = False,
    protocols: Iterable[Protocol] = (Protocol.TCP, Protocol.UDP),
    port: int | None = None,
    process: str | None = None,
    netns: str | None = None,
    all_netns: bool = False,
    owners: OwnerMode = True,
    source: Source = "auto",
    namespaces: Sequence[NetnsInfo] | None = None,
) -> Inventory:
    """List sockets. `listening`: TCP LISTEN and bound unconnected UDP/raw; `active`: the rest.

    `owners=True` finds every holder, `"first"` stops the walk once each socket has one, False
    skips it (unless `process` needs it). `port` matches the local port, or the remote port of
    active sockets. `netns` names one namespace; `all_netns` covers every namespace on the host.
    """
    protocol_list = list(dict.fromkeys(Protocol(p) for p in protocols))
    numbers = {p: state_numbers(p, listening=listening, active=active) for p in protocol_list}
    gaps: list[str] = []
    if namespaces is not None:
        targets = list(namespaces)
    elif all_netns:
        targets, unreadable = netns_mod.discover()
        if unreadable:
            gaps.append(
                f"namespaces of {plural(unreadable, 'process')} could not be read "
                "(run as root to see all)"
            )
    elif netns is not None:
        targets = [netns_mod.resolve(netns)]
    else:
        targets = [netns_mod.current()]

    want_owners: OwnerMode = owners if owners or process is None else True
    walker: _BackgroundWalk | None = _BackgroundWalk() if want_owners is True else None
    with _gc_paused():
        if walker is not None:
            walker.start()
        try:
            per_namespace, used_sources = _dump_all(
                targets=targets,
                protocol_list=protocol_list,
                numbers=numbers,
                source=source,
                gaps=gaps,
                port=port,
                netns=netns,
                all_netns=all_netns,
            )
        finally:
            found = walker.result() if walker is not None else None
        return _finish(
            per_namespace=per_namespace,
            used_sources=used_sources,
            found=found,
            want_owners=want_owners,
            process=process,
            gaps=gaps,
        )


class _BackgroundWalk:
    """The all-holders owner walk, run in a thread while the kernel dumps (both mostly syscalls)."""

    def __init__(self) -> None:
        self._box: list[CompactWalk] = []
        self._errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, name="ppsguard-owners", daemon=True)

    def _run(self) -> None:
        try:
            self._box.append(walk_compact(None))
        except BaseException as error:  # re-raised in the caller
            self._errors.append(error)

    def start(self) -> None:
        self._thread.start()

    def result(self) -> CompactWalk:
        self._thread.join(600)
        if self._errors:
            raise self._errors[0]
        if not self._box:
            raise KernelFeatureMissing("the /proc owner walk did not finish in 600 s")
        return self._box[0]


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic GC while building ~100k acyclic objects, and the result goes straight to the
    oldest generation.

    Paused, the collector would otherwise run a full collection every few hundred allocations;
    and every record left waiting in the young generation is traversed by the first collection
    after this call (~40 ms per 50k records, paid by the caller). So: collect the caller's young
    generations first (normally a few hundred objects), pause, and at the end move what this call
    allocated into the oldest generation with gc.freeze() + gc.unfreeze() ("put them back into the
    oldest generation"), where the next full collection examines them like any long-lived object.
    Only when the collector was enabled and nothing is frozen: a caller that disabled the
    collector, or froze objects itself, keeps full control.
    """
    was_enabled = gc.isenabled()
    promote = was_enabled and gc.get_freeze_count() == 0
    if promote:
        gc.collect(1)
    gc.disable()
    try:
        yield
    finally:
        if promote:
            gc.freeze()
            gc.unfreeze()
        if was_enabled:
            gc.enable()


def _dump_all(
    *,
    targets: list[NetnsInfo],
    protocol_list: list[Protocol],
    numbers: dict[Protocol, set[int]],
    source: Source,
    gaps: list[str],
    port: int | None,
    netns: str | None,
    all_netns: bool,
) -> tuple[list[tuple[NetnsInfo, list[RawSocket]]], set[str]]:
    per_namespace: list[tuple[NetnsInfo, list[RawSocket]]] = []
    used_sources: set[str] = set()
    for ns in targets:
        label = "" if len(targets) == 1 and netns is None and not all_netns else f" in {ns}"
        try:
            rows, used = netns_mod.run_in_netns(
                ns,
                lambda label=label: _dump_here(protocol_list, numbers, source, gaps, label),  # type: ignore[misc]
            )
        except PermissionDenied as error:
            if netns is not None:
                raise
            gaps.append(f"namespace {ns} not inspected: {error}")
            continue
        except KernelFeatureMissing as error:
            if netns is not None or not all_netns:
                raise
            gaps.append(f"namespace {ns} not inspected: {error}")
            continue
        used_sources.add(used)
        if port is not None:
            rows = [
                r
                for r in rows
                if r.local_port == port or (r.remote_port == port and r.state not in (TCP_LISTEN,))
            ]
        per_namespace.append((ns, rows))
    return per_namespace, used_sources


def _finish(
    *,
    per_namespace: list[tuple[NetnsInfo, list[RawSocket]]],
    used_sources: set[str],
    found: CompactWalk | None,
    want_owners: OwnerMode,
    process: str | None,
    gaps: list[str],
) -> Inventory:
    describer = ProcessDescriber()
    holders = CompactWalk()
    if want_owners:
        if found is None:  # "first" mode: a walk scoped to these inodes, stopping early
            inodes = {r.inode for _, rows in per_namespace for r in rows if r.inode}
            found = walk_compact(inodes, all_holders=False)
        holders = found
    records, missing = build_records(per_namespace, holders, describer, host_ephemeral_range())
    if want_owners:
        if holders.unreadable and missing:
            gaps.append(
                f"owners unknown for {plural(missing, 'socket')}: "
                f"{plural(holders.unreadable, 'process')} could not be read (run as root)"
            )
        elif holders.unreadable:
            gaps.append(
                f"owners may be incomplete: {plural(holders.unreadable, 'process')} could not "
                "be read (run as root)"
            )
        elif missing:
            gaps.append(
                f"no visible holder for {plural(missing, 'socket')} (kernel sockets, or processes "
                "outside this pid namespace)"
            )
    if process is not None:
        records = [r for r in records if any(_matches(o, process) for o in r.owners)]
    return Inventory(
        records=tuple(records),
        gaps=tuple(gaps),
        namespaces=tuple(ns for ns, _ in per_namespace),
        source="+".join(sorted(used_sources)) or "none",
        owners_resolved=bool(want_owners),
    )


def _matches(owner: Owner, name: str) -> bool:
    if owner.comm == name:
        return True
    if owner.exe and os.path.basename(owner.exe) == name:  # noqa: PTH119
        return True
    return bool(owner.cmdline) and os.path.basename(owner.cmdline[0]) == name  # noqa: PTH119


def plural(count: int, noun: str) -> str:
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {noun}es" if noun.endswith("s") else f"{count} {noun}s"


__all__ = ["collect", "plural", "state_numbers"]
