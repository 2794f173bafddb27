"""Network vocabulary shared by every layer: protocols, families, ports, port ranges, endpoints."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import StrEnum

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MIN_PORT = 0
MAX_PORT = 65535


def ip_text(address: IPAddress) -> str:
    """An address as text, as `str()` spells it. IPv4 from its four bytes (0.4 µs against
    0.7-1.3 µs for `ipaddress`'s pure-Python `str()`: flow rows and watch events write two
    addresses each); IPv6 by `str()` (RFC 5952)."""
    if address.version == 4:
        return "%d.%d.%d.%d" % tuple(address.packed)  # noqa: UP031 -- the fastest spelling
    return str(address)


class Protocol(StrEnum):
    """Transport protocol of a socket, a probe or a registry entry."""

    TCP = "tcp"
    UDP = "udp"
    SCTP = "sctp"
    RAW = "raw"


class Family(StrEnum):
    """Address family."""

    IPV4 = "ipv4"
    IPV6 = "ipv6"

    @classmethod
    def of(cls, address: IPAddress) -> Family:
        return cls.IPV4 if address.version == 4 else cls.IPV6


class RangeClass(StrEnum):
    """IANA's three port ranges (RFC 6335): system 0-1023, registered 1024-49151, dynamic."""

    SYSTEM = "system"
    REGISTERED = "registered"
    DYNAMIC = "dynamic"


@dataclass(frozen=True, slots=True, order=True)
class PortRange:
    """An inclusive range of port numbers, `first..last`."""

    first: int
    last: int

    def __post_init__(self) -> None:
        if not (MIN_PORT <= self.first <= self.last <= MAX_PORT):
            raise ValueError(f"invalid port range {self.first}-{self.last}")

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.first <= port <= self.last

    def __len__(self) -> int:
        return self.last - self.first + 1

    def __str__(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}-{self.last}"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One end of a conversation: an address and a port."""

    address: IPAddress
    port: int

    @property
    def family(self) -> Family:
        return Family.of(self.address)

    def __str__(self) -> str:
        if self.address.version == 6:
            return f"[{self.address}]:{self.port}"
        return f"{self.address}:{self.port}"
