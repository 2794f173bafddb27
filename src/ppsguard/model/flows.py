"""A connection as evidence describes it: one bidirectional flow with Zeek's conn.log fields.

Whatever the source (a capture, a Zeek or Suricata log, a cloud flow log, NetFlow, firewall log
lines), `pps flows` turns it into `Flow`s: the originator and responder with their ports, the
transport, the service if known, start time and duration, per-direction payload and IP bytes
and packets, Zeek's `conn_state` and `history`, missed bytes, the tunnel it came in, the
Community ID, and `source` (which reader and file). Fields a source does not give are None.
Pure values.
"""

from __future__ import annotations

from dataclasses import dataclass

from ppsguard.model.net import IPAddress

CONN_STATES = (
    "S0",  # attempt seen, no reply
    "S1",  # established, not terminated
    "SF",  # normal establishment and termination
    "REJ",  # attempt rejected
    "S2",  # established, close attempt by originator seen, no reply from responder
    "S3",  # established, close attempt by responder seen, no reply from originator
    "RSTO",  # established, originator aborted (RST)
    "RSTR",  # responder sent a RST
    "RSTOS0",  # originator sent a SYN then a RST, never saw a SYN-ACK
    "RSTRH",  # responder sent a SYN-ACK then a RST, never saw a SYN from the originator
    "SH",  # originator sent a SYN then a FIN, never saw a SYN-ACK
    "SHR",  # responder sent a SYN-ACK then a FIN, never saw a SYN
    "OTH",  # no SYN seen, just midstream traffic
)


@dataclass(frozen=True, slots=True)
class Flow:
    ts: float
    uid: str
    orig_h: IPAddress
    orig_p: int
    resp_h: IPAddress
    resp_p: int
    proto: str  # "tcp", "udp", "icmp", or the number as text
    service: str | None = None
    duration: float | None = None
    orig_bytes: int | None = None
    resp_bytes: int | None = None
    conn_state: str | None = None
    missed_bytes: int | None = None
    history: str | None = None
    orig_pkts: int | None = None
    orig_ip_bytes: int | None = None
    resp_pkts: int | None = None
    resp_ip_bytes: int | None = None
    tunnel_parents: tuple[str, ...] = ()
    community_id: str | None = None
    source: str = ""
    action: str | None = None  # ACCEPT/REJECT when the evidence says what a firewall did
    entry: str | None = None  # the registry entry a `pps:<entry>` log prefix names
