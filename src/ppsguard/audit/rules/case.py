"""What every finding rule reads: one host's `Case`, its open doors' `Door` facts, and `finding()`.

Pure. A `Case` bundles the observations, the registry baseline and the context, and works out
once, per listener, what several rules need: the entry that documents or denies the door, what
reaches it from outside (`baseline.door_verdict`), the catalog risks of its port. It also holds
the facts that tie finding types together, each named once, so that no rule has to know what
another emitted: `Door.exposure_reported` says that an exposure finding (a firewall that does
not hold, a widened bind) already carries the door's exposure risks, so the risky-service rule
does not repeat them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from ppsguard.audit import advise
from ppsguard.audit.baseline import Baseline, DoorVerdict, Verdict, door_verdict, widened
from ppsguard.audit.context import AuditContext, RiskNote
from ppsguard.audit.views import FirewallState, Listener, Observations, Reach, ReachState, Vantage
from ppsguard.model.findings import Finding, FindingType, Remedy, Severity, finding_id
from ppsguard.model.net import Family, Protocol
from ppsguard.model.registry import ANYWHERE, Entry
from ppsguard.model.sockets import Exposure


class DoorKeys(TypedDict, total=False):
    """What identifies a door in a finding (keyword arguments of `finding`)."""

    protocol: Protocol
    family: Family
    address: str
    port: int
    identity: str | None
    pids: tuple[int, ...]


def finding(
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
) -> Finding:
    """A finding whose id is the hash of its identity fields (`model.findings.finding_id`)."""
    return Finding(
        id=finding_id(kind, protocol, family, address, port, identity),
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


def worse(a: Severity, b: Severity) -> Severity:
    return a if a.rank >= b.rank else b


def who(listener: Listener) -> str:
    """`sshd.service (pid 812)`: the holder of a door, in words."""
    name = listener.unit or listener.exe or listener.process or "an unknown process"
    pids = f" (pid {', '.join(str(p) for p in listener.pids)})" if listener.pids else ""
    return f"{name}{pids}"


def where(listener: Listener) -> str:
    """`tcp/[::]:22`: the door itself."""
    address = f"[{listener.address}]" if listener.family is Family.IPV6 else str(listener.address)
    return f"{listener.protocol.value}/{address}:{listener.port}"


def waived(entry: Entry | None, ctx: AuditContext) -> bool:
    """True while the entry's waiver runs."""
    return bool(entry and entry.waiver and entry.waiver.expires >= ctx.today)


@dataclass(frozen=True, slots=True)
class Door:
    """One listener with what the registry, the outside view and the risk catalog say of it.

    Exactly one of `denied` (a `denies` entry covers an outward door), `documented` (a
    `provides` entry covers it) and `unregistered` holds.
    """

    listener: Listener
    keys: DoorKeys
    service: str | None  # the port's registered service name
    seen: str  # "tcp/0.0.0.0:22 held by sshd (pid 812)"
    verdict: DoorVerdict
    outward: bool  # not bound to loopback
    risks: tuple[RiskNote, ...]  # outward doors only
    deny: Entry | None
    provide: Entry | None
    firewall_absent: bool  # the firewall was read and holds no rules at all

    @property
    def denied(self) -> bool:
        return self.deny is not None and self.outward

    @property
    def documented(self) -> bool:
        return not self.denied and self.provide is not None

    @property
    def unregistered(self) -> bool:
        return not self.denied and self.provide is None

    @property
    def entry(self) -> Entry | None:
        """The entry a risk is held against: the documenting one, else the denying one."""
        return self.provide or self.deny

    @property
    def restricted(self) -> bool:
        """The documenting entry limits who may connect."""
        provide = self.provide
        return provide is not None and (provide.sources != (ANYWHERE,) or bool(provide.excluded))

    @property
    def exposure_risks(self) -> tuple[RiskNote, ...]:
        return tuple(r for r in self.risks if r.kind == "exposure")

    @property
    def exposure_severity(self) -> Severity | None:
        return max((r.severity for r in self.exposure_risks), key=lambda s: s.rank, default=None)

    @property
    def exposure_notes(self) -> tuple[str, ...]:
        return tuple(f"risk {r.id}: {r.title}" for r in self.exposure_risks)

    @property
    def open_despite_deny(self) -> bool:
        """Denied by the registry, yet something reaches it."""
        return self.denied and self.verdict.verdict is Verdict.OPEN

    @property
    def bind_widened(self) -> bool:
        """Documented with a narrower bind than it listens on."""
        return (
            self.documented
            and self.outward
            and self.provide is not None
            and widened(self.listener, self.provide)
        )

    @property
    def restriction_unenforced(self) -> bool:
        """Documented for some sources only, and no firewall at all to say so."""
        return self.documented and self.outward and self.restricted and self.firewall_absent

    @property
    def exposure_reported(self) -> bool:
        """An exposure finding on this door already carries its exposure risks."""
        return self.open_despite_deny or self.bind_widened or self.restriction_unenforced

    @property
    def exposure_contained(self) -> bool:
        """The registry limits who may connect and nothing shows that limit failing."""
        return self.documented and self.restricted and self.verdict.verdict is not Verdict.OPEN


@dataclass(frozen=True, slots=True)
class Case:
    """One host's audit input, with the per-door facts worked out once."""

    obs: Observations
    baseline: Baseline
    ctx: AuditContext
    apply: str  # the command that applies the registry's policy, for remedies
    doors: tuple[Door, ...]
    unexplained: tuple[Reach, ...]  # see `_unexplained`

    @classmethod
    def of(cls, obs: Observations, baseline: Baseline, ctx: AuditContext) -> Case:
        fw = obs.firewall
        absent = fw is not None and fw.state is FirewallState.NONE
        doors = tuple(_door(item, obs, baseline, ctx, absent) for item in obs.listeners or ())
        apply = advise.apply_command(ctx.registry_file, ctx.host, ctx.netns)
        return cls(obs, baseline, ctx, apply, doors, _unexplained(obs))

    def reach_keys(self, reach: Reach) -> DoorKeys:
        return {
            "protocol": reach.protocol,
            "family": Family.of(reach.address),
            "address": str(reach.address),
            "port": reach.port,
            "identity": reach.service,
        }

    def reach_evidence(self, reach: Reach) -> tuple[str, str]:
        """(where it was seen open, why no local listener explains it)."""
        view = self.obs.outside
        assert view is not None  # only asked for ports of the outside view
        why = (
            "no local listener explains it (forwarded? another namespace?)"
            if self.obs.listeners is not None
            else "no local inventory"
        )
        return f"open on {reach.address} from the {view.vantage} view", why


def _unexplained(obs: Observations) -> tuple[Reach, ...]:
    """Ports open from another vantage point that no local listener explains. From the host
    itself an open port proves little (rule sets accept loopback traffic)."""
    view = obs.outside
    if view is None or view.vantage is Vantage.SELF:
        return ()
    local = {(item.protocol, item.port) for item in obs.listeners or ()}
    return tuple(
        reach
        for reach in view.results
        if reach.state is ReachState.OPEN and (reach.protocol, reach.port) not in local
    )


def _door(
    item: Listener, obs: Observations, baseline: Baseline, ctx: AuditContext, absent: bool
) -> Door:
    service = ctx.service_name(item.port, item.protocol)
    outward = item.exposure is not Exposure.LOOPBACK
    return Door(
        listener=item,
        keys={
            "protocol": item.protocol,
            "family": item.family,
            "address": str(item.address),
            "port": item.port,
            "identity": item.service_identity,
            "pids": item.pids,
        },
        service=service,
        seen=f"{where(item)} held by {who(item)}",
        verdict=door_verdict(item, baseline, obs.outside, obs.firewall),
        outward=outward,
        risks=ctx.risks(item.port, item.protocol, service) if outward else (),
        deny=baseline.denies_for(item.protocol, item.port),
        provide=baseline.provides_for(item.protocol, item.port),
        firewall_absent=absent,
    )
