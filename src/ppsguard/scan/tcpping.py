"""TCP ACK discovery probes (root): a bare ACK to a port of a host behind a router; any live host
answers RST, open port or not, which gets through stateless filters that drop SYNs and pings.

The RST must carry our keyed cookie as its sequence number (RFC 793: a RST answering an ACK takes
the ACK's acknowledgement number), so a stray RST cannot make an address look up. Sends the
kernel refuses for one address leave that address unanswered.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
import select
import socket
import time
from collections.abc import Callable, Sequence

from ppsguard.model.net import IPAddress
from ppsguard.scan.engines import discovery_packets as pk
from ppsguard.scan.engines.base import send_patiently, sockaddr, source_address


def ack_ping(  # noqa: PLR0917
    hosts: Sequence[IPAddress],
    port: int,
    timeout: float,
    tries: int,
    deadline: float | None,
    progress: Callable[[int], None],
) -> dict[bytes, float]:
    """Packed address -> round-trip seconds for the hosts that answered an ACK with our RST."""
    key = secrets.token_bytes(16)
    sport = 40000 + secrets.randbelow(20000)
    socks: dict[int, socket.socket] = {}
    for version, fam in ((4, socket.AF_INET), (6, socket.AF_INET6)):
        try:
            socks[version] = socket.socket(fam, socket.SOCK_RAW | socket.SOCK_NONBLOCK, 6)
        except OSError:
            continue
    alive: dict[bytes, float] = {}
    sent_at: dict[bytes, float] = {}
    buffer = bytearray(2048)

    def cookie(packed: bytes) -> int:
        return int.from_bytes(hashlib.blake2b(packed, key=key, digest_size=4).digest(), "big")

    def drain(wait: float) -> None:
        ready, _, _ = select.select(list(socks.values()), [], [], max(0.0, wait))
        now = time.monotonic()
        for sock in ready:
            while True:
                try:
                    n, addr = sock.recvfrom_into(buffer)
                except (BlockingIOError, InterruptedError):
                    break
                data = bytes(buffer[:n])
                if sock is socks.get(4):
                    if n < 20:
                        continue
                    packed, data = data[12:16], data[(data[0] & 0x0F) * 4 :]
                else:
                    packed = ipaddress.IPv6Address(str(addr[0]).split("%")[0]).packed
                rst = pk.parse_rst(data)
                if rst is None or rst[0] != port or rst[1] != sport or packed in alive:
                    continue
                if packed in sent_at and rst[2] == cookie(packed):
                    alive[packed] = now - sent_at[packed]

    try:
        if not socks:
            progress(len(hosts) * tries)
            return alive
        sources: dict[bytes, IPAddress | None] = {}
        for attempt in range(tries):
            rest = [h for h in hosts if h.packed not in alive]
            for i, host in enumerate(rest):
                if deadline is not None and time.monotonic() >= deadline:
                    return alive
                progress(1)
                packed = host.packed
                if packed not in sources:
                    try:
                        sources[packed] = source_address(host)
                    except OSError:
                        sources[packed] = None
                src, sock = sources[packed], socks.get(host.version)
                if src is None or sock is None:
                    continue
                segment = pk.tcp_ack(src, host, sport, port, secrets.randbits(32), cookie(packed))
                sent_at.setdefault(packed, time.monotonic())
                send_patiently(sock.sendto, segment, sockaddr(host, 0))
                if i % 64 == 63:
                    drain(0.0)
            end = time.monotonic() + timeout
            if deadline is not None:
                end = min(end, deadline)
            while (now := time.monotonic()) < end and len(alive) < len(hosts):
                drain(end - now)
            progress(sum(1 for h in rest if h.packed in alive) * (tries - 1 - attempt))
    finally:
        for sock in socks.values():
            sock.close()
    return alive
