"""Pure parsers for /proc text: /proc/net/{tcp,udp,raw}[6], /proc/<pid>/cgroup, namespace links.

The fallback socket source when netlink sock_diag is unavailable. Parsers take text, never paths
(the collector reads the files). Addresses in /proc/net are 32-bit words printed in host byte
order, like psutil's `decode_address()`:

    "0100007F:0016" -> (127.0.0.1, 22) on a little-endian host
    "00000000000000000000000001000000:0050" -> (::1, 80)
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

from ppsguard.digits import decimal
from ppsguard.errors import InputError
from ppsguard.inventory.raw import AddressCache, RawSocket
from ppsguard.model.net import IPAddress, Protocol

_UNIT_SUFFIXES = (".service", ".scope", ".socket", ".mount", ".swap", ".timer", ".target")


def decode_endpoint(
    text: str, cache: AddressCache | None = None, byteorder: str = sys.byteorder
) -> tuple[IPAddress, int]:
    """Decode `HEXADDR:HEXPORT` from /proc/net into an address and a port."""
    address_hex, sep, port_hex = text.partition(":")
    if not sep or len(address_hex) not in (8, 32) or len(port_hex) != 4:
        raise InputError("malformed /proc/net endpoint", token=text[:64])
    try:
        raw = bytes.fromhex(address_hex)
        port = int(port_hex, 16)
    except ValueError:
        raise InputError("malformed /proc/net endpoint", token=text[:64]) from None
    if byteorder == "little":
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return (cache or AddressCache()).get(raw), port


def parse_proc_net(
    text: str,
    protocol: Protocol,
    *,
    source: str = "/proc/net",
    byteorder: str = sys.byteorder,
) -> Iterator[RawSocket]:
    """Yield one RawSocket per row of a /proc/net/{tcp,udp,raw}[6] table (header line skipped)."""
    cache = AddressCache()
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0] == "sl":
            continue
        if len(fields) < 10 or not fields[0].endswith(":"):
            raise InputError(
                "malformed /proc/net row", file=source, line=number, token=line.strip()[:80]
            )
        try:
            local_address, local_port = decode_endpoint(fields[1], cache, byteorder)
            remote_address, remote_port = decode_endpoint(fields[2], cache, byteorder)
            state = int(fields[3], 16)
            uid = int(fields[7])
            inode = int(fields[9])
        except InputError as error:
            raise InputError(error.message, file=source, line=number, token=error.token) from None
        except ValueError:
            raise InputError(
                "malformed /proc/net row", file=source, line=number, token=line.strip()[:80]
            ) from None
        yield RawSocket(
            protocol, local_address, local_port, remote_address, remote_port, state, uid, inode
        )


def parse_cgroup(text: str) -> str | None:
    """The cgroup v2 path of a process from /proc/<pid>/cgroup ("0::/system.slice/x.service")."""
    fallback: str | None = None
    for line in text.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            return path or None
        if "name=systemd" in controllers.split(","):
            fallback = path or None
    return fallback


def unit_of(cgroup: str | None) -> str | None:
    """The systemd unit a cgroup path belongs to: its deepest .service/.scope/... component."""
    if not cgroup:
        return None
    for part in reversed(cgroup.split("/")):
        if part.endswith(_UNIT_SUFFIXES):
            return part
    return None


def parse_ns_link(text: str) -> int | None:
    """The inode of a namespace link target: "net:[4026531840]" -> 4026531840."""
    if not text.startswith("net:[") or not text.endswith("]"):
        return None
    return decimal(text[5:-1])


def parse_socket_link(text: str) -> int | None:
    """The inode of an fd link target: "socket:[12345]" -> 12345 (None for other fds)."""
    if not text.startswith("socket:[") or not text.endswith("]"):
        return None
    return decimal(text[8:-1])
