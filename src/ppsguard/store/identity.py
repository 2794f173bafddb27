"""Who a run belongs to: machine-id, hostname and network namespace.

Lab namespaces and containers share the machine's machine-id and hostname, so the namespace name
is part of the identity ("" for the machine's own namespace). Reads /etc/machine-id and the
hostname; must not touch the database.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MACHINE_ID_FILES = (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id"))


@dataclass(frozen=True, slots=True)
class HostIdentity:
    """One host as the store knows it; `netns` is "" for the machine's own namespace."""

    machine_id: str
    hostname: str
    netns: str = ""

    @property
    def label(self) -> str:
        """How people see it: `hostname`, or `hostname/netns` for a namespace."""
        return f"{self.hostname}/{self.netns}" if self.netns else self.hostname

    def as_dict(self) -> dict[str, str]:
        return {"machine_id": self.machine_id, "hostname": self.hostname, "netns": self.netns}

    @classmethod
    def from_dict(cls, data: Any) -> HostIdentity | None:
        """The identity a document carries (`{"machine_id", "hostname", "netns"}`), if any."""
        if not isinstance(data, dict):
            return None
        machine, host = data.get("machine_id"), data.get("hostname")
        if not isinstance(machine, str) or not isinstance(host, str) or not host:
            return None
        netns = data.get("netns") or ""
        return cls(machine[:64], host[:255], str(netns)[:255])


def machine_id() -> str:
    """The systemd/D-Bus machine id, or "" where neither file exists (a bare container)."""
    for path in MACHINE_ID_FILES:
        try:
            text = path.read_text("ascii", errors="replace").strip()
        except OSError:
            continue
        if text:
            return text[:64]
    return ""


def this_host(netns: str | None = None) -> HostIdentity:
    """This machine, or one of its network namespaces (a lab host, a container)."""
    return HostIdentity(machine_id(), socket.gethostname()[:255], (netns or "")[:255])
