"""ICMP discovery probes: echo (IPv4 and IPv6) and, with raw sockets, IPv4 timestamp requests.

Root uses raw ICMP sockets (echo and timestamp, as nmap's default discovery does); without root,
datagram ICMP sockets where net.ipv4.ping_group_range allows them (echo only). A send the kernel
refuses for one address (EACCES toward a broadcast address, EPERM from a local firewall) leaves
that address unanswered; it never ends the sweep.
"""

from __future__ import annotations

import os
import select
import socket
import time
from collections.abc import Callable, Sequence

from ppsguard.model.net import IPAddress
from ppsguard.scan.engines import discovery_packets as pk
from ppsguard.scan.engines.base import send_patiently, sockaddr


def _open(raw: bool) -> dict[int, tuple[socket.socket, bool]]:
    """IP version -> (socket, is raw); empty when neither kind is allowed."""
    socks: dict[int, tuple[socket.socket, bool]] = {}
    for version, fam, proto in (
        (4, socket.AF_INET, socket.IPPROTO_ICMP),
        (6, socket.AF_INET6, socket.IPPROTO_ICMPV6),
    ):
        for kind in (socket.SOCK_RAW, socket.SOCK_DGRAM) if raw else (socket.SOCK_DGRAM,):
            try:
                sock = socket.socket(fam, kind | socket.SOCK_NONBLOCK, proto)
            except OSError:
                continue
            socks[version] = (sock, kind == socket.SOCK_RAW)
            break
    return socks


def _requests(address: IPAddress, is_raw: bool, ident: int, seq: int) -> list[bytes]:
    if address.version == 6:
        return [pk.icmp6_echo(ident, seq)]
    if is_raw:
        return [pk.icmp4(pk.ECHO4, ident, seq), pk.icmp4(pk.TIMESTAMP4, ident, seq)]
    return [pk.icmp4(pk.ECHO4, ident, seq)]


def ping(  # noqa: PLR0917
    hosts: Sequence[IPAddress],
    timeout: float,
    tries: int,
    raw: bool,
    deadline: float | None,
    rate: float | None,
    progress: Callable[[int], None],
) -> dict[IPAddress, tuple[str, float]]:
    """Address -> (reason, round-trip seconds) for the hosts that replied."""
    alive: dict[IPAddress, tuple[str, float]] = {}
    socks = _open(raw)
    if not socks:
        progress(len(hosts) * tries)
        return alive
    ident = os.getpid() & 0xFFFF
    sent_at: dict[IPAddress, float] = {}
    lookup = {str(h): h for h in hosts}
    readers = {entry[0]: (version, entry[1]) for version, entry in socks.items()}
    buffer = bytearray(2048)

    def drain(wait: float) -> None:
        ready, _, _ = select.select(list(readers), [], [], max(0.0, wait))
        now = time.monotonic()
        for sock in ready:
            version, is_raw = readers[sock]
            while True:
                try:
                    n, addr = sock.recvfrom_into(buffer)
                except (BlockingIOError, InterruptedError):
                    break
                data = bytes(buffer[:n])
                if version == 4 and is_raw and n >= 20:
                    data = data[(data[0] & 0x0F) * 4 :]
                reason = pk.parse_icmp_reply(data, version)
                found = lookup.get(str(addr[0]).split("%")[0])
                if reason and found is not None and found not in alive and found in sent_at:
                    alive[found] = (reason, now - sent_at[found])

    try:
        interval = 0.0 if rate is None else 1.0 / rate
        for attempt in range(tries):
            rest = [h for h in hosts if h not in alive]
            started = time.monotonic()
            for i, host in enumerate(rest):
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    return alive
                if interval and (delay := started + i * interval - now) > 0:
                    drain(delay)
                entry = socks.get(host.version)
                progress(1)
                if entry is None:
                    continue
                sock, is_raw = entry
                sent_at.setdefault(host, time.monotonic())
                for request in _requests(host, is_raw, ident, attempt):
                    send_patiently(sock.sendto, request, sockaddr(host, 0))
                if i % 256 == 255:
                    drain(0.0)
            end = time.monotonic() + timeout
            if deadline is not None:
                end = min(end, deadline)
            while (now := time.monotonic()) < end and len(alive) < len(hosts):
                drain(end - now)
            progress(sum(1 for h in rest if h in alive) * (tries - 1 - attempt))
            if len(alive) == len(hosts):
                break
    finally:
        for sock, _raw in socks.values():
            sock.close()
    return alive
