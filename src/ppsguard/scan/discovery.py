"""Host discovery: is anybody there before we spend 65,535 timeouts on it?

A host is up when it answers anything: an ICMP echo reply (datagram ICMP socket; needs root or
net.ipv4.ping_group_range) or any TCP answer (connect or refusal) on 80, 443 or 22. Loopback is
always up. `-Pn` skips this and treats every host as up.
"""

from __future__ import annotations

import select
import socket
import struct
import time
from collections.abc import Sequence

from ppsguard.model.net import IPAddress
from ppsguard.model.scan import PortState, Reason
from ppsguard.scan.engines import connect
from ppsguard.scan.engines.base import EngineConfig, EngineStats, family, sockaddr
from ppsguard.scan.timing import TimingPreset

_PING_PORTS = (80, 443, 22)


def _ping(hosts: Sequence[IPAddress], timeout: float, tries: int) -> set[IPAddress]:
    """ICMP echo over datagram ICMP sockets; returns the addresses that replied."""
    alive: set[IPAddress] = set()
    socks: dict[int, socket.socket] = {}
    try:
        for fam, proto, req in (
            (socket.AF_INET, socket.IPPROTO_ICMP, 8),
            (socket.AF_INET6, socket.IPPROTO_ICMPV6, 128),
        ):
            try:
                s = socket.socket(fam, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK, proto)
            except OSError:
                continue
            socks[req] = s
        if not socks:
            return alive
        lookup = {str(h): h for h in hosts}
        for attempt in range(tries):
            for host in hosts:
                if host in alive:
                    continue
                sender = socks.get(8 if host.version == 4 else 128)
                if sender is None:
                    continue
                payload = struct.pack("!BBHHH", 8 if host.version == 4 else 128, 0, 0, 0, attempt)
                try:
                    sender.sendto(payload + b"ppsguard", sockaddr(host, 0))
                except OSError:
                    continue
            end = time.monotonic() + timeout
            while time.monotonic() < end and len(alive) < len(hosts):
                ready, _, _ = select.select(
                    list(socks.values()), [], [], max(0.0, end - time.monotonic())
                )
                for s in ready:
                    try:
                        data, addr = s.recvfrom(2048)
                    except OSError:
                        continue
                    if data and data[0] in (0, 129):
                        found = lookup.get(str(addr[0]).split("%")[0])
                        if found is not None:
                            alive.add(found)
            if len(alive) == len(hosts):
                break
    finally:
        for s in socks.values():
            s.close()
    return alive


def discover(
    hosts: Sequence[IPAddress],
    preset: TimingPreset,
    stats: EngineStats,
    *,
    max_rate: float | None = None,
) -> set[IPAddress]:
    """The subset of `hosts` that answered anything; TCP probes within `max_rate` packets/s."""
    alive: set[IPAddress] = {h for h in hosts if h.is_loopback or _is_local_address(h)}
    rest = [h for h in hosts if h not in alive]
    if not rest:
        return alive
    timeout = min(1.0, max(preset.initial_timeout, 0.5))
    alive |= _ping(rest, timeout, 2)
    rest = [h for h in rest if h not in alive]
    if not rest:
        return alive

    def emit(
        address: IPAddress, port: int, state: PortState, reason: Reason, ttl: int | None
    ) -> None:
        if state in (PortState.OPEN, PortState.CLOSED) or reason is Reason.ADMIN_PROHIBITED:
            alive.add(address)

    cfg = EngineConfig(preset=preset, max_retries=1, max_rate=max_rate, window=256)
    cfg.deadline = time.monotonic() + 3 * timeout
    connect.run(((h, p) for h in rest for p in _PING_PORTS), cfg, emit, stats)
    return alive


def _is_local_address(address: IPAddress) -> bool:
    try:
        with socket.socket(family(address), socket.SOCK_DGRAM) as s:
            s.bind(sockaddr(address, 0))
            return True
    except OSError:
        return False
