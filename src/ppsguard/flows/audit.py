"""Hold flows against the registry: which the registry allowed, which broke it, who scanned.

    result = audit_flows(registry, flows, host="web1")

Each flow is oriented to the audited host (its registry addresses; without any, every flow's
responder is the host) and evaluated by the bulk evaluator in batches. Findings, each with the
flows that show it (first `EXAMPLES` uids) and counts:

  unauthorized-peer     an inbound flow was established although the registry denies the peer
  undocumented-service  an inbound flow was answered on a port no entry provides
  outbound-not-declared the host opened a connection that no `uses` entry covers
  scan                  a source the scan detectors of `pps watch` (TRW) decided is scanning
  denied-attempts       per deny entry: attempts the registry denies that were not established

and a per-entry summary: connections, distinct peers, how many allowed. "Established" and
"answered" come from the flow's conn_state (S1 SF S2 S3 RSTO RSTR; for UDP, SF) or, for flow logs
without it, from packets seen in both directions. Pure.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

from ppsguard.model.events import Direction, Event, EventKind, EvidenceSource
from ppsguard.model.flows import Flow
from ppsguard.model.net import Protocol
from ppsguard.model.registry import Registry
from ppsguard.monitor.detectors import Detectors
from ppsguard.monitor.expectations import Expectations
from ppsguard.policy.bulk import BulkEvaluator

BATCH = 65_536
EXAMPLES = 5
ESTABLISHED = frozenset({"S1", "SF", "S2", "S3", "RSTO", "RSTR"})
_PROTOCOLS = {"tcp": Protocol.TCP, "udp": Protocol.UDP, "sctp": Protocol.SCTP}


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
    peers: set[str] = field(default_factory=set)


@dataclass(slots=True)
class FlowAudit:
    host: str
    flows: int = 0
    findings: dict[str, FlowFinding] = field(default_factory=dict)
    entries: dict[str, EntrySummary] = field(default_factory=dict)

    def finding(
        self, key: str, kind: str, severity: str, message: str, entry: str | None
    ) -> FlowFinding:
        found = self.findings.get(key)
        if found is None:
            found = self.findings[key] = FlowFinding(kind, severity, message, entry)
        return found


def answered(flow: Flow) -> bool:
    if flow.conn_state is not None:
        return flow.conn_state in ESTABLISHED or (flow.proto != "tcp" and flow.conn_state == "SF")
    return bool(flow.resp_pkts) and bool(flow.orig_pkts)


def _batches(flows: Iterable[Flow]) -> Iterator[list[Flow]]:
    iterator = iter(flows)
    while batch := list(islice(iterator, BATCH)):
        yield batch


def audit_flows(registry: Registry, flows: Iterable[Flow], host: str | None = None) -> FlowAudit:
    expectations = Expectations(registry, host)
    policy = expectations.policy
    evaluator = BulkEvaluator(policy)
    addresses = frozenset(policy.addresses)
    result = FlowAudit(expectations.host)
    detectors = Detectors(None)
    rule_ids = [rule.entry_id for rule in policy.rules]
    default_id = f"{expectations.host}/default"
    for batch in _batches(flows):
        inbound = [f for f in batch if not addresses or f.resp_h in addresses]
        outbound = [
            f for f in batch if addresses and f.orig_h in addresses and f.resp_h not in addresses
        ]
        result.flows += len(batch)
        _inbound(result, evaluator, inbound, rule_ids, default_id, expectations)
        for flow in outbound:
            _outbound(result, expectations, flow)
        for flow in inbound:
            _scan_events(detectors, flow)
    for alert in detectors.book.alerts.values():
        if alert.kind != "scan" or alert.remote is None:
            continue
        found = result.finding(
            f"scan|{alert.remote}",
            "scan",
            "high",
            f"{alert.remote} scanned {alert.local}: {alert.count} probes, "
            f"{len(alert.ports)} ports, from {alert.first_seen:.6f} to {alert.last_seen:.6f}",
            None,
        )
        found.count = alert.count
        found.peers.add(str(alert.remote))
    return result


def _inbound(  # noqa: PLR0917 -- one batch and the audit's lookups
    result: FlowAudit,
    evaluator: BulkEvaluator,
    flows: list[Flow],
    rule_ids: list[str],
    default_id: str,
    expectations: Expectations,
) -> None:
    checked = [f for f in flows if f.proto in _PROTOCOLS]
    if not checked:
        return
    decision = evaluator.evaluate(
        [f.orig_h for f in checked],
        [f.resp_p for f in checked],
        [_PROTOCOLS[f.proto] for f in checked],
        [f.resp_h for f in checked]
        if all(f.orig_h.version == f.resp_h.version for f in checked)
        else None,
    )
    actions = decision.action.tolist()
    rules = decision.rule.tolist()
    for flow, action_code, rule in zip(checked, actions, rules, strict=True):
        entry_id = rule_ids[rule] if rule >= 0 else default_id
        allowed = action_code == 1
        was_answered = answered(flow)
        summary = result.entries.get(entry_id)
        if summary is None:
            summary = result.entries[entry_id] = EntrySummary(entry_id)
        summary.connections += 1
        summary.allowed += allowed
        summary.peers.add(str(flow.orig_h))
        port = f"{flow.resp_p}/{flow.proto}"
        provided = expectations.baseline.provides_for(_PROTOCOLS[flow.proto], flow.resp_p)
        if was_answered and provided is None and rule < 0:
            found = result.finding(
                f"undocumented|{flow.resp_h}|{port}",
                "undocumented-service",
                "medium",
                f"{flow.resp_h}:{port} answered, but no entry provides it",
                None,
            )
        elif was_answered and not allowed:
            named = provided.id if provided is not None else entry_id
            verb = "deny" if action_code == 0 else "reject"
            found = result.finding(
                f"unauthorized-peer|{flow.orig_h}|{port}",
                "unauthorized-peer",
                "high",
                f"{flow.orig_h} reached {flow.resp_h}:{port}, which entry {named} does not "
                f"allow ({entry_id} decides {verb})",
                named,
            )
        elif not allowed:
            found = result.finding(
                f"denied|{entry_id}",
                "denied-attempts",
                "info",
                f"attempts denied by {entry_id}",
                entry_id,
            )
        else:
            continue
        _count(found, flow)


def _outbound(result: FlowAudit, expectations: Expectations, flow: Flow) -> None:
    event = Event(
        time=flow.ts,
        kind=EventKind.OPENED,
        source=EvidenceSource.SYNTHETIC,
        protocol=flow.proto,
        orig=flow.orig_h,
        orig_port=flow.orig_p,
        resp=flow.resp_h,
        resp_port=flow.resp_p,
        direction=Direction.OUTBOUND,
    )
    if expectations.check(event):
        found = result.finding(
            f"outbound|{flow.resp_h}|{flow.resp_p}/{flow.proto}",
            "outbound-not-declared",
            "medium",
            f"{flow.orig_h} opened {flow.resp_h}:{flow.resp_p}/{flow.proto}: no `uses` entry "
            "covers it",
            None,
        )
        _count(found, flow)


def _count(found: FlowFinding, flow: Flow) -> None:
    found.count += 1
    found.peers.add(str(flow.orig_h))
    if len(found.examples) < EXAMPLES:
        found.examples.append(flow.uid)


def _scan_events(detectors: Detectors, flow: Flow) -> None:
    """Feed one inbound flow to the scan detectors as an attempt and its outcome."""
    base = {
        "source": EvidenceSource.SYNTHETIC,
        "protocol": flow.proto,
        "orig": flow.orig_h,
        "orig_port": flow.orig_p,
        "resp": flow.resp_h,
        "resp_port": flow.resp_p,
        "direction": Direction.INBOUND,
        "initiated": not (flow.history or "").startswith("^"),
    }
    opened = Event(time=flow.ts, kind=EventKind.OPENED, **base)  # type: ignore[arg-type]
    ok = answered(flow) and flow.conn_state not in ("RSTO",)
    outcome = Event(
        time=flow.ts + (flow.duration or 0.0),
        kind=EventKind.CLOSED,
        answered=ok,
        **base,  # type: ignore[arg-type]
    )
    detectors.feed(opened)
    detectors.feed(outcome)


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
                "peers": len(s.peers),
            }
            for s in sorted(result.entries.values(), key=lambda s: s.entry)
        ],
        "counts": dict(Counter(f.kind for f in findings)),
    }
