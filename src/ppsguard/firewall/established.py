"""Established sessions survive the apply, even where connection tracking was never on.

Connection tracking is lazy: a namespace whose rule set never used a `ct` expression tracks
nothing, so on the first apply `ct state established` has no history, and the next packet of a
connection opened before (an SSH session, a database client, a download the host started) is
picked up mid-stream as `ct state new` and dropped by the default deny. A kernel switch cannot
give that history back; the sockets can. At apply time the established TCP sockets of the
namespace are read (sock_diag), and the replacement batch adds to ppsguard's table two sets of
their exact 4-tuples as seen inbound (remote address . remote port . local address . local
port) and one rule per family, first in the input chain, that accepts them. Nothing else is let
in: a tuple names one existing connection, new connections still need a SYN that the tuple sets
do not match unless a client reuses the very same address and port pair. Each apply rebuilds
the sets from the sockets alive at that moment; once the first packet passed, conntrack tracks
the flow and `ct state established` carries it.

`established_rules` is pure (tuples in, nft text out); `established_flows` reads the sockets.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ppsguard.firewall.live import TABLE_FAMILY, TABLE_NAME
from ppsguard.model.net import IPAddress

SET_NAMES = {4: "established_before_apply4", 6: "established_before_apply6"}
COMMENT = "ppsguard: established before apply"
MAX_FLOWS = 65536


@dataclass(frozen=True, slots=True, order=True)
class Flow:
    """One established TCP connection, as its packets arrive: remote end -> local end."""

    remote: IPAddress
    remote_port: int
    local: IPAddress
    local_port: int


def _unmapped(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def established_flows(netns: str | None) -> tuple[tuple[Flow, ...], str | None]:
    """The namespace's established TCP connections that do not stay on loopback, and a
    warning when they could not be read or were too many."""
    from ppsguard.errors import PpsError
    from ppsguard.inventory import collect
    from ppsguard.model.net import Protocol
    from ppsguard.model.sockets import SocketState

    try:
        inventory = collect(
            listening=False, active=True, protocols=(Protocol.TCP,), netns=netns, owners=False
        )
    except PpsError as exc:
        return (), f"established connections not read ({exc}); they may be cut"
    flows = sorted(
        {
            Flow(
                _unmapped(r.remote_address),
                r.remote_port,
                _unmapped(r.local_address),
                r.local_port,
            )
            for r in inventory.records
            if r.state is SocketState.ESTABLISHED
            and not _unmapped(r.remote_address).is_loopback
            and not _unmapped(r.local_address).is_loopback
        }
    )
    if len(flows) > MAX_FLOWS:
        return tuple(flows[:MAX_FLOWS]), (
            f"{len(flows):,} established connections; only {MAX_FLOWS:,} are kept open "
            "through the apply"
        )
    return tuple(flows), None


def established_rules(flows: tuple[Flow, ...]) -> str:
    """nft commands (appended to the replacement batch) that let `flows` through. Pure."""
    lines: list[str] = []
    for version, key in ((4, "ip"), (6, "ip6")):
        mine = [f for f in flows if f.remote.version == version and f.local.version == version]
        if not mine:
            continue
        name = SET_NAMES[version]
        address = "ipv4_addr" if version == 4 else "ipv6_addr"
        elements = ", ".join(
            f"{f.remote} . {f.remote_port} . {f.local} . {f.local_port}" for f in mine
        )
        lines.append(
            f"add set {TABLE_FAMILY} {TABLE_NAME} {name} {{ type {address} . inet_service . "
            f"{address} . inet_service; elements = {{ {elements} }}; }}"
        )
        lines.append(
            f"insert rule {TABLE_FAMILY} {TABLE_NAME} input {key} saddr . tcp sport . "
            f'{key} daddr . tcp dport @{name} accept comment "{COMMENT}"'
        )
    return "".join(line + "\n" for line in lines)
