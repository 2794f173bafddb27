"""One-way flow records (VPC flow logs, NetFlow, IPFIX) stitched into bidirectional flows.

    stitcher = Stitcher(source="vpc:flows.log")
    for record in records: yield from stitcher.add(record)
    yield from stitcher.flush()

Exporters report each direction of a connection as its own record. Two records whose addresses
and ports are swapped and whose time spans overlap are one connection: the originator is the
side whose source port is the higher (ephemeral) one when the ports tell, else the earlier
record. A record whose partner never comes is a flow on its own (no reply: S0, or REJ when the
evidence says REJECT). Records wait at most `window` seconds (of record time) for a partner, so
memory is bounded by what arrives within one window. Pure.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ppsguard.flows.table import make_uid
from ppsguard.model.flows import Flow
from ppsguard.model.net import IPAddress
from ppsguard.monitor.communityid import community_id

IANA = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmp", 132: "sctp"}


@dataclass(slots=True)
class OneWay:
    src: IPAddress
    dst: IPAddress
    sport: int
    dport: int
    protocol: int
    packets: int | None
    size: int | None
    start: float
    end: float
    action: str | None = None
    flags: int = 0  # TCP flags seen (NetFlow), 0 when unknown


class Stitcher:
    def __init__(self, source: str, *, window: float = 900.0) -> None:
        self.source = source
        self.window = window
        self.pending: dict[tuple[object, ...], OneWay] = {}
        self.records = 0
        self._added = 0

    def add(self, record: OneWay) -> Iterator[Flow]:
        self.records += 1
        reverse = (record.protocol, record.dst, record.dport, record.src, record.sport)
        partner = self.pending.pop(reverse, None)
        if partner is not None and partner.start <= record.end and record.start <= partner.end:
            yield stitch(partner, record, self.source)
            return
        if partner is not None:
            yield stitch(partner, None, self.source)
        self._added += 1
        if self._added % 1024 == 0:  # records older than one window will find no partner
            for old in [k for k, r in self.pending.items() if record.start - r.end > self.window]:
                yield stitch(self.pending.pop(old), None, self.source)
        key = (record.protocol, record.src, record.sport, record.dst, record.dport)
        earlier = self.pending.pop(key, None)
        if earlier is not None:
            yield stitch(earlier, None, self.source)
        self.pending[key] = record

    def flush(self) -> Iterator[Flow]:
        remaining = sorted(self.pending.values(), key=lambda r: r.start)
        self.pending.clear()
        for record in remaining:
            yield stitch(record, None, self.source)


FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10


def conn_state(orig: OneWay, resp: OneWay | None) -> str:
    """Zeek's conn_state as far as one-way records tell: from the TCP flags seen each way
    when the exporter gives them (NetFlow, IPFIX), else from whether the reverse answered."""
    if resp is None or not resp.packets:
        return "REJ" if orig.action == "REJECT" else "S0"
    if orig.protocol != 6 or not (orig.flags or resp.flags):
        return "SF"
    o, r = orig.flags, resp.flags
    if r & RST and not r & SYN:
        return "REJ" if o & SYN and not o & ACK else "RSTR"
    if o & RST:
        return "RSTO" if r & SYN else "RSTOS0"
    if r & RST:
        return "RSTR"
    if o & FIN and r & FIN:
        return "SF"
    if o & FIN:
        return "S2"
    if r & FIN:
        return "S3"
    return "S1" if r & SYN else "OTH"


def stitch(first: OneWay, second: OneWay | None, source: str) -> Flow:
    """One biflow from a record and its reverse (or from a lone record)."""
    orig, resp = first, second
    if second is not None and (second.sport > second.dport and first.sport < first.dport):
        orig, resp = second, first
    proto = IANA.get(orig.protocol, str(orig.protocol))
    state = conn_state(orig, resp)
    cid = community_id(orig.protocol, orig.src, orig.dst, orig.sport, orig.dport)
    start = min(orig.start, resp.start) if resp else orig.start
    end = max(orig.end, resp.end) if resp else orig.end
    action = orig.action if resp is None or resp.action == orig.action else "MIXED"
    return Flow(
        ts=start,
        uid=make_uid(cid, start),
        orig_h=orig.src,
        orig_p=orig.sport,
        resp_h=orig.dst,
        resp_p=orig.dport,
        proto=proto,
        duration=round(end - start, 6),
        conn_state=state,
        orig_pkts=orig.packets,
        orig_ip_bytes=orig.size,
        resp_pkts=resp.packets if resp else 0,
        resp_ip_bytes=resp.size if resp else 0,
        community_id=cid,
        source=source,
        action=action,
    )
