"""Who scanned whom: inbound attempts, grouped per source in time order, fed to the detectors
of `pps watch` (`monitor.detectors.Detectors`, TRW and its per-port variant).

    sources = candidates(attempts)          # sources that failed often enough to be decided
    for finding in scan_findings(table): ...   # one (message, count, source) per scanner

Each flow is an attempt with the outcome `pps watch`'s attempt tracker gives a connection
opened at `ts` and closed at `ts + duration`, answered or not (`flows.audit_columns`). A source is
decided a scanner only after at least `MIN_FAILURES` failed first contacts (TRW's thresholds),
so only sources with that many failed attempts are fed at all: a DuckDB or Spark engine fetches
just their attempts. Each source gets its own detectors, and its attempts in (ts, target, port,
protocol, duration, outcome) order, so the result does not depend on how the engine split or
ordered the flows. Pure.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from ppsguard.flows.runs import run_starts, sorted_runs
from ppsguard.model.net import IPAddress
from ppsguard.monitor.attempts import Attempt
from ppsguard.monitor.detectors import Detectors
from ppsguard.monitor.trw import Outcome, Trw, TrwParameters

ANSWER_TIMEOUT = 3.0  # the attempt tracker's default: an answer later than this is a failure
_PARAMETERS = TrwParameters()
MIN_FAILURES = math.ceil((_PARAMETERS.upper - 1e-9) / _PARAMETERS.failure_step)
_ORDER = ("ts", "dst_family", "dst_high", "dst_low", "port", "protocol", "duration", "ok")
Source = tuple[int, int, int]
B = npt.NDArray[np.bool_]
_CONTACT = ("dst_family", "dst_high", "dst_low", "port")  # TRW's first contacts: (host, port)


@dataclass(frozen=True, slots=True)
class ScanFinding:
    source: str
    message: str
    count: int


def _address(family: int, high: int, low: int) -> IPAddress:
    if family == 4:
        return ipaddress.IPv4Address(low)
    return ipaddress.IPv6Address((high << 64) | low)


_SOURCE = ["src_family", "src_high", "src_low"]


def in_time(ok: B, ts: npt.NDArray[np.float64], duration: npt.NDArray[np.float64]) -> B:
    """The tracker's decision for each attempt: answered and not aborted (`ok`), within
    ANSWER_TIMEOUT, computed as the tracker does. Times past 1e308 overflow to inf, which is
    not in time, without NumPy's warning."""
    with np.errstate(over="ignore", invalid="ignore"):
        found: B = ok & (((ts + duration) - ts) < ANSWER_TIMEOUT)
    return found


def succeeded(attempts: pa.Table | pa.RecordBatch) -> B:
    """Per attempt, the tracker's decision: answered, not aborted, within ANSWER_TIMEOUT."""
    ts, duration = attempts.column("ts").to_numpy(), attempts.column("duration").to_numpy()
    ok = np.asarray(attempts.column("ok").to_numpy(zero_copy_only=False), dtype=bool)
    return in_time(ok, ts, duration)


def candidates(attempts: pa.Table) -> pa.Table:
    """Sources (src_family, src_high, src_low) with at least MIN_FAILURES failed attempts."""
    table = attempts.filter(pa.array(~succeeded(attempts)))
    counted = table.group_by(_SOURCE).aggregate([("ts", "count")])
    keep = counted.filter(pc.greater_equal(counted.column("ts_count"), MIN_FAILURES))
    return keep.select(_SOURCE)


def of_sources(attempts: pa.Table, sources: pa.Table) -> pa.Table:
    """The attempts made by `sources` (a semi join)."""
    if not attempts.num_rows or not sources.num_rows:
        return attempts.slice(0, 0)
    return attempts.join(sources, keys=_SOURCE, join_type="left semi")


def source_groups(attempts: pa.Table, *, every: bool = False) -> Iterator[tuple[Source, pa.Table]]:
    """The table's attempts per source, each in the detector's order: only the sources whose
    TRW walks can reach "scanner" (`could_scan`), or `every` source."""
    if not attempts.num_rows:
        return
    ordered = attempts.sort_by(
        [(c, "ascending") for c in ("src_family", "src_high", "src_low", *_ORDER)]
    )
    keys = [ordered.column(c).to_numpy() for c in ("src_family", "src_high", "src_low")]
    starts = np.flatnonzero(run_starts(keys))
    possible = np.ones(starts.shape[0], dtype=bool) if every else could_scan(ordered, starts)
    ends = [*starts[1:].tolist(), ordered.num_rows]
    for start, end, kept in zip(starts.tolist(), ends, possible.tolist(), strict=True):
        if kept:
            source = (int(keys[0][start]), int(keys[1][start]), int(keys[2][start]))
            yield source, ordered.slice(start, end - start)


def _firsts(ordered: pa.Table, group: npt.NDArray[np.int64], names: tuple[str, ...]) -> B:
    """Per row of `ordered` (in the detector's order): whether it is its source's first attempt
    on its value of `names`."""
    keys = [ordered.column(c).to_numpy() for c in names]
    # stable: the earliest attempt leads each key (np.unique(axis=0) sorted rows as bytes:
    # 0.39 s of 475k attempts)
    order, change = sorted_runs([group, *keys])
    first = np.zeros(order.shape[0], dtype=bool)
    first[order[change]] = True
    return first


def _walk_crosses(group: npt.NDArray[np.int64], success: B, groups: int, trw: Trw) -> B:
    """Per group, whether TRW's walk over its steps (rows in order, contiguous per group)
    reaches "scanner": the same float additions and thresholds as `Trw.observe`, one step of
    every group at a time."""
    lengths = np.bincount(group, minlength=groups)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    by_length = np.argsort(-lengths, kind="stable")
    sorted_lengths = lengths[by_length]
    up, down, upper, lower = trw.steps
    steps = np.where(success, up, down)
    walk = np.zeros(groups, dtype=np.float64)
    crossed = np.zeros(groups, dtype=bool)
    for k in range(int(sorted_lengths[0]) if groups else 0):
        active = by_length[: int(np.searchsorted(-sorted_lengths, -k, side="left"))]
        live = active[~crossed[active]]
        walk[live] += steps[starts[live] + k]
        crossed[live] |= walk[live] >= upper
        benign = live[(walk[live] <= lower) & ~crossed[live]]
        walk[benign] = 0.0
    return crossed


def could_scan(ordered: pa.Table, starts: npt.NDArray[np.int64]) -> B:
    """Per source (rows `ordered` by source and the detector's order, each source's first row
    at `starts`): whether fresh detectors could call it a scanner. They could when the TRW walk
    over its first contacts, per target host or per (host, port), reaches the upper threshold,
    or when it has more first contacts than TRW remembers (its walk then sees every attempt;
    it is kept). Vectorised over every source: at 100M flows every client with four failed
    attempts became a suspect and the detectors' Python walk took most of the audit."""
    return _walks(ordered, starts)[0]


def _walks(ordered: pa.Table, starts: npt.NDArray[np.int64]) -> tuple[B, B]:
    """`could_scan`, and per row whether it is a first contact of its (target, port)."""
    rows = ordered.num_rows
    group = np.zeros(rows, dtype=np.int64)
    group[starts[1:]] = 1
    group = np.cumsum(group)
    groups = starts.shape[0]
    success = succeeded(ordered)
    trw = Trw()
    per_port = _firsts(ordered, group, _CONTACT)
    found = np.bincount(group[per_port], minlength=groups) > trw.max_targets
    host = _firsts(ordered, group, _CONTACT[:3])
    for first in (per_port, host):
        found |= _walk_crosses(group[first], success[first], groups, trw)
    return found, per_port


def _numbers(table: pa.Table, name: str, fill: float | None = None) -> npt.NDArray[np.generic]:
    column = table.column(name)
    if fill is not None:
        column = pc.fill_null(column, fill)
    return np.asarray(column.to_numpy())


def possible_scanners(contacts: pa.Table) -> list[int]:
    """The sources `k` that fresh detectors could call scanners, from their contacts alone: per
    (k, target, port), the earliest time of its attempts (t), of its successes (t_ok) and of
    its failures (t_fail), as `tables.contacts_sql` groups them. A first contact succeeds when
    its time is t_ok's and not t_fail's; `could_scan` then walks them as it walks attempts.
    Kept too: a source whose first contact at some target has a success and a failure at one
    time (only the whole order can tell which came first). Exact: these are the first contacts
    `could_scan` steps on, in its order, (ts, target, port).

    Rows of one (k, target, port) (two spellings of one target) need no merging: the earliest
    is the first contact, and rows at one time are taken together. One NumPy sort: with Arrow's
    group_by and sort_by (3.0 + 3.6 s) this took 8.6-11.2 s of 5.6M contacts (100M flows),
    now 5.9-7.1 s (in alternation, 2026-12)."""
    if not contacts.num_rows:
        return []
    t = _numbers(contacts, "t")
    at_ok, at_fail = (
        _numbers(contacts, "t_ok", math.nan) == t,
        _numbers(contacts, "t_fail", math.nan) == t,
    )
    keys = [_numbers(contacts, "k"), t, *(_numbers(contacts, c) for c in _CONTACT)]
    order, new = sorted_runs(keys)  # NaN times never equal: each is its own contact
    keys = [key[order] for key in keys]
    starts = np.flatnonzero(new)
    succeeded = np.logical_or.reduceat(at_ok[order], starts)
    failed = np.logical_or.reduceat(at_fail[order], starts)
    sources, ts, *contact = (key[starts] for key in keys)
    walked = pa.table(
        {
            "ts": ts, "duration": np.zeros(ts.shape[0]), "ok": succeeded & ~failed,
            **dict(zip(_CONTACT, contact, strict=True)),
        }
    )  # fmt: skip
    first = np.flatnonzero(run_starts([sources]))
    possible, contacted = _walks(walked, first)  # a later time of a contact is no contact
    found = set(sources[first][possible].tolist())
    return sorted(found | set(sources[succeeded & failed & contacted].tolist()))


def first_contacts(attempts: pa.Table) -> pa.Table:
    """One source's attempts (in order) without repeats of a (target, port) already tried:
    TRW counts first contacts only, so a repeat changes nothing while the walk remembers every
    contact (at most `max_targets`); past that, every attempt is kept."""
    first = _firsts(attempts, np.zeros(attempts.num_rows, dtype=np.int64), _CONTACT)
    if int(first.sum()) > Trw().max_targets:
        return attempts
    return attempts.filter(pa.array(first))


def scan_source(source: Source, attempts: pa.Table) -> ScanFinding | None:
    """Feed one source's attempts (in the detector's order) to fresh detectors. Each flow is one
    attempt, decided as `pps watch`'s attempt tracker decides a connection's events (opened at
    ts, closed at ts + duration): a success when answered, not aborted, within ANSWER_TIMEOUT."""
    detectors = Detectors(None)
    orig = _address(*source)
    targets: dict[tuple[int, int, int], IPAddress] = {}
    attempts = first_contacts(attempts)
    columns = {name: attempts.column(name).to_pylist() for name in attempts.column_names}
    for ts, family, high, low, port, protocol, success in zip(
        columns["ts"], columns["dst_family"], columns["dst_high"], columns["dst_low"],
        columns["port"], columns["protocol"], succeeded(attempts).tolist(), strict=True,
    ):  # fmt: skip
        resp = targets.get((family, high, low))
        if resp is None:
            resp = targets[(family, high, low)] = _address(family, high, low)
        outcome = Outcome.SUCCESS if success else Outcome.FAILURE
        detectors.observe(Attempt(ts, orig, resp, port, protocol, outcome))
    for alert in detectors.book.alerts.values():
        if alert.kind == "scan" and alert.remote is not None:
            return ScanFinding(
                str(alert.remote),
                f"{alert.remote} scanned {alert.local}: {alert.count} probes, "
                f"{len(alert.ports)} ports, from {alert.first_seen:.6f} to {alert.last_seen:.6f}",
                alert.count,
            )
    return None


def scan_findings(attempts: pa.Table) -> list[ScanFinding]:
    """Every scanner among the attempts (only candidates' attempts are fed)."""
    found = []
    for source, group in source_groups(of_sources(attempts, candidates(attempts))):
        finding = scan_source(source, group)
        if finding is not None:
            found.append(finding)
    return found


def suspects(failing: dict[str, int]) -> pa.Table:
    """The sources with MIN_FAILURES failed attempts, counting different spellings of one
    address together: `h` each address text as written in the flows, `k` its address's number
    (shared by its spellings), sorted by text."""
    totals: dict[tuple[int, int], int] = {}
    spelled: dict[str, tuple[int, int]] = {}
    for text, count in failing.items():
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            continue  # the audit pass has already refused bad addresses
        key = (address.version, int(address))
        spelled[text] = key
        totals[key] = totals.get(key, 0) + count
    texts = sorted(text for text, key in spelled.items() if totals[key] >= MIN_FAILURES)
    numbers: dict[tuple[int, int], int] = {}
    keys = [numbers.setdefault(spelled[text], len(numbers)) for text in texts]
    return pa.table({"h": pa.array(texts, pa.string()), "k": pa.array(keys, pa.int64())})


def candidate_texts(failing: dict[str, int]) -> list[str]:
    """Address texts (as written in the flows) of the sources with MIN_FAILURES failed
    attempts, counting different spellings of one address together."""
    texts: list[str] = suspects(failing).column("h").to_pylist()
    return texts
