"""Flow logs people already keep: Zeek conn.log (TSV or JSON lines), Suricata EVE, AWS VPC.

    flows = read_zeek(lines, name)          # conn.log, header or JSON
    flows = read_eve(lines, name)           # EVE `flow` events; one-way `netflow` stitched
    flows = read_vpc(lines, name)           # v2 default or custom format (header line)

Both take an iterator of text lines (the edge opens, decompresses and bounds the file) and yield
`Flow`s. Zeek's unset `-` and empty `(empty)` become None / empty; a line that does not parse
raises `InputError` naming the file and line, unless `skip_bad` is set (then it is counted in
`LogStats.skipped`).

VPC records are one-way (one per direction and aggregation window, 1-10 minutes): records of the
two directions of one connection (same addresses and ports, swapped; overlapping windows) are
stitched into one biflow, whose originator is the side with the higher (ephemeral) port, or the
earlier record when the ports do not tell. `-` fields (NODATA, SKIPDATA) stay None; `action`
ACCEPT/REJECT is kept as evidence; REJECT with no reply is conn_state REJ. Pure.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from ppsguard.digits import finite, ranged
from ppsguard.errors import InputError
from ppsguard.flows.stitch import OneWay, Stitcher
from ppsguard.flows.table import make_uid
from ppsguard.model.flows import Flow
from ppsguard.monitor.communityid import PROTOCOL_NUMBERS, community_id

VPC_DEFAULT = (
    "version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport",
    "protocol", "packets", "bytes", "start", "end", "action", "log-status",
)  # fmt: skip


@dataclass(slots=True)
class LogStats:
    name: str
    lines: int = 0
    skipped: int = 0


def _bad(name: str, line: int, message: str) -> InputError:
    return InputError(message, file=name, line=line)


def read_zeek(
    lines: Iterable[str], name: str, *, skip_bad: bool = False, stats: LogStats | None = None
) -> Iterator[Flow]:
    stats = stats or LogStats(name)
    fields: list[str] | None = None
    separator = "\t"
    for number, raw in enumerate(lines, start=1):
        stats.lines += 1
        line = raw.rstrip("\n")
        if not line:
            continue
        try:
            if line.startswith("#"):
                if line.startswith("#separator"):
                    separator = _separator(line.partition(" ")[2])
                elif line.startswith("#fields"):
                    fields = line.split(separator)[1:]
                continue
            if line.startswith("{"):
                yield _zeek_flow(json.loads(line), name)
                continue
            if fields is None:
                raise ValueError("a conn.log line before its #fields header")
            values = line.split(separator)
            if len(values) != len(fields):
                raise ValueError(f"{len(values)} fields where the header names {len(fields)}")
            yield _zeek_flow(dict(zip(fields, values, strict=True)), name)
        except (ValueError, KeyError, TypeError) as exc:
            if not skip_bad:
                raise _bad(name, number, f"not a Zeek conn.log line: {exc}") from exc
            stats.skipped += 1


def _separator(value: str) -> str:
    """The value of a `#separator` line: Zeek writes `\\x09`; `\\xNN` escapes are decoded, the
    rest taken as written (no codec: `unicode_escape` warns or fails on other escapes)."""
    separator = re.sub(r"\\x([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), value)
    if not separator:
        raise ValueError("a #separator line that names no separator")
    return separator


def _value(record: dict[str, object], key: str) -> object:
    value = record.get(key)
    return None if value in ("-", None) else value


def _zeek_flow(record: dict[str, object], name: str) -> Flow:
    def number(key: str) -> int | None:
        value = _value(record, key)
        return None if value is None else int(str(value))

    def text(key: str) -> str | None:
        value = _value(record, key)
        return None if value in (None, "(empty)") else str(value)

    raw_parents = record.get("tunnel_parents") or []
    if isinstance(raw_parents, str):
        parents = [] if raw_parents in ("-", "(empty)") else raw_parents.split(",")
    else:
        parents = [str(p) for p in raw_parents] if isinstance(raw_parents, list) else []
    duration = _value(record, "duration")
    return Flow(
        ts=finite(record["ts"], "ts"),
        uid=str(record.get("uid") or ""),
        orig_h=ipaddress.ip_address(str(record["id.orig_h"])),
        orig_p=ranged(int(str(record["id.orig_p"])), 0xFFFF, "id.orig_p"),
        resp_h=ipaddress.ip_address(str(record["id.resp_h"])),
        resp_p=ranged(int(str(record["id.resp_p"])), 0xFFFF, "id.resp_p"),
        proto=str(record["proto"]),
        service=text("service"),
        duration=None if duration is None else finite(duration, "duration"),
        orig_bytes=number("orig_bytes"),
        resp_bytes=number("resp_bytes"),
        conn_state=text("conn_state"),
        missed_bytes=number("missed_bytes"),
        history=text("history"),
        orig_pkts=number("orig_pkts"),
        orig_ip_bytes=number("orig_ip_bytes"),
        resp_pkts=number("resp_pkts"),
        resp_ip_bytes=number("resp_ip_bytes"),
        tunnel_parents=tuple(parents),
        community_id=text("community_id"),
        source=f"zeek:{name}",
    )


def read_vpc(
    lines: Iterable[str], name: str, *, skip_bad: bool = False, stats: LogStats | None = None
) -> Iterator[Flow]:
    stats = stats or LogStats(name)
    columns: list[str] | tuple[str, ...] = VPC_DEFAULT
    stitcher = Stitcher(f"vpc:{name}")
    for number, raw in enumerate(lines, start=1):
        stats.lines += 1
        parts = raw.split()
        if not parts:
            continue
        if parts[0] == "version" or "srcaddr" in parts:
            columns = parts
            continue
        try:
            if len(parts) != len(columns):
                raise ValueError(f"{len(parts)} fields where the format names {len(columns)}")
            record = _vpc_record(dict(zip(columns, parts, strict=True)))
        except (ValueError, KeyError) as exc:
            if not skip_bad:
                raise _bad(name, number, f"not a VPC flow log line: {exc}") from exc
            stats.skipped += 1
            continue
        if record is None:
            continue
        yield from stitcher.add(record)
    yield from stitcher.flush()


def _vpc_record(fields: dict[str, str]) -> OneWay | None:
    if fields.get("log-status") in ("NODATA", "SKIPDATA") or fields.get("srcaddr", "-") == "-":
        return None

    def number(key: str) -> int | None:
        value = fields.get(key, "-")
        return None if value == "-" else int(value)

    return OneWay(
        src=ipaddress.ip_address(fields["srcaddr"]),
        dst=ipaddress.ip_address(fields["dstaddr"]),
        sport=ranged(number("srcport") or 0, 0xFFFF, "srcport"),
        dport=ranged(number("dstport") or 0, 0xFFFF, "dstport"),
        protocol=ranged(number("protocol") or 0, 0xFF, "protocol"),
        packets=number("packets"),
        size=number("bytes"),
        start=finite(fields.get("start", "0"), "start"),
        end=finite(fields.get("end", "0"), "end"),
        action=None if fields.get("action", "-") == "-" else fields["action"],
    )


def with_source(flow: Flow, source: str) -> Flow:
    return replace(flow, source=source)


_EVE_STATES = {"new": "S0", "established": "S1", "closed": "SF", "bypassed": "OTH"}


def read_eve(
    lines: Iterable[str], name: str, *, skip_bad: bool = False, stats: LogStats | None = None
) -> Iterator[Flow]:
    """Suricata EVE JSON: `flow` events are biflows; one-way `netflow` events are stitched."""
    stats = stats or LogStats(name)
    stitcher = Stitcher(f"eve:{name}")
    for number, raw in enumerate(lines, start=1):
        stats.lines += 1
        if not raw.strip():
            continue
        try:
            event = json.loads(raw)
            kind = event.get("event_type")
            if kind not in ("flow", "netflow"):
                continue
            src = ipaddress.ip_address(event["src_ip"])
            dst = ipaddress.ip_address(event["dest_ip"])
            proto = str(event.get("proto", "")).lower()
            number_proto = PROTOCOL_NUMBERS.get(proto, 0)
            sport = ranged(int(event.get("src_port", 0)), 0xFFFF, "src_port")
            dport = ranged(int(event.get("dest_port", 0)), 0xFFFF, "dest_port")
            if kind == "netflow":
                net = event["netflow"]
                yield from stitcher.add(
                    OneWay(src, dst, sport, dport, number_proto, int(net["pkts"]),
                           int(net["bytes"]), _eve_time(net["start"]), _eve_time(net["end"]))
                )  # fmt: skip
                continue
            flow = event["flow"]
            start, end = _eve_time(flow["start"]), _eve_time(flow.get("end", flow["start"]))
            cid = event.get("community_id") or (
                community_id(number_proto, src, dst, sport, dport) if number_proto else None
            )
            yield Flow(
                ts=start,
                uid=make_uid(cid or f"{src}{sport}{dst}{dport}", start),
                orig_h=src,
                orig_p=sport,
                resp_h=dst,
                resp_p=dport,
                proto="icmp" if proto.startswith("ipv6-icmp") else proto,
                service=event.get("app_proto"),
                duration=round(end - start, 6),
                conn_state=_EVE_STATES.get(str(flow.get("state"))),
                orig_pkts=int(flow.get("pkts_toserver", 0)),
                orig_ip_bytes=int(flow.get("bytes_toserver", 0)),
                resp_pkts=int(flow.get("pkts_toclient", 0)),
                resp_ip_bytes=int(flow.get("bytes_toclient", 0)),
                community_id=cid,
                source=f"eve:{name}",
                action=str(flow["action"]).upper() if flow.get("action") else None,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            if not skip_bad:
                raise _bad(name, number, f"not a Suricata EVE event: {exc}") from exc
            stats.skipped += 1
    yield from stitcher.flush()


def _eve_time(text: str) -> float:
    """`2026-12-02T07:14:48.123456+0000` (Suricata's form) as epoch seconds."""
    import datetime as dt

    value = str(text)
    if len(value) > 5 and value[-5] in "+-" and value[-3] != ":":
        value = value[:-2] + ":" + value[-2:]
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
