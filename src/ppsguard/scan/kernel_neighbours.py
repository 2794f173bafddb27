"""Neighbour discovery without root: let the kernel resolve addresses on the link (an empty UDP
datagram to the discard port triggers ARP/ND) and read the answer from its neighbour table over
rtnetlink (RTM_GETNEIGH, allowed unprivileged).

Addresses go in a sliding window of half the table's hard limit (gc_thresh3: 1,024 entries by
default), so the table never overflows — thousands of connects to unresolved neighbours are what
made the old sweep miss live hosts. A silent address costs the kernel's own retries (3
solicitations, 1 s apart, by default): a /22 of mostly empty addresses takes ~6 s. Nothing here
edits the neighbour table.
"""

from __future__ import annotations

import errno
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ppsguard.model.net import IPAddress
from ppsguard.scan.engines import discovery_packets as pk
from ppsguard.scan.engines.base import sockaddr

_POLL = 0.05
_SOCKETS = 4
_SYSCTL = Path("/proc/sys/net/ipv4/neigh/default")  # this thread's namespace


def _sysctl(name: str, default: int) -> int:
    try:
        return int((_SYSCTL / name).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return default


def limits() -> tuple[int, float]:
    """(addresses in flight: half the table's hard limit, at most 512; seconds before an
    unanswered address counts as failed: the kernel's solicitations plus a margin)."""
    window = max(16, min(512, _sysctl("gc_thresh3", 1024) // 2))
    give_up = _sysctl("mcast_solicit", 3) * _sysctl("retrans_time_ms", 1000) / 1000 + 0.5
    return window, give_up


def _table(sock: socket.socket, family: int, seq: int) -> dict[bytes, int]:
    sock.sendto(pk.neighbour_dump_request(family, seq), (0, 0))  # (0, 0): the kernel
    states: dict[bytes, int] = {}
    while True:
        data = sock.recv(1 << 16)
        part, done = pk.parse_neighbours(data)
        states.update(part)
        if done or not data:
            return states


def resolve(
    addresses: Sequence[IPAddress], deadline: float | None, progress: Callable[[int], None]
) -> tuple[set[bytes], set[bytes]]:
    """(packed addresses the kernel resolved, packed addresses it gave up on); the rest were not
    decided (deadline) or could not be asked."""
    answered: set[bytes] = set()
    failed: set[bytes] = set()
    try:
        link = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)  # NETLINK_ROUTE
        link.bind((0, 0))
        link.settimeout(5.0)  # a dump answers at once; never hang on a kernel that does not
    except OSError:
        return answered, failed
    # a datagram waiting for its neighbour holds ~1 kB of its socket's send buffer (~200 kB):
    # a few sockets in turn keep the window full
    udp = [
        {4: socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK),
         6: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK)}
        for _ in range(_SOCKETS)
    ]  # fmt: skip
    sent = 0
    pending: dict[bytes, tuple[int, float]] = {}  # packed -> (version, asked at)
    queue = list(reversed(addresses))
    window, give_up = limits()
    seq = 0
    try:
        while queue or pending:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            while queue and len(pending) < window:
                address = queue.pop()
                try:
                    udp[sent % _SOCKETS][address.version].sendto(b"", sockaddr(address, 9))
                    sent += 1
                except OSError as exc:
                    if exc.errno in (errno.ENOBUFS, errno.EAGAIN, errno.EINVAL):
                        queue.append(address)  # table or buffer full: ask again next round
                        break
                    # EHOSTUNREACH, EACCES: the table answers (failed) or it is not a host
                pending[address.packed] = (address.version, now)
            time.sleep(_POLL)
            now = time.monotonic()
            for version, family in ((4, socket.AF_INET), (6, socket.AF_INET6)):
                if not any(v == version for v, _t in pending.values()):
                    continue
                seq += 1
                states = _table(link, family, seq)
                for packed, (v, asked) in list(pending.items()):
                    if v != version:
                        continue
                    state = states.get(packed, 0)
                    if state & pk.NUD_ANSWERED:
                        answered.add(packed)
                    elif state & pk.NUD_FAILED or now - asked > give_up:
                        failed.add(packed)
                    else:
                        continue
                    del pending[packed]
                    progress(1)
    finally:
        link.close()
        for pair in udp:
            for sock in pair.values():
                sock.close()
    return answered, failed
