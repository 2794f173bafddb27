"""The intermediate row both socket sources produce before enrichment (owners, names, knowledge).

Pure and cheap: a NamedTuple built per kernel row by `sockdiag` (netlink) and `procfs` (text), so
the two sources can be compared field by field and turned into `SocketRecord`s in one place.
"""

from __future__ import annotations

import ipaddress
from typing import NamedTuple

from ppsguard.model.net import IPAddress, Protocol


class RawSocket(NamedTuple):
    protocol: Protocol
    local_address: IPAddress
    local_port: int
    remote_address: IPAddress
    remote_port: int
    state: int  # the kernel's state number (TCP numbering, also for UDP/raw)
    uid: int
    inode: int
    v6only: bool | None = None


class AddressCache:
    """Turns packed network-order addresses into `ipaddress` objects, once per distinct address."""

    __slots__ = ("addresses", "wide4")

    def __init__(self) -> None:
        self.addresses: dict[bytes, IPAddress] = {}  # hot loops read this dict directly
        self.wide4: dict[bytes, IPAddress] = {}  # IPv4 by netlink's zero-padded 16-byte field

    def get(self, packed: bytes) -> IPAddress:
        found = self.addresses.get(packed)
        if found is None:
            found = (
                ipaddress.IPv4Address(packed) if len(packed) == 4 else ipaddress.IPv6Address(packed)
            )
            self.addresses[packed] = found
        return found

    def get_wide4(self, field: bytes) -> IPAddress:
        """The IPv4 address in the first 4 bytes of a 16-byte netlink address field."""
        found = self.wide4.get(field)
        if found is None:
            found = self.wide4[field] = self.get(field[:4])
        return found
