"""Hold live events against the registry: what did happen that the registry does not expect?

`Expectations(registry, host)` compiles the host's policy once; `check(event)` returns the
registry findings an event shows, each naming the entry (id, file:line) or rule it concerns:

  undocumented-port     an inbound connection was answered on a port no entry provides
  unauthorized-peer     an inbound connection was answered although the registry would refuse
                        that peer (the firewall is not enforcing the entry); names the entry that
                        provides the port and the one that decides
  outbound-not-declared this host opened a connection that no `uses` entry covers
  unregistered-listener a new listening socket on a port no entry provides
  unexpected-process    a documented port answered by a process other than the entry's `process`

Denied attempts that the firewall logged (`pps:<entry>` NFLOG prefixes) are expected by the
registry and raise nothing here; the scan detectors count them. Loopback traffic is local and
never an inbound finding. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from ppsguard.audit.baseline import Baseline
from ppsguard.model.events import Direction, EntryRef, Event, EventKind
from ppsguard.model.findings import Severity
from ppsguard.model.net import IPAddress, Protocol
from ppsguard.model.registry import Action, Entry, HostPolicy, Registry, SourceLocation
from ppsguard.policy.compile import compile_host_policy, ordered_entries, select_host
from ppsguard.policy.evaluate import evaluate, rule_matches

_PROTOCOLS = {"tcp": Protocol.TCP, "udp": Protocol.UDP, "sctp": Protocol.SCTP}


@dataclass(frozen=True, slots=True)
class RegistryFinding:
    kind: str
    severity: Severity
    message: str
    key: str
    entry: EntryRef | None
    remote: IPAddress | None
    local: IPAddress | None
    port: int | None
    protocol: str


def endpoint(address: IPAddress | None, port: int) -> str:
    """`198.18.0.1:80`, `[2001:db8::1]:80`, `*:80`."""
    if address is None:
        return f"*:{port}"
    return f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"


def _ref(entry_id: str, location: SourceLocation) -> EntryRef:
    return EntryRef(id=entry_id, file=location.file, line=location.line)


def _entry_ref(entry: Entry) -> EntryRef:
    return _ref(entry.id, entry.location)


class Expectations:
    """One host's expectations, compiled once from the registry."""

    def __init__(self, registry: Registry, host: str | None = None) -> None:
        chosen = select_host(registry, host)
        self.host = chosen.name
        self.policy: HostPolicy = compile_host_policy(registry, chosen.name)
        self.baseline = Baseline(
            host=chosen,
            entries=ordered_entries(registry, chosen),
            default=self.policy.default_action,
            registry_file=registry.files[0] if registry.files else None,
        )
        self._rules = {r.entry_id: r for r in self.policy.rules}

    def action_of(self, entry_id: str | None) -> Action | None:
        """The action of the entry whose log prefix named `entry_id` (None if unknown)."""
        if entry_id is None:
            return None
        rule = self._rules.get(entry_id)
        if rule is not None:
            return rule.action
        if entry_id == f"{self.host}/default" or entry_id.endswith("/default"):
            return self.policy.default_action
        return None

    def _deciding_ref(self, index: int, entry_id: str | None) -> EntryRef:
        if index >= 0 and entry_id is not None:
            return _ref(entry_id, self.policy.rules[index].location)
        location = self.policy.default_location or SourceLocation("<registry>", 0, 0)
        return _ref(f"{self.host}/default", location)

    def check(self, event: Event) -> list[RegistryFinding]:
        protocol = _PROTOCOLS.get(event.protocol)
        if protocol is None:
            return []
        if event.kind in (EventKind.LISTENER_ADDED, EventKind.LISTENER_CHANGED):
            return self._listener(event, protocol)
        if event.direction is Direction.INBOUND and event.kind is EventKind.ANSWERED:
            return self._inbound(event, protocol)
        if event.direction is Direction.OUTBOUND and event.kind is EventKind.OPENED:
            return self._outbound(event, protocol)
        return []

    def _inbound(self, event: Event, protocol: Protocol) -> list[RegistryFinding]:
        assert event.orig is not None and event.resp is not None and event.resp_port is not None
        port = event.resp_port
        provided = self.baseline.provides_for(protocol, port)
        decision = evaluate(self.policy, event.orig, port, protocol, event.resp)
        where = f"{event.orig} -> {endpoint(event.resp, port)}/{event.protocol}"
        if provided is None and decision.action is not Action.ALLOW:
            ref = self._deciding_ref(
                decision.index, decision.rule.entry_id if decision.rule else None
            )
            return [
                RegistryFinding(
                    kind="undocumented-port",
                    severity=Severity.HIGH,
                    message=f"{where} was answered, but no entry provides {port}/{event.protocol}",
                    key=f"undocumented-port|{event.resp}|{port}|{event.protocol}",
                    entry=ref,
                    remote=event.orig,
                    local=event.resp,
                    port=port,
                    protocol=event.protocol,
                )
            ]
        if decision.action is Action.ALLOW:
            return []
        decided = self._deciding_ref(
            decision.index, decision.rule.entry_id if decision.rule else None
        )
        named = _entry_ref(provided) if provided is not None else decided
        return [
            RegistryFinding(
                kind="unauthorized-peer",
                severity=Severity.HIGH,
                message=(
                    f"{where} was answered, but entry {named.id} does not allow this peer "
                    f"({decided.id} at {decided.file}:{decided.line} decides "
                    f"{decision.action.value}): the firewall is not enforcing the registry"
                ),
                key=f"unauthorized-peer|{event.orig}|{event.resp}|{port}|{event.protocol}",
                entry=named,
                remote=event.orig,
                local=event.resp,
                port=port,
                protocol=event.protocol,
            )
        ]

    def _outbound(self, event: Event, protocol: Protocol) -> list[RegistryFinding]:
        assert event.orig is not None and event.resp is not None and event.resp_port is not None
        for rule in self.policy.outbound:
            if rule_matches(rule, event.orig, event.resp_port, protocol, event.resp):
                return []
        where = f"{event.orig} -> {endpoint(event.resp, event.resp_port)}/{event.protocol}"
        return [
            RegistryFinding(
                kind="outbound-not-declared",
                severity=Severity.MEDIUM,
                message=f"{where}: this host opened a connection that no `uses` entry covers",
                key=f"outbound|{event.resp}|{event.resp_port}|{event.protocol}",
                entry=None,
                remote=event.resp,
                local=event.orig,
                port=event.resp_port,
                protocol=event.protocol,
            )
        ]

    def _listener(self, event: Event, protocol: Protocol) -> list[RegistryFinding]:
        port = event.resp_port
        if port is None:
            return []
        provided = self.baseline.provides_for(protocol, port)
        bind = f"{endpoint(event.resp, port)}/{event.protocol}"
        who = f" by {event.process}" if event.process else ""
        if provided is None:
            return [
                RegistryFinding(
                    kind="unregistered-listener",
                    severity=Severity.MEDIUM,
                    message=f"new listener {bind}{who}: no entry provides this port",
                    key=f"listener|{event.resp}|{port}|{event.protocol}",
                    entry=None,
                    remote=None,
                    local=event.resp,
                    port=port,
                    protocol=event.protocol,
                )
            ]
        expected = provided.process
        if expected and event.process and event.process != expected:
            return [
                RegistryFinding(
                    kind="unexpected-process",
                    severity=Severity.HIGH,
                    message=(
                        f"{bind} is answered{who}, but entry {provided.id} expects {expected}"
                    ),
                    key=f"process|{port}|{event.protocol}|{event.process}",
                    entry=_entry_ref(provided),
                    remote=None,
                    local=event.resp,
                    port=port,
                    protocol=event.protocol,
                )
            ]
        return []
