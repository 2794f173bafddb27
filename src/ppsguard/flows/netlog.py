"""Kernel firewall log lines (iptables LOG, nftables `log`, ufw) as flows.

    IN=eth0 OUT= SRC=198.18.0.50 DST=198.18.0.1 LEN=60 ... PROTO=TCP SPT=41234 DPT=3306 SYN

from plain files, syslog files (`Dec  2 07:14:48 host kernel: [ 12.3] pps:mysql IN=...`), ISO
time stamps (`2026-12-02T07:14:48.123+00:00 host kernel: ...`) or `journalctl -k -o short`.
The text before `IN=` is the rule's prefix: `pps:<entry id>` names the registry entry, ufw's
`[UFW BLOCK]` says blocked. Each line is one logged packet; packets of the same 5-tuple within
`window` seconds are one flow (`orig_pkts` counts them), with conn_state S0 for a TCP SYN and
`action` LOGGED (or BLOCK / ALLOW when the prefix says so). Lines without SRC/DST are skipped
and counted. `year` completes syslog dates, which have none. Pure.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from ppsguard.digits import decimal
from ppsguard.flows.logs import LogStats
from ppsguard.flows.table import make_uid
from ppsguard.model.flows import Flow
from ppsguard.monitor.communityid import community_id

_FIELD = re.compile(r"\b([A-Z]+)=(\S*)")
_SYSLOG = re.compile(r"^([A-Z][a-z]{2})\s+(\d{1,2}) (\d\d):(\d\d):(\d\d)")
_ISO = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)")
_MONTHS = {
    month: index
    for index, month in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_PROTOCOLS = {"TCP": (6, "tcp"), "UDP": (17, "udp"), "ICMP": (1, "icmp"), "ICMPV6": (58, "icmp")}
_PREFIX = re.compile(r"(?:kernel:\s*)?(?:\[\s*\d+\.\d+\]\s*)?(.*?)\s*IN=")


@dataclass(slots=True)
class _Open:
    flow: Flow
    last: float


def _time(line: str, year: int) -> float | None:
    """The line's time stamp (ISO 8601 or syslog's), None without one; ValueError when it is
    there but names no real time (month "Dac", day 32, hour 25)."""
    iso = _ISO.match(line)
    if iso:
        text = iso.group(1).replace("Z", "+00:00")
        stamp = dt.datetime.fromisoformat(text)
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=dt.UTC)
        return stamp.timestamp()
    classic = _SYSLOG.match(line)
    if classic:
        month, day, hour, minute, second = classic.groups()
        if month not in _MONTHS:
            raise ValueError(f"no month {month!r}")
        stamp = dt.datetime(
            year, _MONTHS[month], int(day), int(hour), int(minute), int(second), tzinfo=dt.UTC
        )
        return stamp.timestamp()
    return None


def _port(text: str) -> int:
    """SPT= or DPT=: 0 when it is not a port (no digits, "²", past 65535)."""
    value = decimal(text) or 0
    return value if value <= 0xFFFF else 0


def _action(prefix: str) -> tuple[str, str | None]:
    if prefix.startswith("pps:"):
        return "LOGGED", prefix[4:].strip() or None
    upper = prefix.upper()
    if "BLOCK" in upper or "DROP" in upper or "REJECT" in upper:
        return "BLOCK", None
    if "ALLOW" in upper or "ACCEPT" in upper:
        return "ALLOW", None
    return "LOGGED", None


def read_netlog(
    lines: Iterable[str],
    name: str,
    *,
    year: int | None = None,
    window: float = 60.0,
    stats: LogStats | None = None,
) -> Iterator[Flow]:
    stats = stats or LogStats(name)
    year = year or dt.datetime.now(dt.UTC).year
    flows: dict[tuple[object, ...], _Open] = {}
    for number, raw in enumerate(lines, start=1):
        stats.lines += 1
        line = raw.rstrip("\n")
        if "SRC=" not in line or "DST=" not in line:
            if line.strip():
                stats.skipped += 1
            continue
        fields = dict(_FIELD.findall(line))
        try:
            src = ipaddress.ip_address(fields["SRC"])
            dst = ipaddress.ip_address(fields["DST"])
        except (KeyError, ValueError):
            stats.skipped += 1
            continue
        number_proto, proto = _PROTOCOLS.get(fields.get("PROTO", "").upper(), (0, ""))
        if not proto:
            proto = fields.get("PROTO", "").lower() or "unknown"
        sport, dport = _port(fields.get("SPT", "")), _port(fields.get("DPT", ""))
        try:
            when = _time(line, year)
        except ValueError:  # a time stamp that names no real time: the line is not trusted
            stats.skipped += 1
            continue
        stamp = when if when is not None else float(number)
        prefix_match = _PREFIX.search(line[line.find("kernel:") if "kernel:" in line else 0 :])
        prefix = prefix_match.group(1).strip() if prefix_match else ""
        action, entry = _action(prefix)
        size = decimal(fields.get("LEN", "")) or 0
        key = (proto, src, sport, dst, dport)
        current = flows.get(key)
        if current is not None and stamp - current.last <= window:
            f = current.flow
            current.flow = replace(
                f,
                orig_pkts=(f.orig_pkts or 0) + 1,
                orig_ip_bytes=(f.orig_ip_bytes or 0) + size,
                duration=stamp - f.ts,
            )
            current.last = stamp
            continue
        if current is not None:
            yield flows.pop(key).flow
        if number % 1024 == 0:  # sweep flows idle past the window now and then
            for stale in [k for k, o in flows.items() if stamp - o.last > window]:
                yield flows.pop(stale).flow
        cid = community_id(number_proto or 0, src, dst, sport, dport) if number_proto else None
        flows[key] = _Open(
            Flow(
                ts=stamp,
                uid=make_uid(cid or f"{key}", stamp),
                orig_h=src,
                orig_p=sport,
                resp_h=dst,
                resp_p=dport,
                proto=proto,
                duration=0.0,
                conn_state="S0" if proto == "tcp" and " SYN " in f"{line} " else "OTH",
                history="S" if proto == "tcp" and " SYN " in f"{line} " else None,
                orig_pkts=1,
                orig_ip_bytes=size,
                resp_pkts=0,
                resp_ip_bytes=0,
                community_id=cid,
                source=f"netlog:{name}",
                action=action,
                entry=entry,
            ),
            stamp,
        )
    for opened in sorted(flows.values(), key=lambda o: o.flow.ts):
        yield opened.flow
