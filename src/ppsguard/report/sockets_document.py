"""The `ppsguard.socket` and `ppsguard.inventory` documents: socket records, built and read back.

`pps sockets --json` prints a JSON list of `ppsguard.socket` documents and `--jsonl` one per
line, so every row says what it is:

    {"schema": "ppsguard.socket", "version": 1, "protocol": "tcp", "family": "ipv4",
     "state": "LISTEN", "role": "passive", "local_address": "0.0.0.0", "local_port": 22,
     "remote_address": "0.0.0.0", "remote_port": 0, "exposure": "any",
     "netns": {"inode": 4026531840, "name": null, "pid": null, "container": null},
     "inode": 31337, "uid": 0, "user": "root",
     "owners": [{"pid": 812, "comm": "sshd", "exe": "/usr/sbin/sshd", "cmdline": [...],
                 "user": "root", "uid": 0}],
     "kernel_owned": false, "unit": "ssh.service", "cgroup": "/system.slice/ssh.service",
     "port_range": "system", "service": "ssh", "v6only": null}

`ppsguard.inventory` is a whole collection (what the store records): the records plus what could
not be seen (`gaps`), where they came from (`source`) and the namespaces walked. Addresses are
written as `ss` writes them (IPv4-mapped IPv6 as `::ffff:a.b.c.d`) and read back to the same
address object. Pure.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from ppsguard.model.net import Family, Protocol, RangeClass
from ppsguard.model.sockets import (
    ContainerRef,
    Exposure,
    Inventory,
    NetnsInfo,
    Owner,
    Role,
    SocketRecord,
    SocketState,
    format_address,
)
from ppsguard.report.documents import loader, stamp

SCHEMA = "ppsguard.socket"
INVENTORY_SCHEMA = "ppsguard.inventory"


def socket_document(record: SocketRecord) -> dict[str, Any]:
    """One socket record as a `ppsguard.socket` document."""
    return {
        **stamp(SCHEMA),
        "protocol": record.protocol.value,
        "family": record.family.value,
        "state": record.state.value,
        "role": record.role.value,
        "local_address": format_address(record.local_address),
        "local_port": record.local_port,
        "remote_address": format_address(record.remote_address),
        "remote_port": record.remote_port,
        "exposure": record.exposure.value,
        "netns": netns_document(record.netns),
        "inode": record.inode,
        "uid": record.uid,
        "user": record.user,
        "owners": [
            {
                "pid": o.pid,
                "comm": o.comm,
                "exe": o.exe,
                "cmdline": list(o.cmdline),
                "user": o.user,
                "uid": o.uid,
            }
            for o in record.owners
        ],
        "kernel_owned": record.kernel_owned,
        "unit": record.unit,
        "cgroup": record.cgroup,
        "port_range": record.port_range.value if record.port_range else None,
        "service": record.service,
        "v6only": record.v6only,
    }


def netns_document(netns: NetnsInfo) -> dict[str, Any]:
    """A network namespace: inode, /run/netns name, a pid in it, its container."""
    container = netns.container
    return {
        "inode": netns.inode,
        "name": netns.name,
        "pid": netns.pid,
        "container": None
        if container is None
        else {"runtime": container.runtime, "id": container.id, "name": container.name},
    }


def inventory_document(inventory: Inventory) -> dict[str, Any]:
    """A whole collection as a `ppsguard.inventory` document."""
    return {
        **stamp(INVENTORY_SCHEMA),
        "source": inventory.source,
        "owners_resolved": inventory.owners_resolved,
        "gaps": list(inventory.gaps),
        "namespaces": [netns_document(n) for n in inventory.namespaces],
        "records": [socket_document(r) for r in inventory.records],
    }


@loader(SCHEMA)
def load_socket(value: Mapping[str, Any]) -> SocketRecord:
    """Read a `ppsguard.socket` document back into a `SocketRecord` (validated first)."""
    return _record(value)


def load_sockets(values: object) -> tuple[SocketRecord, ...]:
    """Read `pps sockets --json` (a list of `ppsguard.socket` documents)."""
    if not isinstance(values, list):
        from ppsguard.errors import InputError

        raise InputError("expected a JSON array of ppsguard.socket documents")
    return tuple(load_socket(v) for v in values)


@loader(INVENTORY_SCHEMA)
def load_inventory(value: Mapping[str, Any]) -> Inventory:
    """Read a `ppsguard.inventory` document back into an `Inventory` (validated first)."""
    return Inventory(
        records=tuple(_record(r) for r in value["records"]),
        gaps=tuple(value["gaps"]),
        namespaces=tuple(_netns(n) for n in value["namespaces"]),
        source=value["source"],
        owners_resolved=value["owners_resolved"],
    )


def _record(v: Mapping[str, Any]) -> SocketRecord:
    return SocketRecord(
        protocol=Protocol(v["protocol"]),
        family=Family(v["family"]),
        state=SocketState(v["state"]),
        role=Role(v["role"]),
        local_address=ipaddress.ip_address(v["local_address"]),
        local_port=v["local_port"],
        remote_address=ipaddress.ip_address(v["remote_address"]),
        remote_port=v["remote_port"],
        exposure=Exposure(v["exposure"]),
        inode=v["inode"],
        uid=v["uid"],
        user=v["user"],
        netns=_netns(v["netns"]),
        owners=tuple(
            Owner(
                pid=o["pid"],
                comm=o["comm"],
                exe=o["exe"],
                cmdline=tuple(o["cmdline"]),
                user=o["user"],
                uid=o.get("uid"),
            )
            for o in v["owners"]
        ),
        kernel_owned=v["kernel_owned"],
        cgroup=v["cgroup"],
        unit=v["unit"],
        port_range=None if v["port_range"] is None else RangeClass(v["port_range"]),
        service=v["service"],
        v6only=v["v6only"],
    )


def _netns(n: Mapping[str, Any]) -> NetnsInfo:
    c = n["container"]
    return NetnsInfo(
        inode=n["inode"],
        name=n["name"],
        pid=n["pid"],
        container=None if c is None else ContainerRef(c["runtime"], c["id"], c["name"]),
    )
