"""Socket-table deltas: new listeners, listeners gone, binds widened, owners changed.

`ListenerDiff` is the pure part: give it the listening sockets of each poll (as `Listening`
values) and it returns the events since the previous poll. A listener's identity is protocol,
family, bind address and port — never pid, fd or inode — so a restarted service is the same
listener. Debounced: a listener that vanishes is reported gone only after `debounce` seconds of
absence, so a restart (gone for a moment, back with a new pid) says nothing. The first poll is the
baseline and reports nothing. `ListenerSource` polls the kernel (netlink sock_diag through
`inventory.collect`) every `interval` seconds; it is the I/O edge.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ppsguard.model.events import Direction, Event, EventKind, EvidenceSource
from ppsguard.model.net import IPAddress, Protocol
from ppsguard.model.sockets import Exposure, SocketRecord, exposure_of

ListenerKey = tuple[str, int, IPAddress, int]  # protocol, family version, bind address, port


@dataclass(frozen=True, slots=True)
class Listening:
    protocol: str
    address: IPAddress
    port: int
    process: str | None
    pid: int | None

    @property
    def key(self) -> ListenerKey:
        return (self.protocol, self.address.version, self.address, self.port)


_WIDER = {Exposure.LOOPBACK: 0, Exposure.SPECIFIC: 1, Exposure.ANY: 2}


class ListenerDiff:
    def __init__(self, *, debounce: float = 1.0) -> None:
        self.debounce = debounce
        self.current: dict[ListenerKey, Listening] | None = None
        self.missing_since: dict[ListenerKey, float] = {}

    def _event(self, kind: EventKind, listener: Listening, now: float, detail: str) -> Event:
        return Event(
            time=now,
            kind=kind,
            source=EvidenceSource.SOCKETS,
            protocol=listener.protocol,
            resp=listener.address,
            resp_port=listener.port,
            direction=Direction.INBOUND,
            process=listener.process,
            pid=listener.pid,
            detail=detail,
        )

    def current_values(self) -> list[Listening]:
        """The listeners of the last poll (those missing but not yet reported gone excluded)."""
        if self.current is None:
            return []
        return [v for k, v in self.current.items() if k not in self.missing_since]

    def update(self, listeners: Iterable[Listening], now: float) -> list[Event]:
        seen = {listener.key: listener for listener in listeners}
        if self.current is None:
            self.current = seen
            return []
        events: list[Event] = []
        for key, listener in seen.items():
            self.missing_since.pop(key, None)
            before = self.current.get(key)
            if before is None:
                events.extend(self._added(listener, now))
            elif before.process != listener.process and listener.process is not None:
                events.append(
                    self._event(
                        EventKind.LISTENER_CHANGED,
                        listener,
                        now,
                        f"owner changed from {before.process} to {listener.process}",
                    )
                )
            self.current[key] = listener
        for key in list(self.current):
            if key in seen:
                continue
            since = self.missing_since.setdefault(key, now)
            if now - since >= self.debounce:
                gone = self.current.pop(key)
                del self.missing_since[key]
                events.append(self._event(EventKind.LISTENER_REMOVED, gone, now, "listener gone"))
        return events

    def _added(self, listener: Listening, now: float) -> list[Event]:
        assert self.current is not None
        narrower = [
            other
            for other in self.current.values()
            if other.protocol == listener.protocol
            and other.port == listener.port
            and other.address.version == listener.address.version
            and _WIDER[exposure_of(other.address)] < _WIDER[exposure_of(listener.address)]
        ]
        if narrower:
            detail = f"bind widened from {narrower[0].address} to {listener.address}"
            return [self._event(EventKind.LISTENER_CHANGED, listener, now, detail)]
        return [self._event(EventKind.LISTENER_ADDED, listener, now, "new listener")]


class ListenerSource:
    """Polls the listening sockets of one namespace (None: this process's)."""

    name = "sockets"

    def __init__(self, netns: str | None = None, *, debounce: float = 1.0) -> None:
        self.netns = netns
        self.diff = ListenerDiff(debounce=debounce)
        self._inodes: frozenset[int] | None = None
        self.owner_walks = 0

    def owner_of(
        self, protocol: str, address: IPAddress | None, port: int | None
    ) -> Listening | None:
        """The listener that accepts (protocol, address, port): an exact bind, else a wildcard."""
        if address is None or port is None or self.diff.current is None:
            return None
        exact = self.diff.current.get((protocol, address.version, address, port))
        if exact is not None:
            return exact
        for listener in self.diff.current.values():
            if (
                listener.protocol == protocol
                and listener.port == port
                and listener.address.is_unspecified
                and listener.address.version in (address.version, 6)  # :: is dual-stack
            ):
                return listener
        return None

    def poll(self, now: float) -> list[Event]:
        """One poll. The socket dump alone costs about a millisecond; the walk of every
        process's descriptors that names owners costs tens of milliseconds on a busy machine, so
        it runs only when the set of listening sockets (by inode) changed since the last poll."""
        from ppsguard.inventory.collect import collect

        def dump(owners: bool) -> tuple[SocketRecord, ...]:
            inventory = collect(
                listening=True,
                active=False,
                protocols=(Protocol.TCP, Protocol.UDP),
                netns=self.netns,
                owners="first" if owners else False,
            )
            return inventory.records

        records = dump(False)
        inodes = frozenset(r.inode for r in records)
        if inodes == self._inodes:
            return self.diff.update(self.diff.current_values(), now)
        self._inodes = inodes
        self.owner_walks += 1
        inventory_records = dump(True)
        found = []
        for record in inventory_records:
            owner = record.owners[0] if record.owners else None
            found.append(
                Listening(
                    protocol=record.protocol.value,
                    address=record.local_address,
                    port=record.local_port,
                    process=owner.comm if owner else None,
                    pid=owner.pid if owner else None,
                )
            )
        return self.diff.update(found, now)
