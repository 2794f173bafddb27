"""Hold flows against the registry: which the registry allowed, which broke it, who scanned.

    result = audit_flows(registry, flows, host="web1")        # Flow objects, any reader
    result = audit_batches(registry, batches, host="web1")    # Arrow record batches
    doc = document(result)

Each flow is oriented to the audited host (its registry addresses; without any, every flow's
responder is the host) and evaluated by the bulk evaluator, a record batch at a time
(`flows.audit_batch`; the DuckDB and Spark engines in `flows.engines` call the same code). Findings,
each with the flows that show it (its first `EXAMPLES` uids in (ts, uid) order) and counts:

  unauthorized-peer     an inbound flow was established although the registry denies the peer
  undocumented-service  an inbound flow was answered on a port no entry provides
  outbound-not-declared the host opened a connection that no `uses` entry covers
  scan                  a source the scan detectors of `pps watch` (TRW) decided is scanning
  denied-attempts       per deny entry: attempts the registry denies that were not established

and a per-entry summary: connections, distinct peers, how many allowed. "Established" and
"answered" come from the flow's conn_state (S1 SF S2 S3 RSTO RSTR) or, for flow logs without
it, from packets seen in both directions. A finding's message is worded from its first flow in
(ts, uid) order, so the document does not depend on the order the flows arrive in. Pure.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from ppsguard.flows.audit_batch import ATTEMPT_SCHEMA, BatchAuditor
from ppsguard.flows.audit_columns import address_text
from ppsguard.flows.columnar import flow_batches
from ppsguard.flows.partial import EXAMPLES, Partial
from ppsguard.flows.scans import ScanFinding, scan_findings
from ppsguard.model.flows import Flow
from ppsguard.model.registry import Registry

__all__ = ["EXAMPLES", "EntrySummary", "FlowAudit", "FlowFinding", "audit_batches", "audit_flows"]


@dataclass(slots=True)
class FlowFinding:
    kind: str
    severity: str
    message: str
    entry: str | None
    count: int = 0
    examples: list[str] = field(default_factory=list)
    peers: set[str] = field(default_factory=set)


@dataclass(slots=True)
class EntrySummary:
    entry: str
    connections: int = 0
    allowed: int = 0
    peers: int = 0


@dataclass(slots=True)
class FlowAudit:
    host: str
    flows: int = 0
    findings: dict[str, FlowFinding] = field(default_factory=dict)
    entries: dict[str, EntrySummary] = field(default_factory=dict)


def audit_batches(
    registry: Registry, batches: Iterable[pa.RecordBatch], host: str | None = None
) -> FlowAudit:
    """The local engine: every batch through the evaluator, attempts kept for the scan pass."""
    auditor = BatchAuditor(registry, host)
    part = auditor.partial()
    attempts: list[pa.RecordBatch] = []
    for batch in batches:
        found = auditor.audit(batch, part, attempts=True)
        if found is not None and found.num_rows:
            attempts.append(found)
    table = pa.Table.from_batches(attempts, schema=ATTEMPT_SCHEMA)
    return finish(auditor, part, scan_findings(table))


def audit_flows(registry: Registry, flows: Iterable[Flow], host: str | None = None) -> FlowAudit:
    return audit_batches(registry, flow_batches(flows), host)


def finish(auditor: BatchAuditor, part: Partial, scans: Iterable[ScanFinding]) -> FlowAudit:
    """The merged partial and the scanners, as the audit."""
    result = FlowAudit(auditor.host, part.flows)
    peers: dict[int, set[str]] = {}
    rows = part.finding_peers.rows()
    if rows.shape[0]:
        for gid, family, high, low in rows.tolist():
            peers.setdefault(gid, set()).add(address_text(family, high, low))
    for key, found in part.found.items():
        result.findings["|".join(str(k) for k in key)] = FlowFinding(
            found.kind,
            found.severity,
            found.first[2],
            found.entry,
            found.count,
            [uid for _, uid in found.examples],
            peers.get(found.gid, set()),
        )
    for scan in scans:
        result.findings[f"scan|{scan.source}"] = FlowFinding(
            "scan", "high", scan.message, None, scan.count, [], {scan.source}
        )
    distinct = part.entry_peers.counts(len(part.entries))
    if part.dense_peers is not None:  # coded batches put every entry peer there
        distinct += part.dense_peers.counts(len(part.entries))
    for index in np.flatnonzero(part.connections).tolist():
        entry = part.entries[index]
        result.entries[entry] = EntrySummary(
            entry, int(part.connections[index]), int(part.allowed[index]), int(distinct[index])
        )
    return result


def document(result: FlowAudit) -> dict[str, object]:
    """The audit as a JSON-ready document."""
    findings = sorted(result.findings.values(), key=lambda f: (f.kind, f.message))
    return {
        "schema": "ppsguard.flows-audit",
        "version": 1,
        "host": result.host,
        "flows": result.flows,
        "findings": [
            {
                "type": f.kind,
                "severity": f.severity,
                "message": f.message,
                "entry": f.entry,
                "count": f.count,
                "peers": sorted(f.peers)[:100],
                "examples": f.examples,
            }
            for f in findings
        ],
        "entries": [
            {
                "entry": s.entry,
                "connections": s.connections,
                "allowed": s.allowed,
                "peers": s.peers,
            }
            for s in sorted(result.entries.values(), key=lambda s: s.entry)
        ],
        "counts": dict(Counter(f.kind for f in findings)),
    }
