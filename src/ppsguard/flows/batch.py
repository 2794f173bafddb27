"""The vectorised half of the chunk path: flow keys, groups, runs and their sums, all at once.

    plan = plan_chunk(columns, timeouts)   # Plan: packets grouped by flow, cut into items

The packets of a chunk (`columns.Columns`, in frame order) are given `FlowTable`'s key (the
5-tuple with its two ends in order; ICMP on addresses only), hashed to 64 bits and sorted by
hash (stable, so each flow's packets keep their order); a hash collision is detected by
comparing every packet's key with its group's and then grouping falls back to an exact sort.
Each group is cut into items: a TCP packet with SYN, FIN or RST is an item of its own (the
per-packet state machine of `table.py` handles it), and the packets between are runs whose
effect is summed here per direction: packets, IP bytes, payload, the first pure ACK, the
first data and first retransmission, and the sequence-space sums Zeek's byte counts need
(missed bytes, the highest end) relative to the run's first data segment. A run also ends at
an inactivity gap. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ppsguard.flows.columns import Columns
from ppsguard.flows.decode import ICMP, ICMP6, TCP
from ppsguard.flows.runs import run_starts

I64 = npt.NDArray[np.int64]
SYN_FIN_RST, ACK = 0x07, 0x10
NONE = 1 << 62  # "no such packet" as an index
WINDOW = 1 << 29  # runs whose sequence numbers spread wider go packet by packet
SPACING = 1 << 34  # wider than any run's relative sequence span


@dataclass(slots=True)
class Plan:
    order: I64  # packet rows sorted by flow (each flow's packets in frame order)
    group_first: list[int]  # per group: position in `order` of its first packet
    lo_side: npt.NDArray[np.bool_]  # per row: the source is the lower end of the key
    item_start: list[int]  # per item: position in `order`
    item_end: list[int]
    item_event: list[bool]
    item_gap: list[bool]  # an inactivity gap before the item's first packet
    sums: dict[str, dict[str, list[int]]]  # per direction ("lo", "hi"), name, item: `_run_sums`
    last_time: list[float]  # per item: time of its last packet


def _mix(words: list[npt.NDArray[np.uint64]]) -> npt.NDArray[np.uint64]:
    value = np.zeros(len(words[0]), dtype=np.uint64)
    for index, word in enumerate(words):
        value = (value ^ word) * np.uint64(0x9E3779B97F4A7C15 + 2 * index)
        value ^= value >> np.uint64(29)
    return value


def key_words(c: Columns) -> tuple[list[npt.NDArray[np.uint64]], npt.NDArray[np.bool_]]:
    """The words of each packet's flow key, and whether its source is the key's lower end."""
    icmp = np.isin(c.protocol, (ICMP, ICMP6))
    sport = np.where(icmp, 0, c.source_port).astype(np.uint64)
    dport = np.where(icmp, 0, c.destination_port).astype(np.uint64)
    sh, sl, dh, dl = c.source_high, c.source_low, c.destination_high, c.destination_low
    lo = (sh < dh) | ((sh == dh) & ((sl < dl) | ((sl == dl) & (sport <= dport))))
    head = (
        c.protocol.astype(np.uint64)
        | (c.family.astype(np.uint64) << np.uint64(8))
        | (np.where(lo, sport, dport) << np.uint64(16))
        | (np.where(lo, dport, sport) << np.uint64(32))
    )
    words = [
        head,
        np.where(lo, sh, dh),
        np.where(lo, sl, dl),
        np.where(lo, dh, sh),
        np.where(lo, dl, sl),
    ]
    return words, lo


def _group(words: list[npt.NDArray[np.uint64]]) -> tuple[I64, npt.NDArray[np.bool_]]:
    """(order, first-of-group flags along it): by hash, exact on a collision."""
    order = np.argsort(_mix(words), kind="stable")
    sorted_words = [w[order] for w in words]
    change = run_starts(sorted_words)
    hashes = _mix(sorted_words)
    same_hash_new_key = change[1:] & (hashes[1:] == hashes[:-1])
    if same_hash_new_key.any():  # a collision (or interleaved keys): sort exactly instead
        order = np.lexsort(words[::-1])
        change = run_starts([w[order] for w in words])
    return order.astype(np.int64), change


def _timeouts(c: Columns, timeouts: dict[int, float], other: float) -> npt.NDArray[np.float64]:
    out = np.full(len(c), other)
    for protocol, seconds in timeouts.items():
        out[c.protocol == protocol] = seconds
    return out


def plan_chunk(c: Columns, timeouts: dict[int, float], other: float) -> Plan:
    """Group and cut a chunk (see the module docstring); times must not go backwards."""
    words, lo = key_words(c)
    order, first = _group(words)
    time = c.time[order]
    limit = _timeouts(c, timeouts, other)[order]
    gap = np.zeros(len(order), dtype=bool)
    gap[1:] = ~first[1:] & (time[1:] - time[:-1] > limit[1:])
    tcp = c.protocol[order] == TCP
    flags = c.flags[order]
    event = tcp & ((flags & SYN_FIN_RST) != 0)
    start = first | event | gap
    start[1:] |= event[:-1]
    items = np.flatnonzero(start)
    ends = np.append(items[1:], len(order))
    sums = _run_sums(c, order, lo[order], items)
    return Plan(
        order=order,
        group_first=np.flatnonzero(first).tolist(),
        lo_side=lo,
        item_start=items.tolist(),
        item_end=ends.tolist(),
        item_event=event[items].tolist(),
        item_gap=gap[items].tolist(),
        sums=sums,
        last_time=time[ends - 1].tolist() if len(items) else [],
    )


def _run_sums(
    c: Columns, order: I64, lo: npt.NDArray[np.bool_], items: I64
) -> dict[str, dict[str, list[int]]]:
    """Per item and direction: packets, ip bytes, payload; for TCP runs the first pure ACK,
    first ACK, first data, first retransmission (as positions), the first data segment's
    sequence number, the missed bytes after it, the highest end relative to it, and whether
    the run fits the window where sequence arithmetic is exact."""
    n = len(order)
    out: dict[str, dict[str, list[int]]] = {"lo": {}, "hi": {}}
    if n == 0:
        return out
    position = np.arange(n, dtype=np.int64)
    marks = np.zeros(n, dtype=np.int64)
    marks[items] = 1
    item_of = np.cumsum(marks) - 1
    payload = c.payload[order]
    flags = c.flags[order]
    tcp = c.protocol[order] == TCP
    sequence = c.sequence[order]
    data = tcp & (payload > 0)
    pure_ack = tcp & (payload == 0) & ((flags & ACK) != 0)
    acked = tcp & ((flags & ACK) != 0)
    ip_length = c.ip_length[order]
    for side, mask in (("lo", lo), ("hi", ~lo)):
        sums = out[side]
        sums["packets"] = np.add.reduceat(mask.astype(np.int64), items).tolist()
        sums["ip"] = np.add.reduceat(np.where(mask, ip_length, 0), items).tolist()
        sums["payload"] = np.add.reduceat(np.where(mask, payload, 0), items).tolist()
        for name, which in (("ack", pure_ack), ("acked", acked), ("data", data)):
            sums[name] = np.minimum.reduceat(np.where(mask & which, position, NONE), items).tolist()
        _sequence_sums(sums, mask & data, position, item_of, sequence, payload, len(items))
    return out


def _sequence_sums(  # noqa: PLR0917 -- private
    out: dict[str, list[int]],
    data: npt.NDArray[np.bool_],
    position: I64,
    item_of: I64,
    sequence: I64,
    payload: I64,
    items: int,
) -> None:
    rows = np.flatnonzero(data)
    item = item_of[rows]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = item[1:] != item[:-1]
    head = np.flatnonzero(first)
    base = np.repeat(sequence[rows][head], np.diff(np.append(head, len(rows))))
    relative = (sequence[rows] - base) % (1 << 32)
    relative = np.where(relative >= 1 << 31, relative - (1 << 32), relative)
    end = relative + payload[rows]
    fits = (np.abs(relative) < WINDOW) & (payload[rows] < WINDOW)
    lifted = end + item * SPACING  # one cumulative maximum for every run at once
    highest = np.maximum.accumulate(lifted) - item * SPACING if len(rows) else end
    before = np.empty(len(rows), dtype=np.int64)
    before[1:] = highest[:-1]
    before[first] = -(1 << 40)
    retransmitted = ~first & (end <= before)
    missed = np.where(first, 0, np.maximum(relative - before, 0))
    begin = np.full(items, -1, dtype=np.int64)
    begin[item[head]] = sequence[rows][head]
    out["begin"] = begin.tolist()
    for name, values, reduce, empty in (
        ("missed", missed, np.add, 0),
        ("high", highest, np.maximum, -(1 << 40)),
        ("retransmit", np.where(retransmitted, position[rows], NONE), np.minimum, NONE),
        ("unfit", (~fits).astype(np.int64), np.add, 0),
    ):
        column = np.full(items, empty, dtype=np.int64)
        if len(rows):
            column[item[head]] = reduce.reduceat(values, head)
        out[name] = column.tolist()
