"""The drift engine: registry baseline x observations -> typed findings. Pure.

Passes, in order:
1. every listener (local inventory): documented, denied, or undocumented; its bind against the
   entry's `bind:`; its owner against `process:`/`unit:`; what the firewall and the outside view
   do to it; the risk catalog (cleartext and legacy risks are findings of their own, exposure
   risks raise the severity of an exposure finding on the same door instead of repeating it);
2. every documented `provides` entry without a listener (missing-service) and every expired
   waiver;
3. every port open in the outside view that no local listener explains (reachable-undocumented,
   firewall-not-enforcing for denied ports), and every protocol mismatch;
4. the host: no firewall at all, ppsguard's table absent, or changed with nothing per port.
Identity never uses pids (see `model.findings.finding_id`).
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypedDict

from ppsguard.audit import advise
from ppsguard.audit.baseline import Baseline, Verdict, door_verdict, widened
from ppsguard.audit.views import FirewallState, Listener, Observations, Reach, Vantage
from ppsguard.model.findings import (
    AuditReport,
    Finding,
    FindingType,
    Remedy,
    Severity,
    finding_id,
)
from ppsguard.model.net import Family, Protocol
from ppsguard.model.registry import ANYWHERE, Entry
from ppsguard.model.sockets import Exposure

T = FindingType


@dataclass(frozen=True, slots=True)
class RiskNote:
    """A catalog risk as the audit needs it (see `knowledge.risks.Risk`)."""

    id: str
    severity: Severity
    title: str
    reason: str
    remedy: str
    kind: str  # cleartext | legacy | exposure


RiskLookup = Callable[[int, Protocol, str | None], tuple[RiskNote, ...]]
ServiceNamer = Callable[[int, Protocol], str | None]


def _no_risks(_port: int, _protocol: Protocol, _service: str | None) -> tuple[RiskNote, ...]:
    return ()


def _no_names(_port: int, _protocol: Protocol) -> str | None:
    return None


@dataclass(frozen=True, slots=True)
class AuditContext:
    """What the engine needs besides the observations: today, the knowledge base, names."""

    today: dt.date
    risks: RiskLookup = _no_risks
    service_name: ServiceNamer = _no_names
    registry_file: str | None = None
    host: str | None = None
    netns: str | None = None


@dataclass(slots=True)
class _Collector:
    findings: dict[str, Finding] = field(default_factory=dict)

    def add(
        self,
        kind: FindingType,
        severity: Severity,
        title: str,
        *,
        protocol: Protocol | None = None,
        family: Family | None = None,
        address: str | None = None,
        port: int | None = None,
        identity: str | None = None,
        entry: Entry | None = None,
        evidence: tuple[str, ...] = (),
        remedy: Remedy | None = None,
        pids: tuple[int, ...] = (),
    ) -> None:
        fid = finding_id(kind, protocol, family, address, port, identity)
        if fid in self.findings:
            return
        self.findings[fid] = Finding(
            id=fid,
            type=kind,
            severity=severity,
            title=title,
            protocol=protocol,
            family=family,
            address=address,
            port=port,
            process=identity,
            entry=entry.id if entry else None,
            entry_location=str(entry.location) if entry else None,
            evidence=evidence,
            remedy=remedy or Remedy(""),
            pids=pids,
        )


class _DoorKeys(TypedDict, total=False):
    """What identifies a door in a finding (the keyword arguments of `_Collector.add`)."""

    protocol: Protocol
    family: Family
    address: str
    port: int
    identity: str | None
    pids: tuple[int, ...]


def _max(a: Severity, b: Severity) -> Severity:
    return a if a.rank >= b.rank else b


def _who(listener: Listener) -> str:
    name = listener.unit or listener.exe or listener.process or "an unknown process"
    pids = f" (pid {', '.join(str(p) for p in listener.pids)})" if listener.pids else ""
    return f"{name}{pids}"


def _where(listener: Listener) -> str:
    address = f"[{listener.address}]" if listener.family is Family.IPV6 else str(listener.address)
    return f"{listener.protocol.value}/{address}:{listener.port}"


def _waived(entry: Entry | None, ctx: AuditContext) -> bool:
    return bool(entry and entry.waiver and entry.waiver.expires >= ctx.today)


class _Engine:
    def __init__(self, obs: Observations, baseline: Baseline, ctx: AuditContext) -> None:
        self.obs = obs
        self.base = baseline
        self.ctx = ctx
        self.out = _Collector()
        self.apply = advise.apply_command(ctx.registry_file, ctx.host, ctx.netns)

    def listener(self, item: Listener) -> None:
        ident = item.service_identity
        keys: _DoorKeys = {
            "protocol": item.protocol,
            "family": item.family,
            "address": str(item.address),
            "port": item.port,
            "identity": ident,
            "pids": item.pids,
        }
        service = self.ctx.service_name(item.port, item.protocol)
        seen = f"{_where(item)} held by {_who(item)}"
        verdict = door_verdict(item, self.base, self.obs.outside, self.obs.firewall)
        outward = item.exposure is not Exposure.LOOPBACK
        risks = self.ctx.risks(item.port, item.protocol, service) if outward else ()
        exposure_risks = [r for r in risks if r.kind == "exposure"]
        exposure_sev = max((r.severity for r in exposure_risks), key=lambda s: s.rank, default=None)
        exposure_note = tuple(f"risk {r.id}: {r.title}" for r in exposure_risks)
        exposure_reported = False
        deny = self.base.denies_for(item.protocol, item.port)
        provide = self.base.provides_for(item.protocol, item.port)

        if deny is not None and outward:
            if verdict.verdict is Verdict.OPEN:
                exposure_reported = True
                self.out.add(
                    T.FIREWALL_NOT_ENFORCING,
                    _max(Severity.HIGH, exposure_sev or Severity.HIGH),
                    f"{item.protocol.value}/{item.port} is denied by the registry but gets through",
                    entry=deny,
                    evidence=(seen, verdict.reason, *exposure_note),
                    remedy=advise.for_firewall(self.apply, f"entry {deny.id!r} must drop it."),
                    **keys,
                )
            elif verdict.verdict is Verdict.BLOCKED:
                self.out.add(
                    T.LISTENING_BUT_BLOCKED,
                    Severity.INFO,
                    f"{item.protocol.value}/{item.port} listens but is dropped as documented "
                    "(harmless)",
                    entry=deny,
                    evidence=(seen, verdict.reason),
                    remedy=advise.for_blocked(item, deny, False, self.apply),
                    **keys,
                )
        elif provide is not None:
            if outward and widened(item, provide):
                exposure_reported = True
                self.out.add(
                    T.EXPOSURE_WIDENED,
                    _max(Severity.HIGH, exposure_sev or Severity.HIGH),
                    f"{item.protocol.value}/{item.port} is documented as bound to "
                    f"{provide.bind} but listens on {item.address}",
                    entry=provide,
                    evidence=(
                        seen,
                        f"documented bind: {provide.bind}",
                        verdict.reason,
                        *exposure_note,
                    ),
                    remedy=advise.for_widened(item, provide, self.apply),
                    **keys,
                )
            owner_ok = (provide.process is None or item.matches_process(provide.process)) and (
                provide.unit is None or item.matches_unit(provide.unit)
            )
            if not owner_ok and (item.process or item.exe or item.unit):
                documented = provide.unit or provide.process
                self.out.add(
                    T.OWNER_CHANGED,
                    Severity.MEDIUM,
                    f"{item.protocol.value}/{item.port} is held by "
                    f"{item.unit or item.exe or item.process}, documented as {documented}",
                    entry=provide,
                    evidence=(seen, f"documented: {documented}"),
                    remedy=advise.for_owner(item, provide),
                    **keys,
                )
            restricted = provide.sources != (ANYWHERE,) or bool(provide.excluded)
            fw = self.obs.firewall
            if outward and restricted and fw is not None and fw.state is FirewallState.NONE:
                exposure_reported = True
                self.out.add(
                    T.FIREWALL_NOT_ENFORCING,
                    Severity.HIGH,
                    f"{item.protocol.value}/{item.port} is restricted to "
                    f"{', '.join(provide.sources)} but no firewall enforces it",
                    entry=provide,
                    evidence=(seen, "no firewall rules at all"),
                    remedy=advise.for_firewall(self.apply, f"entry {provide.id!r} restricts it."),
                    **keys,
                )
            if (
                outward
                and not restricted
                and verdict.verdict is Verdict.BLOCKED
                and verdict.evidence
                and (provide.bind is None or not widened(item, provide))
            ):
                self.out.add(
                    T.LISTENING_BUT_BLOCKED,
                    Severity.LOW,
                    f"{item.protocol.value}/{item.port} is documented open to anywhere but the "
                    "firewall drops it (stale)",
                    entry=provide,
                    evidence=(seen, verdict.reason),
                    remedy=advise.for_blocked(item, provide, True, self.apply),
                    **keys,
                )
            if restricted and verdict.verdict is not Verdict.OPEN:
                exposure_risks = []  # the registry limits who may connect, and it holds
        else:
            severity = Severity.MEDIUM if outward else Severity.LOW
            evidence = [seen, verdict.reason]
            if verdict.verdict is Verdict.OPEN and verdict.evidence:
                severity = Severity.HIGH
            if not self.base.documented:
                evidence.append("no registry: everything is undocumented")
            self.out.add(
                T.UNREGISTERED_LISTENER,
                severity,
                f"{item.protocol.value}/{item.port} ({service or 'unknown service'}) listens "
                f"on {item.address} but is not in the registry",
                evidence=tuple(evidence),
                remedy=advise.for_unregistered(item, service),
                **keys,
            )

        entry = provide or deny
        for risk in risks:
            if risk.kind == "exposure":
                if exposure_reported or risk not in exposure_risks:
                    continue
                if verdict.verdict is Verdict.BLOCKED:
                    continue
            if _waived(entry, self.ctx):
                continue
            if (
                provide is not None
                and risk.kind != "exposure"
                and risk.severity.rank < Severity.HIGH.rank
            ):
                continue  # documented, and not bad enough to repeat on every audit
            self.out.add(
                T.RISKY_SERVICE,
                risk.severity,
                f"{item.protocol.value}/{item.port}: {risk.title}",
                entry=entry,
                evidence=(seen, risk.reason, verdict.reason),
                remedy=advise.for_risk(item, risk.remedy, entry),
                **keys,
            )

    def entries(self, listeners: tuple[Listener, ...] | None) -> None:
        for entry in self.base.entries:
            waiver = entry.waiver
            if waiver is not None and waiver.expires < self.ctx.today:
                self.out.add(
                    T.WAIVER_EXPIRED,
                    Severity.MEDIUM,
                    f"the waiver of entry {entry.id!r} expired on {waiver.expires}",
                    address="*",
                    identity=entry.id,
                    entry=entry,
                    evidence=(f"waiver: {waiver.reason}", f"expired {waiver.expires}"),
                    remedy=advise.for_waiver(entry),
                )
        listening: dict[Protocol, list[int]] = {}
        for item in listeners or ():
            listening.setdefault(item.protocol, []).append(item.port)
        for ports in listening.values():
            ports.sort()
        for entry in self.base.provides():
            for sp in entry.ports:
                if listeners is not None:
                    found = listening.get(sp.protocol, [])
                    at = bisect.bisect_left(found, sp.ports.first)
                    present = at < len(found) and found[at] <= sp.ports.last
                    how = "nothing listens on the host"
                else:
                    outside = self.obs.outside
                    if outside is None or entry.sources != (ANYWHERE,):
                        continue
                    probed = [
                        p
                        for p in range(sp.ports.first, sp.ports.last + 1)
                        if outside.probed(sp.protocol, p)
                    ][:1024]
                    if not probed:
                        continue
                    present = any(outside.open_on(sp.protocol, p) for p in probed)
                    how = "not open in the outside view (no local inventory)"
                if present:
                    continue
                self.out.add(
                    T.MISSING_SERVICE,
                    Severity.LOW,
                    f"{entry.service or entry.id} ({sp}) is documented but {how}",
                    protocol=sp.protocol,
                    address=str(entry.bind.address) if entry.bind and entry.bind.address else "*",
                    port=sp.ports.first,
                    identity=entry.unit or entry.process or f"entry:{entry.id}",
                    entry=entry,
                    evidence=(f"entry {entry.id!r} at {entry.location}: {sp}", how),
                    remedy=advise.for_missing(entry),
                )

    def outside(self, listeners: tuple[Listener, ...] | None) -> None:
        view = self.obs.outside
        if view is None:
            return
        local = {(item.protocol, item.port) for item in listeners or ()}
        for reach in view.results:
            if reach.expected and reach.found:
                self._mismatch(reach)
        if view.vantage is Vantage.SELF:
            return
        for reach in view.results:
            if reach.state.value != "open" or (reach.protocol, reach.port) in local:
                continue
            self._reachable(reach, listeners is not None)

    def _mismatch(self, reach: Reach) -> None:
        """One finding per door: keyed by the local listener's bind when one explains the port
        (so the v4 and v6 views of one dual-stack socket are one finding), else the address."""
        assert reach.expected is not None and reach.found is not None
        holder = next(
            (
                item
                for item in self.obs.listeners or ()
                if item.protocol is reach.protocol
                and item.port == reach.port
                and (item.exposure is Exposure.ANY or item.address == reach.address)
            ),
            None,
        )
        family = holder.family if holder else Family.of(reach.address)
        address = str(holder.address) if holder else str(reach.address)
        self.out.add(
            T.PROTOCOL_MISMATCH,
            Severity.MEDIUM,
            f"{reach.protocol.value}/{reach.port} should be {reach.expected} but {reach.found} "
            "answers",
            protocol=reach.protocol,
            family=family,
            address=address,
            port=reach.port,
            identity=f"{reach.found}@{holder.service_identity}" if holder else reach.found,
            entry=self.base.provides_for(reach.protocol, reach.port),
            evidence=tuple(
                x
                for x in (
                    f"identified as {reach.found} on {reach.address}",
                    f"held by {_who(holder)}" if holder else None,
                    reach.product,
                    reach.banner,
                )
                if x
            ),
            remedy=advise.for_mismatch(reach.expected, reach.found),
            pids=holder.pids if holder else (),
        )

    def _reachable(self, reach: Reach, had_inventory: bool) -> None:
        keys: _DoorKeys = {
            "protocol": reach.protocol,
            "family": Family.of(reach.address),
            "address": str(reach.address),
            "port": reach.port,
            "identity": reach.service,
        }
        outside = self.obs.outside
        assert outside is not None  # only called for results of the outside view
        where = f"open on {reach.address} from the {outside.vantage} view"
        why = (
            "no local listener explains it (forwarded? another namespace?)"
            if had_inventory
            else ("no local inventory")
        )
        deny = self.base.denies_for(reach.protocol, reach.port)
        if deny is not None:
            self.out.add(
                T.FIREWALL_NOT_ENFORCING,
                Severity.HIGH,
                f"{reach.protocol.value}/{reach.port} is denied by the registry but is open",
                entry=deny,
                evidence=(where, why),
                remedy=advise.for_firewall(self.apply, f"entry {deny.id!r} must drop it."),
                **keys,
            )
            return
        provide = self.base.provides_for(reach.protocol, reach.port)
        if provide is None:
            self.out.add(
                T.REACHABLE_UNDOCUMENTED,
                Severity.HIGH,
                f"{reach.protocol.value}/{reach.port} ({reach.service or 'unknown'}) is open "
                "from outside but not in the registry",
                evidence=(where, why, *(x for x in (reach.product, reach.banner) if x)),
                remedy=advise.for_reachable(
                    reach.protocol.value, reach.port, reach.service, self.apply
                ),
                **keys,
            )
        for risk in self.ctx.risks(reach.port, reach.protocol, reach.service):
            if _waived(provide, self.ctx) or (
                provide is not None and risk.severity.rank < Severity.HIGH.rank
            ):
                continue
            self.out.add(
                T.RISKY_SERVICE,
                risk.severity,
                f"{reach.protocol.value}/{reach.port}: {risk.title}",
                entry=provide,
                evidence=(where, risk.reason),
                remedy=advise.for_risk(None, risk.remedy, provide),
                **keys,
            )

    def host(self) -> None:
        fw = self.obs.firewall
        if fw is None or not self.base.restricts:
            return
        per_port = any(f.type is T.FIREWALL_NOT_ENFORCING for f in self.out.findings.values())
        if fw.state is FirewallState.NONE:
            title, severity = (
                "no firewall rules at all: the registry is not enforced",
                Severity.HIGH,
            )
        elif fw.state is FirewallState.FOREIGN:
            title, severity = (
                "ppsguard's table is not loaded; another firewall decides",
                Severity.MEDIUM,
            )
        elif fw.state is FirewallState.CHANGED and not per_port:
            title, severity = "ppsguard's table was changed since it was applied", Severity.MEDIUM
        else:
            return
        self.out.add(
            T.FIREWALL_NOT_ENFORCING,
            severity,
            title,
            identity=f"host:{self.obs.host}",
            evidence=(f"firewall: {fw.state}", *fw.notes, *fw.overriding),
            remedy=advise.for_firewall(self.apply, "apply the registry's policy."),
        )


def find_drift(obs: Observations, baseline: Baseline, ctx: AuditContext) -> tuple[Finding, ...]:
    """Every finding for one host, worst first, then by port."""
    engine = _Engine(obs, baseline, ctx)
    for item in obs.listeners or ():
        engine.listener(item)
    engine.entries(obs.listeners)
    engine.outside(obs.listeners)
    engine.host()
    return tuple(
        sorted(
            engine.out.findings.values(),
            key=lambda f: (-f.severity.rank, f.port if f.port is not None else -1, f.type.value),
        )
    )


def make_report(
    obs: Observations, baseline: Baseline, ctx: AuditContext, findings: tuple[Finding, ...]
) -> AuditReport:
    """Bundle findings with the doors (see `doors.py`) and what each view saw."""
    from ppsguard.audit.doors import doors_of

    outside = obs.outside
    seen_from = "not taken"
    if outside is not None:
        addresses = ", ".join(str(a) for a in outside.addresses) or "no address"
        seen_from = f"{outside.vantage} view of {addresses}"
    views = {
        "inventory": "not taken" if obs.listeners is None else f"{len(obs.listeners)} listeners",
        "outside": seen_from,
        "firewall": "not read" if obs.firewall is None else str(obs.firewall.state),
        "registry": ctx.registry_file or "none",
    }
    hint = None
    if not baseline.documented:
        hint = "no registry: draft one with `pps registry init --from-local -o registry.yaml`"
    return AuditReport(
        host=obs.host,
        observed_at=obs.observed_at,
        findings=findings,
        doors=doors_of(obs, baseline, findings, ctx.service_name),
        registry=ctx.registry_file,
        views=views,
        gaps=obs.gaps,
        draft_hint=hint,
    )
