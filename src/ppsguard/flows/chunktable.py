"""Flows from chunks of packets, exactly as `table.FlowTable` makes them from one packet at a time.

    table = ChunkTable(FlowTable(source="pcap:trace.pcap"))
    for columns in chunks: yield from table.add(columns)
    yield from table.flush()

The NumPy half (`batch.plan_chunk`) groups a chunk's packets by flow and sums the runs between
TCP control packets; here, once per flow and not once per packet, each group is walked item by
item on the same `State`s and with the same code as the per-packet table: a control packet (SYN,
FIN, RST) goes through `FlowTable._account`, a run is applied from its sums (counters, Zeek's
`history` letters in the order of their first packet, endpoint states, sequence-space bytes);
a run whose sequence numbers do not continue cleanly from the flow's (a retransmission
overlapping what came before, a jump past the exact window) is replayed packet by packet.

What the per-packet table does as time passes is reproduced to the row and to the order of
output: a flow ends at an inactivity gap, at a sweep of idle flows (every `SWEEP_EVERY` seconds
of packet time, in the table's order of flow starts), or when a new SYN reuses the 5-tuple of a
terminated connection; ended flows are emitted in the order the per-packet table would emit
them. A chunk whose times go backwards (merged captures) is fed to the per-packet table
packet by packet instead. Pure.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

import numpy as np

from ppsguard.flows.batch import NONE, Plan, plan_chunk
from ppsguard.flows.columns import Columns
from ppsguard.flows.decode import ICMP, ICMP6, TCP, Packet
from ppsguard.flows.table import (
    ACK,
    CLOSE_DELAY,
    ESTABLISHED,
    INACTIVE,
    OTHER_TIMEOUT,
    PARTIAL,
    SWEEP_EVERY,
    SYN,
    SYN_ACK_SENT,
    SYN_SENT,
    FlowTable,
    Key,
    Side,
    State,
)
from ppsguard.model.flows import Flow

MASK32 = (1 << 32) - 1
Emitted = tuple[int, int, int, State]  # (packet position, 0 sweep / 1 own packet, start, state)
Sums = dict[str, list[int]]  # one direction's run sums (`batch.Plan.sums`)


def _position(letter: tuple[int, str, Side, bool]) -> int:
    return letter[0]


def _raw(high: int, low: int, family: int) -> bytes:
    if family == 4:
        return low.to_bytes(4, "big")
    return ((high << 64) | low).to_bytes(16, "big")


class ChunkTable:
    def __init__(self, table: FlowTable) -> None:
        self.table = table
        self.started: dict[Key, int] = {}  # flow start positions: the per-packet table's order
        # runs are cut at silences a TCP flow may end at (after its close, CLOSE_DELAY)
        tcp = min(table.timeouts.get(TCP, OTHER_TIMEOUT), CLOSE_DELAY)
        self.gaps = {**table.timeouts, TCP: tcp}
        self.shortest = min([*table.timeouts.values(), OTHER_TIMEOUT])  # of the open flows
        self.floor = min(self.shortest, CLOSE_DELAY)  # no flow ends at a shorter silence
        self.closing: dict[Key, State] = {}  # reset or closed TCP flows: gone CLOSE_DELAY on
        self.latest = float("-inf")
        self.oldest = float("inf")  # at most the oldest `last` among the live flows

    # -- the per-packet path, for chunks whose time goes backwards --------------------------
    def _packet(self, c: Columns, row: int, source: bytes, destination: bytes) -> Packet:
        return Packet(
            float(c.time[row]), int(c.protocol[row]), source, destination,
            int(c.source_port[row]), int(c.destination_port[row]), int(c.flags[row]),
            int(c.sequence[row]), int(c.ip_length[row]), int(c.payload[row]),
            c.tunnels.get(row),
        )  # fmt: skip

    def _by_packet(self, c: Columns) -> Iterator[Flow]:
        table = self.table
        ordered = sorted(table.flows.items(), key=lambda item: self.started.get(item[0], -1))
        table.flows = dict(ordered)
        family = c.family.tolist()
        sh, sl = c.source_high.tolist(), c.source_low.tolist()
        dh, dl = c.destination_high.tolist(), c.destination_low.tolist()
        for row in range(len(c)):
            source = _raw(sh[row], sl[row], family[row])
            destination = _raw(dh[row], dl[row], family[row])
            yield from table.add(self._packet(c, row, source, destination))
        self.started = {key: rank for rank, key in enumerate(table.flows)}
        self.closing = {k: s for k, s in table.flows.items() if s.protocol == TCP and s.terminated}
        self.latest = max(self.latest, float(c.time.max()))
        self.oldest = min(self.oldest, float(c.time.min()))

    # -- the chunk path ---------------------------------------------------------------------
    def add(self, c: Columns) -> Iterator[Flow]:
        """Account a chunk of packets; yield the flows that ended within it, in order."""
        if len(c) == 0:
            return
        time = c.time
        if time[0] < self.latest or bool((time[1:] < time[:-1]).any()):
            yield from self._by_packet(c)
            return
        table = self.table
        base = table.packets
        sweeps, sweep_times = self._sweeps(c)
        plan = plan_chunk(c, self.gaps, OTHER_TIMEOUT)
        emitted: list[Emitted] = []
        touched: set[Key] = set()
        walker = _Walker(self, c, plan, sweeps, sweep_times, base, emitted)
        for group in range(len(plan.group_first)):
            touched.add(walker.group(group))
        self.oldest = min(self.oldest, float(time[0]))  # the flows this chunk touched
        self._sweep_untouched(touched, sweeps, sweep_times, base, emitted)
        table.packets += len(c)
        self.latest = float(time[-1])
        emitted.sort(key=lambda e: (e[0], e[1], e[2]))
        for _, _, _, state in emitted:
            yield table._flow(state)

    def flush(self) -> Iterator[Flow]:
        """Every remaining flow, in order of start (as `FlowTable.flush`)."""
        remaining = sorted(
            self.table.flows.items(), key=lambda i: (i[1].first, self.started.get(i[0], -1))
        )
        self.table.flows.clear()
        self.started.clear()
        for _, state in remaining:
            yield self.table._flow(state)

    def _sweeps(self, c: Columns) -> tuple[list[int], list[float]]:
        """The rows at which the per-packet table sweeps idle flows, and their times."""
        running = c.time  # times do not go backwards here
        rows: list[int] = []
        times: list[float] = []
        last = self.table._last_sweep
        n = len(running)
        while True:
            row = int(np.searchsorted(running, last + SWEEP_EVERY, side="left"))
            while row > 0 and float(running[row - 1]) - last >= SWEEP_EVERY:
                row -= 1  # the table tests `time - last >= SWEEP_EVERY`: rounding may differ
            while row < n and not float(running[row]) - last >= SWEEP_EVERY:
                row += 1
            if row >= n:
                break
            last = float(running[row])
            rows.append(row)
            times.append(last)
        self.table._last_sweep = last
        return rows, times

    def _sweep_untouched(
        self,
        touched: set[Key],
        sweeps: list[int],
        sweep_times: list[float],
        base: int,
        emitted: list[Emitted],
    ) -> None:
        """End the flows this chunk did not touch that a sweep within it finds idle. All flows
        are looked at only when the oldest could have timed out (one bound); otherwise only
        the closed and reset ones, which end after CLOSE_DELAY."""
        if not sweeps:
            return
        table = self.table
        latest = sweep_times[-1]
        everyone = latest - self.oldest > self.shortest
        if not everyone and not self.closing:
            return
        looked_at = table.flows if everyone else self.closing
        if everyone:
            self.oldest = float("inf")
        closing: dict[Key, State] = {}
        gone: list[Key] = []
        for key, state in looked_at.items():
            if everyone:
                self.oldest = min(self.oldest, state.last)
            elif table.flows.get(key) is not state:
                continue  # ended, or started again, since
            closed = state.protocol == TCP and state.terminated
            if key not in touched:
                limit = CLOSE_DELAY if closed else table.timeouts.get(state.protocol, OTHER_TIMEOUT)
                if latest - state.last > limit:
                    at = _first_sweep(sweeps, sweep_times, -1, state.last, limit)
                    emitted.append((base + sweeps[at], 0, self.started.get(key, -1), state))
                    gone.append(key)
                    continue
            if closed:
                closing[key] = state
        self.closing = closing
        for key in gone:
            del table.flows[key]
            self.started.pop(key, None)


def _first_sweep(
    sweeps: list[int], sweep_times: list[float], after: int, last: float, limit: float
) -> int:
    """Index of the first sweep at a row after `after` that finds a flow last seen at `last`
    idle (the caller knows one does)."""
    index = bisect.bisect_right(sweeps, after)
    while not sweep_times[index] - last > limit:
        index += 1
    return index


class _Walker:
    """One chunk's groups walked item by item (see the module docstring)."""

    def __init__(  # noqa: PLR0917 -- private
        self,
        owner: ChunkTable,
        c: Columns,
        plan: Plan,
        sweeps: list[int],
        sweep_times: list[float],
        base: int,
        emitted: list[Emitted],
    ) -> None:
        self.owner, self.c, self.plan = owner, c, plan
        self.sweeps, self.sweep_times, self.base, self.emitted = sweeps, sweep_times, base, emitted
        self.order = plan.order
        starts = np.array(plan.item_start, dtype=np.int64)
        rows = plan.order[starts]
        self.rows = rows.tolist()  # per item: the row of its first packet, and that packet
        self.last_rows = plan.order[np.array(plan.item_end, dtype=np.int64) - 1].tolist()
        self.time = c.time[rows].tolist()
        self.lo = plan.lo_side[rows].tolist()
        self.protocol, self.sport, self.dport, self.flags, self.sequence = (
            column[rows].tolist()
            for column in (c.protocol, c.source_port, c.destination_port, c.flags, c.sequence)
        )
        self.ip_length = c.ip_length[rows].tolist()
        self.payload = c.payload[rows].tolist()
        self.family, self.source_high, self.source_low, self.destination_high = (
            column[rows].tolist()
            for column in (c.family, c.source_high, c.source_low, c.destination_high)
        )
        self.destination_low = c.destination_low[rows].tolist()
        self.lo_sums, self.hi_sums = plan.sums["lo"], plan.sums["hi"]
        self.events = plan.item_event
        first_items = np.searchsorted(starts, np.array(plan.group_first, dtype=np.int64))
        self.group_items = [*first_items.tolist(), len(plan.item_start)]  # per group: items

    def _end(self, state: State, key: Key, row: int, kind: int) -> None:
        self.emitted.append((self.base + row, kind, self.owner.started.pop(key, -1), state))

    def _caught(self, after: int, row: int, last: float, limit: float) -> int | None:
        """The row of the first sweep in (after, row] that finds the flow idle, if one does."""
        sweeps, times = self.sweeps, self.sweep_times
        latest = bisect.bisect_right(sweeps, row) - 1
        if latest < 0 or sweeps[latest] <= after or not times[latest] - last > limit:
            return None
        return sweeps[_first_sweep(sweeps, times, after, last, limit)]

    def group(self, group: int) -> Key:
        table = self.owner.table
        first, stop = self.group_items[group], self.group_items[group + 1]
        key, lo_raw, hi_raw = self._key(first)
        state = table.flows.pop(key, None)
        timeouts, floor = table.timeouts, self.owner.floor
        previous_row = -1
        rows, times, events, last_rows = self.rows, self.time, self.events, self.last_rows
        for item in range(first, stop):
            row = rows[item]
            if state is not None and times[item] - state.last > floor:
                limit = state.idle_limit(timeouts)
                if times[item] - state.last > limit:
                    swept = self._caught(previous_row, row, state.last, limit)
                    at, kind = (row, 1) if swept is None else (swept, 0)
                    self._end(state, key, at, kind)
                    state = None
            if events[item]:
                packet = self._packet(item, lo_raw, hi_raw)
                if state is not None and packet.flags & (SYN | ACK) == SYN and state.terminated:
                    self._end(state, key, row, 1)
                    state = None
                if state is None:
                    state = self._start(key, packet, row)
                table._account(state, packet)
            else:
                if state is None:
                    state = self._start(key, self._packet(item, lo_raw, hi_raw), row)
                self._run(state, item)
            previous_row = last_rows[item]
        if state is not None:
            swept = self._caught(previous_row, 1 << 62, state.last, state.idle_limit(timeouts))
            if swept is not None:
                self._end(state, key, swept, 0)
            else:
                table.flows[key] = state
                if state.protocol == TCP and state.terminated:
                    self.owner.closing[key] = state
        return key

    def _key(self, item: int) -> tuple[Key, bytes, bytes]:
        """The flow key of an item's first packet, and the key's two ends as raw addresses."""
        family, lo = self.family[item], self.lo[item]
        source = _raw(self.source_high[item], self.source_low[item], family)
        destination = _raw(self.destination_high[item], self.destination_low[item], family)
        lo_raw, hi_raw = (source, destination) if lo else (destination, source)
        protocol = self.protocol[item]
        if protocol in (ICMP, ICMP6):
            return (protocol, lo_raw, 0, hi_raw, 0), lo_raw, hi_raw
        sport, dport = self.sport[item], self.dport[item]
        lo_port, hi_port = (sport, dport) if lo else (dport, sport)
        return (protocol, lo_raw, lo_port, hi_raw, hi_port), lo_raw, hi_raw

    def _packet(self, item: int, lo_raw: bytes, hi_raw: bytes) -> Packet:
        source, destination = (lo_raw, hi_raw) if self.lo[item] else (hi_raw, lo_raw)
        return Packet(
            self.time[item], self.protocol[item], source, destination, self.sport[item],
            self.dport[item], self.flags[item], self.sequence[item], self.ip_length[item],
            self.payload[item],
            self.c.tunnels.get(self.rows[item]) if self.c.tunnels else None,
        )  # fmt: skip

    def _start(self, key: Key, packet: Packet, row: int) -> State:
        state = self.owner.table._start(key, packet)
        self.owner.started[key] = self.base + row
        return state

    def _run(self, state: State, item: int) -> None:
        """Apply one run of packets without SYN, FIN or RST from its sums."""
        if state.protocol in (ICMP, ICMP6):
            lo_is_orig = state.orig[0] == state.key[1]
        else:
            lo_is_orig = state.orig == (state.key[1], state.key[2])
        lo_side, hi_side = (state.o, state.r) if lo_is_orig else (state.r, state.o)
        sides = ((self.lo_sums, lo_side, lo_is_orig), (self.hi_sums, hi_side, not lo_is_orig))
        tcp = state.protocol == TCP
        if tcp:
            for sums, side, _ in sides:
                if sums["data"][item] != NONE and not self._fits(side, sums, item):
                    self._replay(state, item)
                    return
        state.last = max(state.last, self.plan.last_time[item])
        letters: list[tuple[int, str, Side, bool]] = []
        for sums, side, from_orig in sides:
            count = sums["packets"][item]
            if not count:
                continue
            side.packets += count
            side.ip_bytes += sums["ip"][item]
            if not tcp:
                side.payload += sums["payload"][item]
                side.state = ESTABLISHED
                continue
            first_data = sums["data"][item]
            if first_data != NONE:
                begin = sums["begin"][item]
                if side.start_seq is None:
                    side.start_seq = side.max_end = begin
                    if side.state == INACTIVE:
                        side.state = PARTIAL
                assert side.max_end is not None
                side.missed += (begin - side.max_end) % (1 << 32) + sums["missed"][item]
                side.max_end = (begin + sums["high"][item]) % (1 << 32)
                letters.append((first_data, "D", side, from_orig))
                retransmit = sums["retransmit"][item]
                if retransmit != NONE:
                    letters.append((retransmit, "T", side, from_orig))
            pure_ack = sums["ack"][item]
            if pure_ack != NONE:
                letters.append((pure_ack, "A", side, from_orig))
                if side.state == INACTIVE:
                    side.state = PARTIAL
        if tcp and SYN_SENT in (lo_side.state, hi_side.state):
            self._establish(state, sides, item)
        if len(letters) > 1:
            letters.sort(key=_position)
        for _, letter, side, from_orig in letters:
            FlowTable._note(state, side, from_orig, letter)

    @staticmethod
    def _fits(side: Side, sums: Sums, item: int) -> bool:
        """Whether a run's data continues the side's sequence space cleanly."""
        if sums["unfit"][item]:
            return False
        if side.max_end is None:
            return True
        return (sums["begin"][item] - side.max_end) % (1 << 32) < (1 << 29)

    @staticmethod
    def _establish(state: State, sides: tuple[tuple[Sums, Side, bool], ...], item: int) -> None:
        for sums, side, _ in sides:
            other = state.r if side is state.o else state.o
            if side.state != SYN_SENT:
                continue
            acked = sums["acked"][item] != NONE
            data = sums["data"][item] != NONE
            if (acked and other.state == SYN_ACK_SENT) or (
                data and other.state in (SYN_ACK_SENT, ESTABLISHED)
            ):
                side.state = other.state = ESTABLISHED

    def _replay(self, state: State, item: int) -> None:
        plan = self.plan
        for position in range(plan.item_start[item], plan.item_end[item]):
            row = int(self.order[position])
            lo = bool(plan.lo_side[row])
            ends = (state.key[1], state.key[3]) if lo else (state.key[3], state.key[1])
            self.owner.table._account(state, self.owner._packet(self.c, row, *ends))
