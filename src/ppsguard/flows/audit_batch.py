"""The audit's hot path: one Arrow record batch of flows held against the registry, vectorised.

    auditor = BatchAuditor(registry, host)
    part = auditor.partial()
    auditor.audit(batch, part)         # findings, per-entry counts and peers, into `part`
    rows = auditor.attempts(batch)     # the inbound attempts, for the scan detectors

Every engine (local, DuckDB, Spark executors) calls these two on Arrow batches; nothing here
makes a Python object per flow. Per batch: addresses parsed by `flows.audit_columns`, inbound flows
(to the host's registry addresses; every flow when it has none) evaluated by the one NumPy
evaluator (`policy.bulk`), outbound ones by an evaluator over the host's `uses` rules, and each
finding's rows grouped by key with one sort. The semantics are those of `flows.audit` (its
docstring lists the findings). Pure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from ppsguard.flows.audit_columns import AddressCache, FlowColumns, address_text
from ppsguard.flows.coded import AddressBook, coded_columns, flagged_columns
from ppsguard.flows.partial import EXAMPLES, Partial
from ppsguard.flows.runs import run_starts
from ppsguard.model.net import IPAddress, Protocol
from ppsguard.model.registry import Action, HostPolicy, Registry
from ppsguard.monitor.expectations import Expectations
from ppsguard.policy.bulk import BulkEvaluator, BulkResult

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
Address = tuple[npt.NDArray[np.uint8], U64, U64]
_PROTOCOLS = (Protocol.TCP, Protocol.UDP, Protocol.SCTP)
_NAMES = ("tcp", "udp", "sctp")
_UNSEEN = -2
ATTEMPT_SCHEMA = pa.schema(
    [
        ("src_family", pa.uint8()), ("src_high", pa.uint64()), ("src_low", pa.uint64()),
        ("ts", pa.float64()), ("duration", pa.float64()),
        ("dst_family", pa.uint8()), ("dst_high", pa.uint64()), ("dst_low", pa.uint64()),
        ("port", pa.int64()), ("protocol", pa.string()), ("ok", pa.bool_()),
    ]
)  # fmt: skip
# the flow columns `BatchAuditor.attempts` reads (not uid, not id.orig_p)
ATTEMPT_INPUTS = (
    "ts", "duration", "id.orig_h", "id.resp_h", "id.resp_p", "proto", "conn_state", "history",
    "orig_pkts", "resp_pkts",
)  # fmt: skip


def _members(addresses: tuple[IPAddress, ...]) -> tuple[U64, frozenset[int]]:
    """The host's addresses: IPv4 as a sorted integer array, IPv6 as a set of integers."""
    v4 = sorted(int(a) for a in addresses if a.version == 4)
    return np.array(v4, dtype=np.uint64), frozenset(int(a) for a in addresses if a.version == 6)


def _is_member(address: Address, v4: U64, v6: frozenset[int]) -> npt.NDArray[np.bool_]:
    family, high, low = address
    found: npt.NDArray[np.bool_] = (family == 4) & np.isin(low, v4)
    if v6 and (family == 6).any():
        rows = np.flatnonzero(family == 6)
        hits = [
            (h << 64 | lo) in v6
            for h, lo in zip(high[rows].tolist(), low[rows].tolist(), strict=True)
        ]
        found[rows] = np.array(hits, dtype=bool)
    return found


def evaluate(
    evaluator: BulkEvaluator, src: Address, dst: Address, port: I64, protocol: I64
) -> npt.NDArray[np.int32]:
    """Rule index per row (-1: the default); a destination of the source's family is used."""
    if (src[0] == 4).all() and (dst[0] == 4).all():  # the common case: no copies of columns
        return evaluator.evaluate_v4(src[2], port, protocol, dst[2]).rule
    rule = np.full(port.shape[0], -1, dtype=np.int32)
    for family in (4, 6):
        for same in (True, False):
            rows = np.flatnonzero((src[0] == family) & ((dst[0] == src[0]) == same))
            if not rows.size:
                continue
            result: BulkResult
            if family == 4:
                result = evaluator.evaluate_v4(
                    src[2][rows], port[rows], protocol[rows], dst[2][rows] if same else None
                )
            else:
                result = evaluator.evaluate_v6(
                    src[1][rows],
                    src[2][rows],
                    port[rows],
                    protocol[rows],
                    destinations_hi=dst[1][rows] if same else None,
                    destinations_lo=dst[2][rows] if same else None,
                )
            rule[rows] = result.rule
    return rule


def _count_failing(part: Partial, sources: pa.Array) -> None:
    """Failed attempts per source text, into `part` (the scan pass fetches the busiest)."""
    counted = pc.value_counts(sources)
    for value, count in zip(
        counted.field("values").to_pylist(), counted.field("counts").to_pylist(), strict=True
    ):
        part.failing_sources[value] = part.failing_sources.get(value, 0) + count


class BatchAuditor:
    """One host's audit, compiled once; `audit` and `attempts` take Arrow record batches."""

    def __init__(
        self, registry: Registry, host: str | None = None, *, track_failing: bool = False
    ) -> None:
        self.track_failing = track_failing  # count failing sources' text (DuckDB, Spark)
        self.expectations = Expectations(registry, host)
        policy = self.expectations.policy
        self.host = self.expectations.host
        self.evaluator = BulkEvaluator(policy)
        self.uses = BulkEvaluator(
            HostPolicy(policy.host, policy.addresses, policy.outbound, (), Action.DENY, False, None)
        )
        self.documented = bool(policy.addresses)
        self.v4, self.v6 = _members(policy.addresses)
        default = f"{self.host}/default"
        self.entries = sorted({r.entry_id for r in policy.rules} | {default})
        index = {e: i for i, e in enumerate(self.entries)}
        self.rule_entry = np.array(
            [index[r.entry_id] for r in policy.rules] + [index[default]], dtype=np.int64
        )
        self.rule_ids = [r.entry_id for r in policy.rules] + [default]
        self.actions = np.array(
            [r.action is Action.ALLOW for r in policy.rules]
            + [policy.default_action is Action.ALLOW],
            dtype=bool,
        )
        self.verbs = ["deny" if r.action is Action.DENY else "reject" for r in policy.rules] + [
            "deny" if policy.default_action is Action.DENY else "reject"
        ]
        # protocol * 65536 + port -> provider index, -1 for none, _UNSEEN not looked up yet
        self._provided = np.full(len(_PROTOCOLS) * 65536, _UNSEEN, dtype=np.int64)
        self._providers: list[str] = []
        self.cache = AddressCache()

    def partial(self) -> Partial:
        return Partial(list(self.entries))

    def _providers_of(self, protocol: I64, port: I64) -> I64:
        """Per row, the index of the entry that provides (protocol, port), -1 for none. A dense
        table of every (protocol, port), filled on first sight: a gather per row, where
        `np.unique` sorted every batch (0.29 s of 6M flows)."""
        keys = protocol * 65536 + port
        table = self._provided
        unseen = np.flatnonzero(table[keys] == _UNSEEN)
        for key in np.unique(keys[unseen]).tolist():
            entry = self.expectations.baseline.provides_for(_PROTOCOLS[key >> 16], key & 0xFFFF)
            if entry is None:
                table[key] = -1
                continue
            if entry.id not in self._providers:
                self._providers.append(entry.id)
            table[key] = self._providers.index(entry.id)
        found: I64 = table[keys]
        return found

    def audit(
        self, batch: pa.RecordBatch, part: Partial, *, attempts: bool = False
    ) -> pa.RecordBatch | None:
        """Count the batch into `part`; with `attempts`, also return its attempts."""
        cols = FlowColumns.of(batch, self.cache)
        inbound = self._count(batch, cols, part)
        return self._attempts(cols, inbound) if attempts and cols.n else None

    def audit_flagged(self, batch: pa.RecordBatch, part: Partial) -> None:
        """Count a flagged batch (`flows.coded.flagged_columns`: conn_state, history and the
        packet counts as flag bits) into `part`."""
        self._count(batch, flagged_columns(batch, self.cache), part)

    def _count(
        self, batch: pa.RecordBatch, cols: FlowColumns, part: Partial
    ) -> npt.NDArray[np.bool_]:
        """Count `batch`, read as `cols`, into `part`; its inbound rows (a mask)."""
        inbound, failed = self.audit_columns(cols, part)
        if failed.size and self.track_failing:
            texts = batch.column("id.orig_h").take(pa.array(failed)).cast(pa.string())
            _count_failing(part, texts)
        return inbound

    def audit_coded(self, batch: pa.RecordBatch, part: Partial, book: AddressBook) -> None:
        """Count a coded batch (`flows.coded`) into `part`: findings keep their first flows by
        time only, with empty uids (`engines.duck` reads those flows again for theirs)."""
        cols = coded_columns(batch, book)
        _, failed = self.audit_columns(cols, part)
        if failed.size and self.track_failing and cols.orig_code is not None:
            _count_failing(part, book.origins.texts.take(pa.array(cols.orig_code[failed])))

    def audit_columns(self, cols: FlowColumns, part: Partial) -> tuple[npt.NDArray[np.bool_], I64]:
        """Count the columns into `part`; the inbound rows (a mask) and the rows of failed
        inbound attempts, whose sources may be scanners."""
        part.flows += cols.n
        if not cols.n:
            return np.zeros(0, dtype=bool), np.zeros(0, dtype=np.int64)
        inbound = self.inbound(cols.resp)
        valid = (cols.resp_port >= 0) & (cols.resp_port <= 65535)
        checked = np.flatnonzero(inbound & (cols.protocol >= 0) & valid)
        if checked.size:
            self._inbound(cols, checked, part)
        if self.documented:
            outbound = _is_member(cols.orig, self.v4, self.v6) & ~inbound
            rows = np.flatnonzero(outbound & (cols.protocol >= 0) & valid)
            if rows.size:
                self._outbound(cols, rows, part)
        return inbound, np.flatnonzero(inbound & cols.initiated & ~self._success(cols))

    @staticmethod
    def _success(cols: FlowColumns) -> npt.NDArray[np.bool_]:
        """What the attempt tracker will decide: answered in time (see scans.ANSWER_TIMEOUT)."""
        from ppsguard.flows.scans import in_time

        return in_time(cols.ok, cols.ts, cols.duration)

    def _inbound(self, cols: FlowColumns, rows: I64, part: Partial) -> None:
        src = tuple(a[rows] for a in cols.orig)
        dst = tuple(a[rows] for a in cols.resp)
        port, protocol = cols.resp_port[rows], cols.protocol[rows]
        rule = evaluate(self.evaluator, src, dst, port, protocol)  # type: ignore[arg-type]
        entry = self.rule_entry[rule]
        allowed = self.actions[rule]
        part.connections += np.bincount(entry, minlength=len(self.entries))
        part.allowed += np.bincount(entry, weights=allowed, minlength=len(self.entries)).astype(
            np.int64
        )
        if part.dense_peers is not None and cols.orig_key is not None:
            part.dense_peers.add(entry, cols.orig_key[rows])
        else:
            part.entry_peers.add_columns(entry, *src)
        answered = cols.answered[rows]
        provider = self._providers_of(protocol, port)
        undocumented = answered & (provider < 0) & (rule < 0)
        unauthorized = answered & ~allowed & ~undocumented
        denied = ~answered & ~allowed
        zero = np.zeros(rows.shape[0], dtype=np.uint64)

        def where(i: int) -> tuple[str, str, str]:
            r = int(rows[i])
            return (
                address_text(int(cols.orig[0][r]), int(cols.orig[1][r]), int(cols.orig[2][r])),
                address_text(int(cols.resp[0][r]), int(cols.resp[1][r]), int(cols.resp[2][r])),
                f"{int(port[i])}/{_NAMES[int(protocol[i])]}",
            )

        def undocumented_text(i: int) -> tuple[str, str | None]:
            _, resp, service = where(i)
            return f"{resp}:{service} answered, but no entry provides it", None

        def unauthorized_text(i: int) -> tuple[str, str | None]:
            orig, resp, service = where(i)
            decided = self.rule_ids[int(rule[i])]
            named = self._providers[provider[i]] if provider[i] >= 0 else decided
            verb = self.verbs[int(rule[i])]
            return (
                f"{orig} reached {resp}:{service}, which entry {named} does not allow "
                f"({decided} decides {verb})",
                named,
            )

        def denied_text(i: int) -> tuple[str, str | None]:
            decided = self.entries[int(entry[i])]
            return f"attempts denied by {decided}", decided

        service = (protocol.astype(np.uint64) << np.uint64(32)) | port.astype(np.uint64)
        at_host = (dst[0].astype(np.uint64), dst[1], dst[2], service)
        from_peer = (src[0].astype(np.uint64), src[1], src[2], service)
        self._group(part, cols, rows, undocumented, "undocumented-service", "medium",
                    at_host, undocumented_text, src)  # fmt: skip
        self._group(part, cols, rows, unauthorized, "unauthorized-peer", "high",
                    from_peer, unauthorized_text, src)  # fmt: skip
        self._group(part, cols, rows, denied, "denied-attempts", "info",
                    (entry.astype(np.uint64), zero, zero, zero), denied_text, src)  # fmt: skip

    def _outbound(self, cols: FlowColumns, rows: I64, part: Partial) -> None:
        src = tuple(a[rows] for a in cols.orig)
        dst = tuple(a[rows] for a in cols.resp)
        port, protocol = cols.resp_port[rows], cols.protocol[rows]
        covered = evaluate(self.uses, src, dst, port, protocol) >= 0  # type: ignore[arg-type]

        def text(i: int) -> tuple[str, str | None]:
            r = int(rows[i])
            orig = address_text(int(cols.orig[0][r]), int(cols.orig[1][r]), int(cols.orig[2][r]))
            resp = address_text(int(cols.resp[0][r]), int(cols.resp[1][r]), int(cols.resp[2][r]))
            return (
                f"{orig} opened {resp}:{int(port[i])}/{_NAMES[int(protocol[i])]}: no `uses` entry "
                "covers it",
                None,
            )

        service = (protocol.astype(np.uint64) << np.uint64(32)) | port.astype(np.uint64)
        self._group(part, cols, rows, ~covered, "outbound-not-declared", "medium",
                    (dst[0].astype(np.uint64), dst[1], dst[2], service), text, src)  # fmt: skip

    @staticmethod
    def _group(  # noqa: PLR0917 -- one finding kind's rows, key columns and words
        part: Partial,
        cols: FlowColumns,
        rows: I64,
        mask: npt.NDArray[np.bool_],
        kind: str,
        severity: str,
        key: tuple[npt.NDArray[Any], ...],
        text: Callable[[int], tuple[str, str | None]],
        peers: tuple[npt.NDArray[np.generic], ...],
    ) -> None:
        """Group the masked rows by key; each group's first flows in (ts, uid) order."""
        chosen = np.flatnonzero(mask)
        if not chosen.size:
            return
        flow_rows = rows[chosen]
        ts = cols.ts[flow_rows]
        uid = cols.uid.take(pa.array(flow_rows))
        rank = np.asarray(pc.rank(uid, sort_keys="ascending", tiebreaker="min").to_numpy())
        columns = [k[chosen] for k in key]
        order = np.lexsort((rank, ts, *reversed(columns)))
        ordered = [c[order] for c in columns]
        starts = np.flatnonzero(run_starts(ordered))
        ends = np.append(starts[1:], order.shape[0])
        # the first EXAMPLES flows of every group, fetched at once
        spots = starts[:, None] + np.arange(EXAMPLES)
        within = spots < ends[:, None]
        picked = order[spots[within]]
        picked_ts = ts[picked].tolist()
        picked_uid = uid.take(pa.array(picked)).to_pylist()
        taken = np.cumsum(within.sum(axis=1)).tolist()
        keys = zip(*(c[starts].tolist() for c in ordered), strict=True)
        gids = np.empty(starts.shape[0], dtype=np.uint64)
        counts = (ends - starts).tolist()
        at = 0
        for g, (group_key, count, upto) in enumerate(zip(keys, counts, taken, strict=True)):
            examples = list(zip(picked_ts[at:upto], picked_uid[at:upto], strict=True))
            first_row = int(chosen[picked[at]])
            at = upto
            found = part.found.get((kind, *group_key))
            if found is None:
                message, entry = text(first_row)
                found = part.finding(
                    (kind, *group_key), kind, severity, entry, (*examples[0], message)
                )
                found.count, found.examples = count, examples
            else:
                found.count += count
                if examples[0] < found.first[:2]:
                    message, entry = text(first_row)
                    found.first, found.entry = (*examples[0], message), entry
                found.examples = sorted(found.examples + examples)[:EXAMPLES]
            gids[g] = found.gid
        gids = np.repeat(gids, ends - starts)
        peer_columns = [p[chosen][order] for p in peers]
        part.finding_peers.add_columns(gids, *peer_columns)

    def attempts(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The inbound, initiated flows as attempts (ATTEMPT_SCHEMA)."""
        cols = FlowColumns.of(batch, self.cache)
        return self._attempts(cols, self.inbound(cols.resp))

    def inbound(self, resp: Address) -> npt.NDArray[np.bool_]:
        """Per flow, whether its responder is the host (every flow when the host has no
        addresses in the registry)."""
        if not self.documented:
            return np.ones(resp[0].shape[0], dtype=bool)
        return _is_member(resp, self.v4, self.v6)

    @staticmethod
    def _attempts(cols: FlowColumns, inbound: npt.NDArray[np.bool_]) -> pa.RecordBatch:
        rows = np.flatnonzero(inbound & cols.initiated)
        take = pa.array(rows)
        return pa.RecordBatch.from_arrays(
            [
                pa.array(cols.orig[0][rows]), pa.array(cols.orig[1][rows]),
                pa.array(cols.orig[2][rows]), pa.array(cols.ts[rows]),
                pa.array(cols.duration[rows]), pa.array(cols.resp[0][rows]),
                pa.array(cols.resp[1][rows]), pa.array(cols.resp[2][rows]),
                pa.array(cols.resp_port[rows]), cols.protocol_text.take(take),
                pa.array(cols.ok[rows]),
            ],
            schema=ATTEMPT_SCHEMA,
        )  # fmt: skip
