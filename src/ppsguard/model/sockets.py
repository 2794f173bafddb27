"""What the local inventory finds: socket records, their owners, namespaces and the whole inventory.

Produced by `ppsguard.inventory.collect` (netlink sock_diag, or /proc/net as a fallback) and
consumed by `pps sockets`, the audit and the monitor. Pure data plus the small classification
rules (state names, role, exposure) that every producer must apply the same way.

State names are the kernel's TCP state names in upper case (`LISTEN`, `ESTABLISHED`,
`TIME_WAIT`, ...). Sockets without a TCP state machine (UDP, raw) are `BOUND` (bound and not
connected: waiting for datagrams from anyone) or `CONNECTED` (connect()ed to one peer).
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from enum import StrEnum

from ppsguard.model.net import Family, IPAddress, Protocol, RangeClass


class SocketState(StrEnum):
    """Kernel socket state, upper case; UDP and raw sockets are BOUND or CONNECTED."""

    ESTABLISHED = "ESTABLISHED"
    SYN_SENT = "SYN_SENT"
    SYN_RECV = "SYN_RECV"
    FIN_WAIT1 = "FIN_WAIT1"
    FIN_WAIT2 = "FIN_WAIT2"
    TIME_WAIT = "TIME_WAIT"
    CLOSE = "CLOSE"
    CLOSE_WAIT = "CLOSE_WAIT"
    LAST_ACK = "LAST_ACK"
    LISTEN = "LISTEN"
    CLOSING = "CLOSING"
    NEW_SYN_RECV = "NEW_SYN_RECV"
    BOUND = "BOUND"
    CONNECTED = "CONNECTED"


# The kernel's numbering of TCP states (include/net/tcp_states.h); index = number.
TCP_STATE_NUMBERS: dict[int, SocketState] = {
    1: SocketState.ESTABLISHED,
    2: SocketState.SYN_SENT,
    3: SocketState.SYN_RECV,
    4: SocketState.FIN_WAIT1,
    5: SocketState.FIN_WAIT2,
    6: SocketState.TIME_WAIT,
    7: SocketState.CLOSE,
    8: SocketState.CLOSE_WAIT,
    9: SocketState.LAST_ACK,
    10: SocketState.LISTEN,
    11: SocketState.CLOSING,
    12: SocketState.NEW_SYN_RECV,
}
TCP_ESTABLISHED = 1
TCP_CLOSE = 7
TCP_LISTEN = 10


def state_of(protocol: Protocol, number: int) -> SocketState:
    """Name a kernel state number for `protocol` (UDP/raw: 7 -> BOUND, anything else CONNECTED)."""
    if protocol in (Protocol.UDP, Protocol.RAW):
        return SocketState.BOUND if number == TCP_CLOSE else SocketState.CONNECTED
    return TCP_STATE_NUMBERS.get(number, SocketState.CLOSE)


class Role(StrEnum):
    """`passive`: waiting for callers (LISTEN, or UDP/raw BOUND); `active`: a conversation."""

    PASSIVE = "passive"
    ACTIVE = "active"


def role_of(state: SocketState) -> Role:
    return Role.PASSIVE if state in (SocketState.LISTEN, SocketState.BOUND) else Role.ACTIVE


class Exposure(StrEnum):
    """Who can reach a socket's local address: `loopback` only, `any` interface, or `specific`."""

    LOOPBACK = "loopback"
    ANY = "any"
    SPECIFIC = "specific"


def exposure_of(address: IPAddress) -> Exposure:
    """Classify a bind address. `::` (dual-stack or not) and `0.0.0.0` are any; v4-mapped unwrapped.

    >>> exposure_of(ipaddress.ip_address("::ffff:127.0.0.1"))
    <Exposure.LOOPBACK: 'loopback'>
    """
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_unspecified:
        return Exposure.ANY
    if address.is_loopback:
        return Exposure.LOOPBACK
    return Exposure.SPECIFIC


@functools.lru_cache(maxsize=8192)
def format_address(address: IPAddress) -> str:
    """Text of an address as `ss` prints it: IPv4-mapped IPv6 as `::ffff:a.b.c.d`.

    Cached: 40,000 sockets name a few addresses 80,000 times, and `ipaddress.__str__` costs
    ~3 us a call against ~0.3 us for the cache lookup."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return f"::ffff:{address.ipv4_mapped}"
    return str(address)


@dataclass(frozen=True, slots=True)
class ContainerRef:
    """A container, as recognised from a process's cgroup path.

    `runtime` is `docker`, `containerd`, `cri-o`, `podman`, `kubernetes`, `lxc` or `nspawn`;
    `id` is the 12-hex short id (or, for LXC and systemd-nspawn, the container's name; for a
    Kubernetes pod cgroup without a container, `pod<uid>`); `name` is a human name when known.
    """

    runtime: str
    id: str
    name: str | None = None

    def __str__(self) -> str:
        return f"{self.runtime}:{self.id}"


@dataclass(frozen=True, slots=True)
class NetnsInfo:
    """A network namespace: its inode (the identity), its /run/netns name, a pid living in it,
    and the container it belongs to (from the cgroup of a process in it), when recognised."""

    inode: int
    name: str | None = None
    pid: int | None = None
    container: ContainerRef | None = None

    def __str__(self) -> str:
        """The /run/netns name, else the container (`docker:3f2a1b9c0d4e`), else `net:[INODE]`."""
        if self.name:
            return self.name
        if self.container is not None:
            return str(self.container)
        return f"net:[{self.inode}]"


@dataclass(frozen=True, slots=True)
class Owner:
    """A process holding a socket's file descriptor."""

    pid: int
    comm: str
    exe: str | None
    cmdline: tuple[str, ...]
    user: str | None
    uid: int | None = None


@dataclass(frozen=True, slots=True)
class SocketRecord:
    """One socket as the kernel reports it, enriched with owners, namespace and knowledge.

    `remote_address`/`remote_port` are the unspecified address and 0 for passive sockets.
    `kernel_owned` is true for sockets no process holds by design (TIME_WAIT, request and orphaned
    sockets: the kernel reports inode 0). An empty `owners` with `kernel_owned` false means the
    holder could not be seen (see `Inventory.gaps`).
    `v6only` is known from netlink for IPv6 passive sockets (None otherwise).
    """

    protocol: Protocol
    family: Family
    state: SocketState
    role: Role
    local_address: IPAddress
    local_port: int
    remote_address: IPAddress
    remote_port: int
    exposure: Exposure
    inode: int
    uid: int
    user: str | None
    netns: NetnsInfo
    owners: tuple[Owner, ...] = ()
    kernel_owned: bool = False
    cgroup: str | None = None
    unit: str | None = None
    port_range: RangeClass | None = None
    service: str | None = None
    v6only: bool | None = None

    @property
    def key(self) -> tuple[str, str, int, str, int, str]:
        """(protocol, local address, local port, remote address, remote port, state)."""
        return (
            self.protocol.value,
            format_address(self.local_address),
            self.local_port,
            format_address(self.remote_address),
            self.remote_port,
            self.state.value,
        )

    @property
    def identity(self) -> tuple[str, str, str, int, str | None]:
        """Restart-stable identity for drift: protocol, family, bind address, port, executable/unit.

        Never pid, fd or inode (those change on every restart).
        """
        service_id = self.unit or (self.owners[0].exe if self.owners else None)
        return (
            self.protocol.value,
            self.family.value,
            format_address(self.local_address),
            self.local_port,
            service_id,
        )


@dataclass(frozen=True, slots=True)
class Inventory:
    """The result of one collection: records, what could not be seen, and where we looked.

    `source` is "netlink" or "procfs" (the fallback); `gaps` are one-line sentences such as
    "owners unknown for 3 sockets: 12 processes could not be read (run as root)".
    """

    records: tuple[SocketRecord, ...]
    gaps: tuple[str, ...] = ()
    namespaces: tuple[NetnsInfo, ...] = ()
    source: str = "netlink"
    owners_resolved: bool = False

    @property
    def passive(self) -> tuple[SocketRecord, ...]:
        return tuple(r for r in self.records if r.role is Role.PASSIVE)

    @property
    def active(self) -> tuple[SocketRecord, ...]:
        return tuple(r for r in self.records if r.role is Role.ACTIVE)
