"""Small random flow sets for the engines' differential tests: seed-building traffic (allowed,
refused, unanswered, unauthorized, undocumented, outbound, backscatter, IPv6, scans), and
probes (few sources trying few ports again and again, for the scan pass), every uid distinct;
and every combination of the columns an engine's SQL turns into flag bits (`state_cases`); odd but
valid tables (`odd_tables`) and ones every engine must refuse alike
(`refused_tables`).
Lab addresses only (198.18.0.0/15, 2001:db8::/32). Pure."""

from __future__ import annotations

import ipaddress
import random

import pyarrow as pa

from ppsguard.model.flows import Flow

SOURCES = ("198.18.0.11", "198.18.0.50", "198.18.0.66", "198.18.0.1", "198.19.3.4",
           "2001:db8::5", "198.18.0.12")  # fmt: skip
TARGETS = ("198.18.0.1", "198.18.0.1", "198.19.9.9", "2001:db8::1", "198.18.0.2")
PORTS = (21, 25, 80, 110, 3306, 1337, 22, 53)
STATES = (None, "SF", "S0", "REJ", "RSTO", "S1", "OTH")


def random_flows(rng: random.Random, count: int, *, coarse: bool = False) -> list[Flow]:
    """`coarse`: whole seconds 0-5 only, so that many flows share a time and only their uids
    order them."""
    flows = []
    for i in range(count):
        src = rng.choice(SOURCES)
        dst = rng.choice(TARGETS)
        if (":" in src) != (":" in dst):
            dst = "2001:db8::1" if ":" in src else "198.18.0.1"
        flows.append(
            Flow(
                ts=float(rng.randint(0, 5)) if coarse else round(rng.uniform(0, 50), 3),
                uid=f"C{i:05d}",
                orig_h=ipaddress.ip_address(src),
                orig_p=rng.randint(1, 65535),
                resp_h=ipaddress.ip_address(dst),
                resp_p=rng.choice((*PORTS, rng.randint(1, 65535))),
                proto=rng.choice(("tcp", "tcp", "udp", "icmp", "sctp")),
                service=None,
                duration=rng.choice((None, 0.1, 5.0)),
                orig_bytes=None,
                resp_bytes=None,
                conn_state=rng.choice(STATES),
                missed_bytes=None,
                history=rng.choice((None, "S", "^h")),
                orig_pkts=rng.randint(0, 3),
                resp_pkts=rng.randint(0, 3),
                tunnel_parents=(),
                community_id=None,
                source="test",
                action=None,
                entry=None,
            )
        )
    rng.shuffle(flows)
    return flows


def probe_flows(rng: random.Random, count: int) -> list[Flow]:
    """Few sources probing few (target, port)s again and again, answered or refused, many at
    one time: what the engines' first-contact read must narrow without changing a scan."""
    sources = ("198.18.0.66", "198.18.0.70", "2001:db8::7")
    targets = ("198.18.0.1", "2001:db8::1", "198.18.0.2")
    flows = []
    for i in range(count):
        source = rng.choice(sources)
        target = targets[1] if ":" in source else rng.choice((targets[0], targets[2]))
        answered = rng.random() < 0.4
        flows.append(
            Flow(
                ts=float(rng.randint(0, 12)),
                uid=f"CP{i:05d}",
                orig_h=ipaddress.ip_address(source),
                orig_p=40000 + i,
                resp_h=ipaddress.ip_address(target),
                resp_p=rng.choice((80, 81, 82, 83, 84, 85, 3306, 25)),
                proto=rng.choice(("tcp", "tcp", "udp")),
                duration=rng.choice((None, 0.1, 5.0)),
                conn_state="SF" if answered else rng.choice(("REJ", "S0")),
                history=rng.choice(("S", "S", "S", "^h", None)),
                orig_pkts=1,
                resp_pkts=1 if answered else 0,
                source="test",
            )
        )
    return flows


# `state_cases` without some of those columns (a table of flows need not carry them)
STATE_COLUMNS_DROPPED = ((), ("conn_state", "history"), ("conn_state", "orig_pkts", "resp_pkts"))


def state_cases() -> pa.Table:
    """Every combination of what decides a flow's flag bits (`flows.coded`): conn_state
    (established, aborted by the originator, refused, unanswered, none), history (backscatter,
    an opening, empty, none) and each packet count (none, 0, some), one flow each, uid distinct;
    the other audit columns fixed."""
    rows = [
        (state, history, sent, answered)
        for state in ("SF", "RSTO", "REJ", "S0", None)
        for history in ("^dA", "ShAdDaFf", "", None)
        for sent in (None, 0, 3)
        for answered in (None, 0, 2)
    ]
    n = len(rows)
    return pa.table(
        {
            "ts": pa.array([float(i) for i in range(n)]),
            "uid": pa.array([f"C{i:05d}" for i in range(n)]),
            "id.orig_h": pa.array(["198.18.0.11"] * n),
            "id.orig_p": pa.array([40000 + i for i in range(n)], pa.int64()),
            "id.resp_h": pa.array(["198.18.0.1"] * n),
            "id.resp_p": pa.array([80] * n, pa.int64()),
            "proto": pa.array(["tcp"] * n),
            "duration": pa.array([0.5] * n),
            "conn_state": pa.array([r[0] for r in rows], pa.string()),
            "history": pa.array([r[1] for r in rows], pa.string()),
            "orig_pkts": pa.array([r[2] for r in rows], pa.int64()),
            "resp_pkts": pa.array([r[3] for r in rows], pa.int64()),
        }
    )


def flags_read_from_texts(table: pa.Table) -> dict[str, int]:
    """Per uid, the flag bits `FlowColumns.of` reads from `table`'s texts and counts."""
    from ppsguard.flows.audit_columns import AddressCache, FlowColumns
    from ppsguard.flows.coded import ANSWERED, INITIATED, OK

    cols = FlowColumns.of(table.combine_chunks().to_batches()[0], AddressCache())
    bits = ANSWERED * cols.answered + OK * cols.ok + INITIATED * cols.initiated
    return dict(zip(table.column("uid").to_pylist(), bits.tolist(), strict=True))


UNTYPED = ("ts", "duration", "conn_state", "history", "orig_pkts", "resp_pkts")


def odd_tables(table: pa.Table) -> dict[str, pa.Table]:
    """Valid tables of flows that are odd, made from `table` (a flows table with every
    column): no rows ("empty"), and the time and the optional columns typed null, as pyarrow
    types a column of nothing but None ("null-typed"). Each engine must give the same
    document for each."""
    untyped = table
    for name in UNTYPED:
        index = untyped.schema.get_field_index(name)
        untyped = untyped.set_column(index, name, pa.nulls(table.num_rows))
    return {"empty": table.slice(0, 0), "null-typed": untyped}


def refused_tables(table: pa.Table) -> dict[str, tuple[pa.Table, str]]:
    """Tables of flows each engine must refuse with the same one-line error (the error's
    text beside each): a responder column typed null (flows without an address), and times
    that are not finite (NaN, infinities)."""
    index = table.schema.get_field_index("id.resp_h")
    no_address = table.set_column(index, "id.resp_h", pa.nulls(table.num_rows))
    odd = [float("nan"), float("inf"), float("-inf")]
    times = [odd[i % 3] if i % 4 == 3 else t for i, t in enumerate(table.column("ts").to_pylist())]
    index = table.schema.get_field_index("ts")
    not_finite = table.set_column(index, "ts", pa.array(times, pa.float64()))
    return {
        "no-address": (no_address, "column id.resp_h: a flow without an address"),
        "not-finite": (not_finite, "column ts: a value that is NaN or infinite"),
    }
