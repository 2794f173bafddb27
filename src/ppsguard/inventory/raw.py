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

    __slots__ = ("addresses",)

    def __init__(self) -> None:
        self.addresses: dict[bytes, IPAddress] = {}  # hot loops read this dict directly

    def get(self, packed: bytes) -> IPAddress:
        found = self.addresses.get(packed)
        if found is None:
            found = (
                ipaddress.IPv4Address(packed) if len(packed) == 4 else ipaddress.IPv6Address(packed)
            )
            self.addresses[packed] = found
        return found
