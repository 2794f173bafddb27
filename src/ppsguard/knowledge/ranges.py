"""Port ranges: IANA's system/registered/dynamic classes and this host's ephemeral range.

IANA (RFC 6335) splits ports into system 0-1023, user/registered 1024-49151 and dynamic/private
49152-65535. Linux picks ephemeral (client-side) ports from net.ipv4.ip_local_port_range, whose
default 32768-60999 differs from IANA's dynamic range: a listener on 50000 may collide with
outgoing connections on Linux even though IANA calls it dynamic.
"""

from __future__ import annotations

import re
from pathlib import Path

from ppsguard.errors import InputError
from ppsguard.model.net import MAX_PORT, MIN_PORT, PortRange, RangeClass

SYSTEM_PORTS = PortRange(0, 1023)
REGISTERED_PORTS = PortRange(1024, 49151)
DYNAMIC_PORTS = PortRange(49152, 65535)

RANGE_BOUNDS: dict[RangeClass, PortRange] = {
    RangeClass.SYSTEM: SYSTEM_PORTS,
    RangeClass.REGISTERED: REGISTERED_PORTS,
    RangeClass.DYNAMIC: DYNAMIC_PORTS,
}

LINUX_DEFAULT_EPHEMERAL = PortRange(32768, 60999)
LOCAL_PORT_RANGE_PATH = Path("/proc/sys/net/ipv4/ip_local_port_range")

_RANGE_TEXT = re.compile(r"\s*([0-9]{1,5})\s+([0-9]{1,5})\s*")


def check_port(port: int) -> int:
    """Return `port` if it is a valid port number (0-65535), else raise InputError."""
    if isinstance(port, bool) or not isinstance(port, int) or not MIN_PORT <= port <= MAX_PORT:
        raise InputError("port out of range 0-65535", token=str(port))
    return port


def range_class(port: int) -> RangeClass:
    """IANA's class of `port`: `range_class(22)` is system, `3306` registered, `50000` dynamic."""
    check_port(port)
    if port <= SYSTEM_PORTS.last:
        return RangeClass.SYSTEM
    if port <= REGISTERED_PORTS.last:
        return RangeClass.REGISTERED
    return RangeClass.DYNAMIC


def range_bounds(cls: RangeClass) -> PortRange:
    """The inclusive bounds of an IANA range class: system -> 0-1023."""
    return RANGE_BOUNDS[cls]


def parse_local_port_range(text: str) -> PortRange:
    """Parse the contents of ip_local_port_range: `"32768\\t60999\\n"` -> PortRange(32768, 60999).

    Raises InputError on anything else (wrong field count, non-numbers, out of range, first > last).
    """
    match = _RANGE_TEXT.fullmatch(text)
    shown = text if len(text) <= 40 else text[:40] + "..."
    if match is None:
        raise InputError("expected two port numbers in ip_local_port_range", token=shown)
    first, last = int(match.group(1)), int(match.group(2))
    if not MIN_PORT <= first <= last <= MAX_PORT:
        raise InputError("invalid ephemeral port range", token=shown)
    return PortRange(first, last)


def host_ephemeral_range(path: Path = LOCAL_PORT_RANGE_PATH) -> PortRange:
    """This host's (this network namespace's) ephemeral range; Linux's default if unreadable."""
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except OSError:
        return LINUX_DEFAULT_EPHEMERAL
    try:
        return parse_local_port_range(text)
    except InputError:
        return LINUX_DEFAULT_EPHEMERAL


def is_ephemeral(port: int, ephemeral: PortRange | None = None) -> bool:
    """Whether `port` lies in the ephemeral range (this host's when `ephemeral` is None).

    The host's range is re-read on every call with `ephemeral=None` (it is per network namespace
    and may change); in loops, read it once with host_ephemeral_range() and pass it in.
    """
    check_port(port)
    window = host_ephemeral_range() if ephemeral is None else ephemeral
    return port in window
