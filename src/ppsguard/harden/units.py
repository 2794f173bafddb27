"""Which systemd unit is behind a listener, found from its holders' cgroup paths (pure).

systemd puts every service's processes in a cgroup named after the unit, so the path a process's
/proc/<pid>/cgroup names says which unit to stop:

    /system.slice/redis-server.service                        -> redis-server.service (system)
    /system.slice/system-getty.slice/getty@tty1.service       -> getty@tty1.service (system)
    /user.slice/user-1000.slice/user@1000.service/app.slice/x.service
                                                              -> x.service (user 1000's manager)
    /user.slice/user-1000.slice/session-3.scope               -> a login session: no service
    /system.slice/docker-<64 hex>.scope                       -> a container: no unit to stop

A socket-activated service's listening socket is held by systemd itself (PID 1) and, once
activated, by the service too: the socket unit is then named after the service
(`foo.service` / `foo@inst.service` -> `foo.socket`), or found in `systemctl list-sockets`.
Nothing here reads /proc or runs systemctl: callers pass the holders and listings in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from ppsguard.digits import decimal
from ppsguard.inventory.containers import container_of_path
from ppsguard.inventory.procfs import unit_of

_USER_MANAGER = re.compile(r"user@(\d+)\.service")
_UNIT_SUFFIXES = (".service", ".socket", ".scope", ".slice", ".mount", ".timer", ".target")


class UnitKind(StrEnum):
    """How a listener is started: what a plan can change about it."""

    SERVICE = "service"  # a system service: stop and disable it
    SOCKET_ACTIVATED = "socket-activated"  # systemd holds the socket: stop the socket unit too
    USER_SERVICE = "user-service"  # a user's own manager runs it
    SCOPE = "scope"  # started by hand (a login session, systemd-run --scope)
    CONTAINER = "container"  # a container runtime's process
    INIT = "init"  # systemd itself, with no service holding the socket yet
    UNKNOWN = "unknown"  # no cgroup could be read, or a path systemd did not make


@dataclass(frozen=True, slots=True)
class Holder:
    """One process holding a listener's socket, as /proc describes it."""

    pid: int
    comm: str
    exe: str | None
    cgroup: str | None


@dataclass(frozen=True, slots=True)
class UnitTarget:
    """What runs a listener: the service and socket units (None when there is none)."""

    kind: UnitKind
    service: str | None = None
    socket: str | None = None
    container: str | None = None
    user_id: int | None = None
    cgroup: str | None = None
    note: str = ""

    @property
    def units(self) -> tuple[str, ...]:
        """The units to stop, socket first (so it cannot start the service again)."""
        return tuple(u for u in (self.socket, self.service) if u)


def unit_file_name(name: str) -> str:
    """A unit name as the registry may write it (`ssh`) in systemd's full form (`ssh.service`)."""
    return name if name.endswith(_UNIT_SUFFIXES) else f"{name}.service"


def unit_stem(name: str) -> str:
    """`foo@bar.service` -> `foo`; `foo.socket` -> `foo` (what a service and its socket share)."""
    full = unit_file_name(name)
    base = full.rsplit(".", 1)[0]
    return base.split("@", 1)[0]


def socket_for(service: str) -> str:
    """The socket unit that activates `service` by systemd's default naming."""
    return f"{unit_stem(service)}.socket"


def parse_list_sockets(text: str) -> dict[tuple[str, int], str]:
    """`systemctl list-sockets --all --full --no-legend --no-pager` -> {(address, port): unit}.

    Lines read `LISTEN UNIT ACTIVATES`, e.g. `[::]:22  ssh.socket  ssh.service`; paths (Unix
    sockets) and lines without a port are skipped. `*` and `[::]` stand for every address.

    >>> parse_list_sockets("[::]:22 ssh.socket ssh.service\\n/run/x.sock x.socket x.service\\n")
    {('::', 22): 'ssh.socket'}
    """
    found: dict[tuple[str, int], str] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 2 or not fields[1].endswith(".socket"):
            continue
        listen, unit = fields[0], fields[1]
        host, sep, port_text = listen.rpartition(":")
        port = decimal(port_text)
        if not sep or port is None:
            continue
        host = host.strip("[]") or "*"
        found[(host, port)] = unit
    return found


def unit_target(
    holders: Iterable[Holder],
    *,
    init_pid: int = 1,
    listed_socket: str | None = None,
) -> UnitTarget:
    """Name the unit(s) behind one listener from the processes holding its socket.

    `init_pid` is the service manager's pid (1 on a systemd machine); when it holds the socket,
    the listener is socket-activated. `listed_socket` is the socket unit `systemctl
    list-sockets` names for this address and port, when that listing was read.
    """
    every = list(holders)
    activated = any(h.pid == init_pid for h in every)
    others = [h for h in every if h.pid != init_pid]
    cgroups = [h.cgroup for h in others if h.cgroup]
    cgroup = next((c for c in cgroups if unit_of(c)), cgroups[0] if cgroups else None)
    if cgroup is not None:
        container = container_of_path(cgroup)
        if container is not None:
            return UnitTarget(
                UnitKind.CONTAINER,
                container=str(container),
                cgroup=cgroup,
                note=f"runs in container {container}: change what publishes the port there",
            )
    unit = unit_of(cgroup)
    user = _USER_MANAGER.search(cgroup or "")
    user_id = int(user.group(1)) if user else None
    if unit is not None and unit.endswith(".service"):
        socket = listed_socket or (socket_for(unit) if activated else None)
        if user is not None and unit != user.group(0):
            return UnitTarget(
                UnitKind.USER_SERVICE,
                service=unit,
                socket=socket,
                user_id=user_id,
                cgroup=cgroup,
                note=f"a unit of user {user_id}'s own manager (systemctl --user)",
            )
        kind = UnitKind.SOCKET_ACTIVATED if socket else UnitKind.SERVICE
        return UnitTarget(kind, service=unit, socket=socket, cgroup=cgroup)
    if activated:
        note = "held by systemd itself (socket activation)"
        if not listed_socket:
            note += "; `systemctl list-sockets` names the unit"

        kind = UnitKind.SOCKET_ACTIVATED if listed_socket else UnitKind.INIT
        return UnitTarget(kind, socket=listed_socket, cgroup=cgroup, note=note)
    if unit is not None and unit.endswith(".scope"):
        return UnitTarget(
            UnitKind.SCOPE,
            cgroup=cgroup,
            note=f"started by hand in {unit}, not by a service: stop the process itself",
        )
    why = "no cgroup could be read" if cgroup is None else f"cgroup {cgroup} names no service"
    return UnitTarget(UnitKind.UNKNOWN, cgroup=cgroup, note=why)


def protected_names(units: Iterable[str]) -> frozenset[str]:
    """Every unit name a set of documented units protects: each one in full form, and the
    service and socket units of the same stem (`ssh` protects ssh.service and ssh.socket)."""
    out: set[str] = set()
    for name in units:
        full = unit_file_name(name)
        out.add(full)
        stem = unit_stem(full)
        out.update({f"{stem}.service", f"{stem}.socket"})
    return frozenset(out)


def touches_protected(target: UnitTarget, protected: frozenset[str]) -> str | None:
    """The first of `target`'s units that `protected` covers (None when none is)."""
    for unit in target.units:
        if unit in protected or f"{unit_stem(unit)}.service" in protected:
            return unit
    return None


def parse_systemctl_show(text: str) -> Mapping[str, str]:
    """`systemctl show -p ActiveState,UnitFileState UNIT` -> {"ActiveState": "active", ...}.

    >>> dict(parse_systemctl_show("ActiveState=active\\nUnitFileState=enabled\\n"))
    {'ActiveState': 'active', 'UnitFileState': 'enabled'}
    """
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key:
            out[key.strip()] = value.strip()
    return out
