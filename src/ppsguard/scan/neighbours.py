"""Neighbour sweeps on directly attached links: raw ARP (IPv4, AF_PACKET) and neighbour
solicitation (IPv6, raw ICMPv6), as nmap asks a local link before it sends anything else.

A host on the link that answers ARP or ND is up, whatever its firewall does to IP; one that does
not answer after the retries is down — in milliseconds, without one connect() queued behind an
unresolved neighbour per port. Needs CAP_NET_RAW; `available()` says whether it can run. This
module sends only to the addresses it is given and never edits the kernel's neighbour table.
"""

from __future__ import annotations

import ipaddress
import select
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ppsguard.model.net import IPAddress
from ppsguard.scan.engines import discovery_packets as pk
from ppsguard.scan.engines.base import send_patiently
from ppsguard.scan.links import Links, parse_local4, parse_local6, parse_routes4, parse_routes6

Progress = Callable[[int], None]  # called with a number of requests sent or made unnecessary
_PROC = Path("/proc/thread-self/net")  # this thread's namespace (the lab's scanner runs in one)
_ARPHRD_ETHER = 1
_BATCH = 32  # read answers this often while sending: RTTs stay honest


def load_links() -> Links:
    """The route tables of the calling thread's network namespace."""
    texts: list[str] = []
    for name in ("route", "ipv6_route", "fib_trie", "if_inet6"):
        try:
            texts.append((_PROC / name).read_text())
        except OSError:
            texts.append("")
    routes = parse_routes4(texts[0]) + parse_routes6(texts[1])
    return Links(routes, parse_local4(texts[2]) | parse_local6(texts[3]))


def available() -> bool:
    """Whether raw link-layer sockets are allowed here (root with CAP_NET_RAW)."""
    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(pk.ETH_P_ARP)).close()
    except OSError:
        return False
    return True


@dataclass(slots=True)
class SweepConfig:
    tries: int = 2
    wait: float = 0.25  # longest wait for answers after a pass (shortened by the RTTs seen)
    deadline: float | None = None  # time.monotonic() after which nothing is sent
    max_rate: float | None = None
    progress: Progress = field(default=lambda n: None)


class _Port:
    """One raw socket on one interface and how to send it a request for one address."""

    def __init__(self, sock: socket.socket, send: Callable[[IPAddress], None]) -> None:
        self.sock = sock
        self.send = send


def _arp_port(interface: str, targets: Sequence[IPAddress]) -> _Port | None:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(pk.ETH_P_ARP))
    try:
        sock.bind((interface, pk.ETH_P_ARP))
        name = sock.getsockname()
        source = _source(targets)
        if name[3] != _ARPHRD_ETHER or source is None or source.version != 4:
            sock.close()  # not an Ethernet-like link (tun, wireguard): probes will do
            return None
    except OSError:
        sock.close()
        return None
    sock.setblocking(False)
    mac = bytes(name[4][:6])
    dest = (interface, pk.ETH_P_ARP, 0, 0, pk.BROADCAST_MAC)

    assert isinstance(source, ipaddress.IPv4Address)
    head = pk.arp_request(mac, source, ipaddress.IPv4Address(0))[: -len(source.packed)]

    def send(address: IPAddress) -> None:
        sock.sendto(head + address.packed, dest)  # only the target address differs

    return _Port(sock, send)


def _nd_port(interface: str, targets: Sequence[IPAddress]) -> _Port | None:
    source = _source(targets)
    if source is None or source.version != 6:
        return None
    try:
        index = socket.if_nametoindex(interface)
        with socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, 0) as link:
            link.bind((interface, 0))
            mac = bytes(link.getsockname()[4][:6])
        sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    except OSError:
        return None
    try:
        for option in (socket.IPV6_MULTICAST_HOPS, socket.IPV6_UNICAST_HOPS):
            sock.setsockopt(socket.IPPROTO_IPV6, option, 255)  # RFC 4861: hop limit 255
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
        sock.bind((str(source), 0, 0, index if source.is_link_local else 0))
    except OSError:
        sock.close()
        return None
    sock.setblocking(False)

    def send(address: IPAddress) -> None:
        assert isinstance(address, ipaddress.IPv6Address)
        group = str(pk.solicited_node(address))
        sock.sendto(pk.neighbour_solicitation(address, mac), (group, 0, 0, index))

    return _Port(sock, send)


def _source(targets: Sequence[IPAddress]) -> IPAddress | None:
    """Our address toward the first target the kernel routes (no packet is sent)."""
    for target in targets[:8]:
        family = socket.AF_INET6 if target.version == 6 else socket.AF_INET
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                s.connect((str(target), 9))
                return ipaddress.ip_address(s.getsockname()[0].split("%")[0])
        except OSError:
            continue
    return None


def sweep(
    groups: dict[tuple[str, int], list[IPAddress]], config: SweepConfig
) -> tuple[dict[bytes, float], set[bytes]]:
    """Ask every address of `groups` ((interface, IP version) -> addresses) on its link.

    Returns (answered packed address -> round-trip seconds, packed addresses that could not be
    asked because no raw socket works on their link); every other address did not answer.
    Addresses are keys as packed bytes: hashing an `ipaddress` object costs a hex() each time.
    """
    ports: dict[tuple[str, int], _Port] = {}
    unaskable: set[bytes] = set()
    for (interface, version), addresses in groups.items():
        port = (_arp_port if version == 4 else _nd_port)(interface, addresses)
        if port is None:
            unaskable.update(a.packed for a in addresses)
        else:
            ports[(interface, version)] = port
    answered: dict[bytes, float] = {}
    try:
        _passes(ports, groups, config, answered)
    finally:
        for port in ports.values():
            port.sock.close()
    return answered, unaskable


def _passes(
    ports: dict[tuple[str, int], _Port],
    groups: dict[tuple[str, int], list[IPAddress]],
    config: SweepConfig,
    answered: dict[bytes, float],
) -> None:
    wanted: dict[bytes, float] = {}  # packed address -> when its latest request went out
    pending = [(key, a, a.packed) for key, addrs in groups.items() if key in ports for a in addrs]
    socks = {port.sock: key[1] for key, port in ports.items()}
    buffer = bytearray(2048)
    interval = 0.0 if config.max_rate is None else 1.0 / config.max_rate
    worst_rtt = 0.0

    def drain(wait: float) -> None:
        nonlocal worst_rtt
        if not socks:
            return
        ready, _, _ = select.select(list(socks), [], [], wait)
        now = time.monotonic()
        for sock in ready:
            while True:
                try:
                    n = sock.recv_into(buffer)
                except (BlockingIOError, InterruptedError):
                    break
                data = bytes(buffer[:n])
                reply = (
                    pk.parse_arp_reply(data)
                    if socks[sock] == 4
                    else pk.parse_neighbour_advertisement(data)
                )
                if reply is None:
                    continue
                packed = reply.address.packed
                if packed in answered or packed not in wanted:
                    continue
                rtt = max(0.0, now - wanted[packed])
                answered[packed] = rtt
                worst_rtt = max(worst_rtt, rtt)

    for attempt in range(config.tries):
        pending = [entry for entry in pending if entry[2] not in answered]
        if not pending:
            break
        sent_at = time.monotonic()
        for i, (key, address, packed) in enumerate(pending):
            now = time.monotonic()
            if config.deadline is not None and now >= config.deadline:
                return
            if interval and (delay := sent_at + i * interval - now) > 0:
                drain(delay)
                now = time.monotonic()
            wanted[packed] = now
            send_patiently(ports[key].send, address)  # a refusal: stays unanswered
            if i % _BATCH == _BATCH - 1:
                config.progress(_BATCH)
                drain(0.0)
        config.progress(len(pending) % _BATCH)
        # wait for stragglers: the configured wait, or much less once the link showed its RTT;
        # the last pass waits longer (an answer to an earlier pass still counts in a later one)
        last = attempt == config.tries - 1
        floor, factor = (0.1, 16) if last else (0.05, 8)
        wait = min(config.wait, max(floor, factor * worst_rtt)) if answered else config.wait
        end = time.monotonic() + wait
        if config.deadline is not None:
            end = min(end, config.deadline)
        while (now := time.monotonic()) < end:
            drain(end - now)
        skipped = sum(1 for entry in pending if entry[2] in answered) * (config.tries - 1 - attempt)
        if skipped:
            config.progress(skipped)  # the retries an answer made unnecessary
