"""Raw socket rows -> `SocketRecord`s with owners, port range and service name: the hot loop.

No I/O of its own (the knowledge base loads its catalogs once): the caller hands in the rows, the
owner walk, the host's ephemeral range and a `ProcessDescriber` (which reads /proc once per owning
process). `collect.py` gathers those; this module turns them into records as cheaply as Python
allows (see `_RecordTwin` for the figures): every derived value is computed once per distinct key
and shared.
"""

from __future__ import annotations

from ppsguard.errors import PpsError
from ppsguard.inventory.owners import CompactWalk, ProcessDescriber
from ppsguard.inventory.raw import RawSocket
from ppsguard.knowledge.ranges import range_class
from ppsguard.knowledge.services import service_name
from ppsguard.model.net import Family, IPAddress, PortRange, Protocol, RangeClass
from ppsguard.model.sockets import (
    Exposure,
    NetnsInfo,
    Owner,
    Role,
    SocketRecord,
    SocketState,
    exposure_of,
    role_of,
    state_of,
)


def build_records(
    per_namespace: list[tuple[NetnsInfo, list[RawSocket]]],
    holders: CompactWalk,
    describer: ProcessDescriber,
    ephemeral: PortRange,
) -> tuple[list[SocketRecord], int]:
    """Turn rows into records, and count the sockets (inode != 0) without a known holder.

    Hot loop (one pass per socket): every derived value is cached, under cheap keys (a Protocol
    is hashed by a Python-level Enum.__hash__: once per protocol switch, not per row), and owner
    tuples are shared by every socket of the same holders."""
    facts_by: dict[Protocol, dict[int, tuple[RangeClass | None, str | None]]] = {}
    states_by: dict[Protocol, dict[int, tuple[SocketState, Role]]] = {}
    facts: dict[int, tuple[RangeClass | None, str | None]] = {}
    states: dict[int, tuple[SocketState, Role]] = {}
    exposures: dict[int, tuple[Exposure, Family]] = {}  # by id(): rows share address objects
    by_pid: dict[int, Described] = {}
    users: dict[int, str | None] = {}
    records: list[SocketRecord] = []
    append = records.append
    low, high = ephemeral.first, ephemeral.last
    active = Role.ACTIVE
    last_protocol: Protocol | None = None
    first, shared = holders.first, holders.shared
    missing = 0
    nobody: Described = ((), None, None)
    for ns, rows in per_namespace:
        for row in rows:
            protocol, local, local_port, remote, remote_port, number, uid, inode, v6only = row
            if protocol is not last_protocol:
                last_protocol = protocol
                states = states_by.setdefault(protocol, {})
                facts = facts_by.setdefault(protocol, {})
            found = states.get(number)
            if found is None:
                state = state_of(protocol, number)
                found = states[number] = (state, role_of(state))
            state, role = found
            where = exposures.get(id(local))
            if where is None:
                where = exposures[id(local)] = (exposure_of(local), Family.of(local))
            # The service of a conversation is on its non-ephemeral side: the local port for
            # passive sockets and accepted connections, the remote one for outgoing connections.
            service_port = local_port
            if role is active and low <= local_port <= high and not low <= remote_port <= high:
                service_port = remote_port
            fact = facts.get(service_port)
            if fact is None:
                fact = facts[service_port] = _facts(service_port, protocol)
            user = users.get(uid, "")
            if user == "":
                user = users[uid] = describer.user(uid)
            pid = first.get(inode) if inode else None
            if pid is None:
                owned = nobody
                missing += inode != 0
            elif shared and inode in shared:
                owned = _describe_shared(by_pid, describer, shared[inode])
            else:
                owned = by_pid.get(pid) or _describe(by_pid, describer, pid)
            owners, cgroup, unit = owned
            append(
                _RecordTwin(  # type: ignore[arg-type]
                    protocol,
                    where[1],
                    state,
                    role,
                    local,
                    local_port,
                    remote,
                    remote_port,
                    where[0],
                    inode,
                    uid,
                    user,
                    ns,
                    owners,
                    inode == 0,
                    cgroup,
                    unit,
                    fact[0],
                    fact[1],
                    v6only,
                )
            )
    return records, missing


Described = tuple[tuple[Owner, ...], str | None, str | None]


def _describe(by_pid: dict[int, Described], describer: ProcessDescriber, pid: int) -> Described:
    """(the one-owner tuple, cgroup, unit) of `pid`, cached: sockets of one process share it."""
    entry = by_pid[pid] = ((describer.owner(pid),), describer.cgroup(pid), describer.unit(pid))
    return entry


def _describe_shared(
    by_pid: dict[int, Described], describer: ProcessDescriber, pids: list[int]
) -> Described:
    """A socket held by several processes: every owner; cgroup and unit of the first."""
    entries = [by_pid.get(pid) or _describe(by_pid, describer, pid) for pid in pids]
    return tuple(e[0][0] for e in entries), entries[0][1], entries[0][2]


class _RecordTwin:
    """Builds a `SocketRecord` at a quarter of the dataclass constructor's cost.

    A frozen dataclass's __init__ pays an `object.__setattr__` call per field (20 per record).
    This twin has the same slots (CPython lays slots out sorted by name) and a plain __init__
    (fast slot stores), then re-labels the finished object as a SocketRecord, which `__class__`
    assignment allows between classes of identical layout. Measured on 50k records: dataclass
    constructor 450 ms, one slot-descriptor __set__ per field 262 ms, twin 65 ms. A unit test
    checks equality with the real constructor, and a field missing here makes the re-labelling
    fail loudly (TypeError: object layout differs).
    """

    __slots__ = (
        "cgroup",
        "exposure",
        "family",
        "inode",
        "kernel_owned",
        "local_address",
        "local_port",
        "netns",
        "owners",
        "port_range",
        "protocol",
        "remote_address",
        "remote_port",
        "role",
        "service",
        "state",
        "uid",
        "unit",
        "user",
        "v6only",
    )

    def __init__(  # noqa: PLR0917 -- positional on purpose: the hot loop calls it 50k times
        self,
        protocol: Protocol,
        family: Family,
        state: SocketState,
        role: Role,
        local_address: IPAddress,
        local_port: int,
        remote_address: IPAddress,
        remote_port: int,
        exposure: Exposure,
        inode: int,
        uid: int,
        user: str | None,
        netns: NetnsInfo,
        owners: tuple[Owner, ...],
        kernel_owned: bool,
        cgroup: str | None,
        unit: str | None,
        port_range: RangeClass | None,
        service: str | None,
        v6only: bool | None,
    ) -> None:
        self.protocol = protocol
        self.family = family
        self.state = state
        self.role = role
        self.local_address = local_address
        self.local_port = local_port
        self.remote_address = remote_address
        self.remote_port = remote_port
        self.exposure = exposure
        self.inode = inode
        self.uid = uid
        self.user = user
        self.netns = netns
        self.owners = owners
        self.kernel_owned = kernel_owned
        self.cgroup = cgroup
        self.unit = unit
        self.port_range = port_range
        self.service = service
        self.v6only = v6only
        self.__class__ = SocketRecord  # type: ignore[assignment]  # noqa: PLE0237


def make_record(*values: object) -> SocketRecord:
    """`SocketRecord(*values)`, built through `_RecordTwin` (same fields, same order)."""
    record: SocketRecord = _RecordTwin(*values)  # type: ignore[arg-type,assignment]
    return record


def _facts(port: int, protocol: Protocol) -> tuple[RangeClass | None, str | None]:
    """The port's IANA range and service name; none for raw sockets (their "port" is an IP
    protocol number)."""
    if protocol is Protocol.RAW:
        return None, None
    try:
        return range_class(port), service_name(port, protocol)
    except (PpsError, ValueError, LookupError, OSError):  # enrichment must never break listing
        return None, None


__all__ = ["build_records", "make_record"]
