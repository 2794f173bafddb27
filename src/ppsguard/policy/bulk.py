"""Vectorised first-match evaluation of millions of (source, destination, protocol, port) tuples.

Same semantics as `policy.evaluate.evaluate` (a property test checks they agree), precomputed so
that one tuple costs two table lookups and one binary search:

  1. destination classes: the destination boundaries of all rules cut each family's address space
     into elementary intervals; each interval (plus class 0, "no destination given") has the
     ordered list of rules whose destinations cover it;
  2. for each (destination class, protocol), the port boundaries of the remaining rules cut
     0..65535 into cells; a 65,536-entry table maps a port straight to a *segment*, the ordered
     candidate rules of its cell (identical candidate lists share one segment);
  3. within a segment the candidates' source intervals are painted last-to-first, so each
     elementary source interval holds the index of the first rule that covers it (or -1, the
     default). All segments are concatenated into one sorted key array: `segment << 32 | source`
     (IPv4, uint64) or 20 big-endian bytes `segment ‖ source` (IPv6, from two uint64 arrays),
     and one `np.searchsorted` finds every tuple's interval.

Measured by benchmarks/policy_eval.py (see its output for figures on the machine at hand).
Pure: NumPy only, no I/O.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ppsguard.model.net import IPAddress, IPNetwork, Protocol
from ppsguard.model.registry import Action, HostPolicy, Rule

PROTOCOL_CODES: dict[Protocol, int] = {Protocol.TCP: 0, Protocol.UDP: 1, Protocol.SCTP: 2}
ACTION_CODES: dict[Action, int] = {Action.DENY: 0, Action.ALLOW: 1, Action.REJECT: 2}
ACTIONS_BY_CODE = (Action.DENY, Action.ALLOW, Action.REJECT)
_NPROTO = len(PROTOCOL_CODES)
_CHUNK = 1 << 20
DENSE_ROWS = 48  # up to 48 x 65,536 x 4 bytes = 12 MB of port table

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class BulkResult:
    """Per tuple: action code (ACTION_CODES), logged, rule index in policy.rules (-1: default)."""

    action: npt.NDArray[np.uint8]
    log: npt.NDArray[np.bool_]
    rule: npt.NDArray[np.int32]


_KEY6 = np.dtype([("seg", ">u4"), ("hi", ">u8"), ("lo", ">u8")])  # packed: 20 bytes
_KEY16 = np.dtype([("hi", ">u8"), ("lo", ">u8")])
_MASK64 = (1 << 64) - 1


def _split(values: Sequence[int]) -> tuple[U64, U64]:
    """128-bit ints -> (high, low) uint64 arrays."""
    hi = np.array([v >> 64 for v in values], dtype=np.uint64)
    lo = np.array([v & _MASK64 for v in values], dtype=np.uint64)
    return hi, lo


def _keys6(seg: U64, hi: U64, lo: U64) -> npt.NDArray[np.bytes_]:
    """Big-endian `segment ‖ address` keys that sort like the numbers they encode."""
    out = np.empty(hi.shape[0], dtype=_KEY6)
    out["seg"], out["hi"], out["lo"] = seg, hi, lo
    return out.view("S20")


def _keys16(hi: U64, lo: U64) -> npt.NDArray[np.bytes_]:
    out = np.empty(hi.shape[0], dtype=_KEY16)
    out["hi"], out["lo"] = hi, lo
    return out.view("S16")


def _intervals(nets: Sequence[IPNetwork], version: int) -> list[tuple[int, int]]:
    spans = sorted(
        (int(n.network_address), int(n.broadcast_address)) for n in nets if n.version == version
    )
    merged: list[tuple[int, int]] = []
    for lo, hi in spans:
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def _covers(spans: list[tuple[int, int]], lo: int, hi: int) -> bool:
    i = bisect.bisect_right(spans, (lo, 1 << 129)) - 1
    return i >= 0 and spans[i][0] <= lo and hi <= spans[i][1]


class _FamilyTable:
    """The lookup structure for one address family (bits = 32 or 128)."""

    def __init__(self, rules: Sequence[Rule], bits: int) -> None:
        version = 4 if bits == 32 else 6
        self.bits = bits
        top = (1 << bits) - 1
        sources = [_intervals(r.sources, version) for r in rules]
        dests = [_intervals(r.destinations, version) for r in rules]
        cuts = {0}
        for spans in dests:
            for lo, hi in spans:
                cuts.add(lo)
                if hi < top:
                    cuts.add(hi + 1)
        self.dst_starts = sorted(cuts)
        classes: list[list[int]] = [[i for i, s in enumerate(sources) if s]]  # class 0: no dst
        for k, lo in enumerate(self.dst_starts):
            hi = self.dst_starts[k + 1] - 1 if k + 1 < len(self.dst_starts) else top
            classes.append([i for i in classes[0] if _covers(dests[i], lo, hi)])
        self.n_classes = len(classes)
        rows: list[tuple[list[int], list[int]]] = []  # per (class, protocol): cell starts, segments
        segments: dict[tuple[int, ...], int] = {}
        seg_starts: list[list[int]] = []
        seg_rules: list[list[int]] = []
        for c, members in enumerate(classes):
            for proto, code in PROTOCOL_CODES.items():
                candidates = [i for i in members if rules[i].protocol == proto]
                assert len(rows) == c * _NPROTO + code
                row_segments: list[int] = []
                pcuts = {0}
                for i in candidates:
                    for pr in rules[i].ports:
                        pcuts.add(pr.first)
                        if pr.last < 65535:
                            pcuts.add(pr.last + 1)
                starts = sorted(pcuts)
                cells: list[list[int]] = [[] for _ in starts]
                for i in candidates:
                    for pr in rules[i].ports:
                        a = bisect.bisect_left(starts, pr.first)
                        b = bisect.bisect_left(starts, pr.last + 1)
                        for cell in range(a, b):
                            cells[cell].append(i)
                for cell_rules in cells:
                    key = tuple(cell_rules)
                    if key not in segments:
                        segments[key] = len(seg_starts)
                        s, r = self._paint(key, sources, top)
                        seg_starts.append(s)
                        seg_rules.append(r)
                    row_segments.append(segments[key])
                rows.append((starts, row_segments))
        self._port_rows(rows)
        self.n_segments = len(seg_starts)
        flat_seg = [seg for seg, s in enumerate(seg_starts) for _ in s]
        flat_start = [x for s in seg_starts for x in s]
        self.decision = np.array([x for r in seg_rules for x in r], dtype=np.int32)
        if bits == 32:
            self.keys: npt.NDArray[np.generic] = (
                np.array(flat_seg, dtype=np.uint64) << np.uint64(32)
            ) | np.array(flat_start, dtype=np.uint64)
        else:
            start_hi, start_lo = _split(flat_start)
            self.keys = _keys6(np.array(flat_seg, dtype=np.uint64), start_hi, start_lo)
        dhi, dlo = _split(self.dst_starts)
        self.dst_keys6 = _keys16(dhi, dlo)

    def _port_rows(self, rows: list[tuple[list[int], list[int]]]) -> None:
        """A dense port -> segment table (fast) when small enough, else sorted keys."""
        self.dense = len(rows) <= DENSE_ROWS
        if self.dense:
            self.port_table = np.zeros((len(rows), 65536), dtype=np.int32)
            for r, (starts, segs) in enumerate(rows):
                ends = [*starts[1:], 65536]
                for a, b, seg in zip(starts, ends, segs, strict=True):
                    self.port_table[r, a:b] = seg
        else:
            self.port_keys = np.array(
                [r * 65536 + s for r, (starts, _) in enumerate(rows) for s in starts],
                dtype=np.int64,
            )
            self.port_segs = np.array([g for _, segs in rows for g in segs], dtype=np.int32)

    def segments_of(self, row: I64, port: I64) -> I64:
        if self.dense:
            return self.port_table[row, port].astype(np.int64)
        idx = np.searchsorted(self.port_keys, row * 65536 + port, side="right") - 1
        return self.port_segs[idx].astype(np.int64)

    @staticmethod
    def _paint(
        candidates: tuple[int, ...], sources: list[list[tuple[int, int]]], top: int
    ) -> tuple[list[int], list[int]]:
        cuts = {0}
        for i in candidates:
            for lo, hi in sources[i]:
                cuts.add(lo)
                if hi < top:
                    cuts.add(hi + 1)
        starts = sorted(cuts)
        decision = [-1] * len(starts)
        for i in reversed(candidates):
            for lo, hi in sources[i]:
                a = bisect.bisect_left(starts, lo)
                b = bisect.bisect_left(starts, hi + 1)
                decision[a:b] = [i] * (b - a)
        out_s, out_d = [starts[0]], [decision[0]]
        for s, d in zip(starts[1:], decision[1:], strict=True):
            if d != out_d[-1]:
                out_s.append(s)
                out_d.append(d)
        return out_s, out_d

    def classes_of6(self, dst_hi: U64 | None, dst_lo: U64 | None, n: int) -> I64:
        if dst_hi is None or dst_lo is None:
            return np.zeros(n, dtype=np.int64)
        found = np.searchsorted(self.dst_keys6, _keys16(dst_hi, dst_lo), side="right")
        return found.astype(np.int64)


class BulkEvaluator:
    """Precomputed lookup for one HostPolicy; evaluate NumPy arrays of tuples."""

    def __init__(self, policy: HostPolicy) -> None:
        self.policy = policy
        rules = policy.rules
        self._v4 = _FamilyTable(rules, 32)
        self._v6 = _FamilyTable(rules, 128)
        self._action = np.array(
            [ACTION_CODES[r.action] for r in rules] + [ACTION_CODES[policy.default_action]],
            dtype=np.uint8,
        )
        self._log = np.array([r.log for r in rules] + [policy.default_log], dtype=np.bool_)

    def _finish(self, rule: npt.NDArray[np.int32]) -> BulkResult:
        # index -1 (the default) picks the last element of _action/_log: the default's
        return BulkResult(self._action[rule], self._log[rule], rule)

    def evaluate_v4(
        self,
        sources: npt.ArrayLike,
        ports: npt.ArrayLike,
        protocols: npt.ArrayLike,
        destinations: npt.ArrayLike | None = None,
    ) -> BulkResult:
        """IPv4 tuples: sources/destinations as integers (uint32), ports, protocol codes."""
        src = np.asarray(sources, dtype=np.uint64)
        port = np.asarray(ports, dtype=np.int64)
        proto = np.asarray(protocols, dtype=np.int64)
        t = self._v4
        out = np.empty(src.shape[0], dtype=np.int32)
        dst = None if destinations is None else np.asarray(destinations, dtype=np.uint64)
        dst_starts = np.array(t.dst_starts, dtype=np.uint64)
        for a in range(0, src.shape[0], _CHUNK):
            b = min(a + _CHUNK, src.shape[0])
            p, pr = port[a:b], proto[a:b]
            valid = (p >= 0) & (p <= 65535) & (pr >= 0) & (pr < _NPROTO)
            if dst is None:
                cls = np.zeros(b - a, dtype=np.int64)
            else:
                cls = np.searchsorted(dst_starts, dst[a:b], side="right").astype(np.int64)
            row = cls * _NPROTO + np.where(valid, pr, 0)
            seg = t.segments_of(row, np.where(valid, p, 0)).astype(np.uint64)
            keys = (seg << np.uint64(32)) | src[a:b]
            idx = np.searchsorted(t.keys, keys, side="right") - 1
            found = t.decision[idx]
            out[a:b] = np.where(valid, found, -1)
        return self._finish(out)

    def evaluate_v6(
        self,
        sources_hi: npt.ArrayLike,
        sources_lo: npt.ArrayLike,
        ports: npt.ArrayLike,
        protocols: npt.ArrayLike,
        *,
        destinations_hi: npt.ArrayLike | None = None,
        destinations_lo: npt.ArrayLike | None = None,
    ) -> BulkResult:
        """IPv6 tuples: each address as two uint64 arrays (high and low 64 bits), ports,
        protocol codes; destinations likewise or None."""
        t = self._v6
        hi = np.asarray(sources_hi, dtype=np.uint64)
        lo = np.asarray(sources_lo, dtype=np.uint64)
        n = hi.shape[0]
        port = np.asarray(ports, dtype=np.int64)
        proto = np.asarray(protocols, dtype=np.int64)
        valid = (port >= 0) & (port <= 65535) & (proto >= 0) & (proto < _NPROTO)
        dhi = None if destinations_hi is None else np.asarray(destinations_hi, dtype=np.uint64)
        dlo = None if destinations_lo is None else np.asarray(destinations_lo, dtype=np.uint64)
        cls = t.classes_of6(dhi, dlo, n)
        row = cls * _NPROTO + np.where(valid, proto, 0)
        seg = t.segments_of(row, np.where(valid, port, 0)).astype(np.uint64)
        idx = np.searchsorted(t.keys, _keys6(seg, hi, lo), side="right") - 1
        found = np.where(valid, t.decision[idx], -1)
        return self._finish(found.astype(np.int32))

    def evaluate(
        self,
        sources: Sequence[IPAddress],
        ports: Sequence[int],
        protocols: Sequence[Protocol],
        destinations: Sequence[IPAddress] | None = None,
    ) -> BulkResult:
        """Mixed-family convenience API: splits by family and merges the results in order."""
        n = len(sources)
        codes = np.array([PROTOCOL_CODES.get(p, -1) for p in protocols], dtype=np.int64)
        port = np.asarray(ports, dtype=np.int64)
        is4 = np.array([a.version == 4 for a in sources], dtype=np.bool_)
        rule = np.full(n, -1, dtype=np.int32)
        if destinations is not None and any(
            d.version != s.version for d, s in zip(destinations, sources, strict=True)
        ):
            raise ValueError("a source and its destination must be of the same family")
        i4 = np.flatnonzero(is4)
        i6 = np.flatnonzero(~is4)
        l4, l6 = i4.tolist(), i6.tolist()
        if i4.size:
            r4 = self.evaluate_v4(
                [int(sources[i]) for i in l4],
                port[i4],
                codes[i4],
                None if destinations is None else [int(destinations[i]) for i in l4],
            )
            rule[i4] = r4.rule
        if i6.size:
            shi, slo = _split([int(sources[i]) for i in l6])
            dhi, dlo = (None, None)
            if destinations is not None:
                dhi, dlo = _split([int(destinations[i]) for i in l6])
            r6 = self.evaluate_v6(
                shi, slo, port[i6], codes[i6], destinations_hi=dhi, destinations_lo=dlo
            )
            rule[i6] = r6.rule
        return self._finish(rule)
