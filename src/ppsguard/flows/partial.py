"""What an audit has seen so far, in a form any two of which merge: one per batch, per Spark
partition, per engine; merged in any order, they give the same audit.

    total = Partial(entries=["pop3", ..., "web1/default"])
    total.merge(part)                       # commutative and associative

A finding keeps its count, the first flow in (ts, uid) order (whose words make its message),
its first `EXAMPLES` flows in that order, and its distinct peers; an entry keeps connections,
allowed and distinct peers. Distinct peers are rows of integers (`PairSet`: id, family, high,
low), deduplicated by NumPy, not Python sets: a denied entry can hear from a million peers.
Pure.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from itertools import islice

import numpy as np
import numpy.typing as npt
import pyarrow as pa

EXAMPLES = 5
_COMPACT = 1 << 21  # pending rows before a PairSet deduplicates
_LOW32 = (1 << 32) - 1


class PairSet:
    """A set of (id, family, high, low) rows of unsigned integers. IPv4 rows are kept as one
    64-bit key (id << 32 | address): the distinct keys in one sorted array, and the keys added
    since in a pending list. Compacting sorts only the pending keys, drops repeats, and inserts
    the new ones into the sorted array by binary search. On 2M keys (2026-12, NumPy 2.4,
    pyarrow 26): `np.sort` and a comparison of neighbours took 0.12 s, Arrow's hash `unique`
    0.37-1.0 s, `np.unique` 1.9-2.2 s; deduplicating the whole set again at every compaction
    (Arrow) had cost 6.7 s of the 15 s DuckDB audit of 20M flows with 5M distinct peers."""

    def __init__(self) -> None:
        self._sorted4 = np.zeros(0, dtype=np.uint64)
        self._keys4: list[npt.NDArray[np.uint64]] = []  # pending, not yet in `_sorted4`
        self._rows6: list[npt.NDArray[np.uint64]] = []
        self._pending = 0

    def add_columns(
        self, ids: npt.ArrayLike, family: npt.ArrayLike, high: npt.ArrayLike, low: npt.ArrayLike
    ) -> None:
        """Add rows given as columns (the audit's arrays, no (n, 4) array made per batch)."""
        ids_, family_ = np.asarray(ids, dtype=np.uint64), np.asarray(family)
        high_, low_ = np.asarray(high, dtype=np.uint64), np.asarray(low, dtype=np.uint64)
        n = ids_.shape[0]
        if not n:
            return
        is4 = family_ == 4
        if is4.all():
            self._keys4.append((ids_ << np.uint64(32)) | low_)
        else:
            self._keys4.append((ids_[is4] << np.uint64(32)) | low_[is4])
            is6 = ~is4
            self._rows6.append(np.column_stack([ids_[is6], high_[is6], low_[is6]]))
        self._pending += n
        if self._pending > _COMPACT:
            self._compact()

    def _compact(self) -> None:
        if self._keys4:
            fresh = np.sort(np.concatenate(self._keys4))
            if fresh.shape[0] > 1:
                fresh = fresh[np.concatenate(([True], fresh[1:] != fresh[:-1]))]
            known = self._sorted4
            if known.shape[0] and fresh.shape[0]:
                at = np.searchsorted(known, fresh)
                seen = known[np.minimum(at, known.shape[0] - 1)] == fresh
                self._sorted4 = np.insert(known, at[~seen], fresh[~seen])
            elif fresh.shape[0]:
                self._sorted4 = fresh
            self._keys4 = []
        if self._rows6:
            stacked = np.concatenate(self._rows6)
            table = pa.table({"i": stacked[:, 0], "h": stacked[:, 1], "l": stacked[:, 2]})
            grouped = table.group_by(["i", "h", "l"]).aggregate([])
            self._rows6 = [
                np.column_stack([grouped.column(c).to_numpy() for c in ("i", "h", "l")]).astype(
                    np.uint64
                )
            ]
        self._pending = 0

    def rows(self) -> npt.NDArray[np.uint64]:
        """The distinct rows, sorted by (id, family, high, low)."""
        self._compact()
        keys = self._sorted4
        v4 = pair_rows(keys >> np.uint64(32), np.full(keys.shape, 4), 0, keys & np.uint64(_LOW32))
        v6 = self._rows6[0] if self._rows6 else np.zeros((0, 3), np.uint64)
        rows = np.concatenate(
            [v4, pair_rows(v6[:, 0], np.full(v6.shape[0], 6), v6[:, 1], v6[:, 2])]
        )
        return rows[np.lexsort(rows.T[::-1])]

    def update(self, other: PairSet, remap: npt.NDArray[np.uint64] | None = None) -> None:
        """Take in the other set's rows (ids through `remap`), without sorting them."""
        keys4 = [other._sorted4, *other._keys4] if other._sorted4.shape[0] else list(other._keys4)
        rows6 = list(other._rows6)
        if remap is not None:
            keys4 = [
                (remap[(k >> np.uint64(32)).astype(np.int64)] << np.uint64(32))
                | (k & np.uint64(_LOW32))
                for k in keys4
            ]
            rows6 = [np.column_stack([remap[r[:, 0].astype(np.int64)], r[:, 1:]]) for r in rows6]
        self._keys4 += keys4
        self._rows6 += rows6
        self._pending += sum(k.shape[0] for k in keys4) + sum(r.shape[0] for r in rows6)
        if self._pending > _COMPACT:
            self._compact()

    def counts(self, size: int) -> npt.NDArray[np.int64]:
        """How many distinct rows each id 0..size-1 has."""
        self._compact()
        ids = [self._sorted4 >> np.uint64(32)] + [r[:, 0] for r in self._rows6]
        return np.bincount(np.concatenate(ids).astype(np.int64), minlength=size)[:size]


class DensePeers:
    """Distinct (id, address) pairs as one bit per pair, for sources numbered 0..size-1 (the
    coded batches of `flows.coded`): a scatter per batch, where PairSet sorts. 20M flows of 5M
    distinct (entry, peer) pairs (2026-12): PairSet 2.4 s of thread time, this 0.1 s. Writers
    on several threads set the same bytes to the same value, so one set serves them all."""

    LIMIT = 1 << 28  # bytes of bitmap at most (ids x size); beyond it, PairSet

    def __init__(self, ids: int, size: int) -> None:
        self.size = size
        self.bits = np.zeros(ids * size, dtype=bool)

    @classmethod
    def fits(cls, ids: int, size: int) -> bool:
        return ids * size <= cls.LIMIT

    def add(self, ids: npt.NDArray[np.int64], keys: npt.NDArray[np.int64]) -> None:
        self.bits[ids * self.size + keys] = True

    def counts(self, size: int) -> npt.NDArray[np.int64]:
        """How many distinct rows each id 0..size-1 has (`size`: the ids it was made for)."""
        counted: npt.NDArray[np.int64] = self.bits.reshape(size, self.size).sum(
            axis=1, dtype=np.int64
        )
        return counted


def pair_rows(
    ids: npt.ArrayLike, family: npt.ArrayLike, high: npt.ArrayLike, low: npt.ArrayLike
) -> npt.NDArray[np.uint64]:
    n = max(np.shape(a)[0] if np.ndim(a) else 0 for a in (ids, family, high, low))
    return np.column_stack(
        [np.broadcast_to(np.asarray(a, dtype=np.uint64), (n,)) for a in (ids, family, high, low)]
    ).reshape(n, 4)


@dataclass(slots=True)
class Found:
    """One finding so far; `first` is (ts, uid, message) of its first flow."""

    kind: str
    severity: str
    entry: str | None
    first: tuple[float, str, str]
    gid: int
    count: int = 0
    examples: list[tuple[float, str]] = field(default_factory=list)

    def see(
        self,
        first: tuple[float, str, str],
        count: int,
        examples: list[tuple[float, str]],
        entry: str | None,
    ) -> None:
        if first < self.first:
            self.first, self.entry = first, entry
        self.count += count
        self.examples = list(islice(heapq.merge(self.examples, examples), EXAMPLES))


FindingKey = tuple[object, ...]


@dataclass(slots=True)
class Partial:
    """A mergeable audit: flows counted, findings, per-entry counts and peers, attempts' sources
    that failed (raw text -> count, for the engines that fetch a scanner's attempts later)."""

    entries: list[str]
    flows: int = 0
    found: dict[FindingKey, Found] = field(default_factory=dict)
    finding_peers: PairSet = field(default_factory=PairSet)
    connections: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    allowed: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    entry_peers: PairSet = field(default_factory=PairSet)
    failing_sources: dict[str, int] = field(default_factory=dict)
    dense_peers: DensePeers | None = None  # entry peers of coded batches, shared by threads

    def __post_init__(self) -> None:
        if self.connections.shape[0] != len(self.entries):
            self.connections = np.zeros(len(self.entries), dtype=np.int64)
            self.allowed = np.zeros(len(self.entries), dtype=np.int64)

    def finding(
        self,
        key: FindingKey,
        kind: str,
        severity: str,
        entry: str | None,
        first: tuple[float, str, str],
    ) -> Found:
        found = self.found.get(key)
        if found is None:
            found = self.found[key] = Found(kind, severity, entry, first, len(self.found))
        return found

    def merge(self, other: Partial) -> None:
        assert other.entries == self.entries, "partials of different registries"
        self.flows += other.flows
        remap = np.zeros(len(other.found), dtype=np.uint64)
        for key, theirs in other.found.items():
            ours = self.finding(key, theirs.kind, theirs.severity, theirs.entry, theirs.first)
            ours.see(theirs.first, theirs.count, theirs.examples, theirs.entry)
            remap[theirs.gid] = ours.gid
        self.finding_peers.update(other.finding_peers, remap)
        self.connections += other.connections
        self.allowed += other.allowed
        self.entry_peers.update(other.entry_peers)
        if other.dense_peers is not None and other.dense_peers is not self.dense_peers:
            if self.dense_peers is None:
                self.dense_peers = other.dense_peers
            else:
                self.dense_peers.bits |= other.dense_peers.bits
        for source, count in other.failing_sources.items():
            self.failing_sources[source] = self.failing_sources.get(source, 0) + count
