"""The PPS registry as data: what each host should offer, to whom, why, and what it refuses.

A registry is one YAML document (plus the files it includes) loaded by `ppsguard.registry.load`.
This module only holds the result: frozen values, no parsing, no I/O.

    Registry
    ├── networks: NetworkDef(name, members, excluded)   members/excluded are names or CIDR literals
    ├── services: ServiceDef(name, ports)               ports: ServicePort(protocol, PortRange)
    ├── roles:    RoleDef(name, provides, denies, uses) shared by many hosts
    ├── hosts:    HostDef(name, addresses, roles, provides, denies, uses, default, default_log)
    └── default, default_log                            registry-wide fallback (deny, no log)

Every entry (`Entry`) carries a stable `id` (given in YAML, or derived as `<owner>/<kind>/<service>`
e.g. `building/provides/pop3`) and the `SourceLocation` of its YAML node, so verdicts and findings
cite the document's own words. Entries keep their sources as written (`sources`, `excluded`:
network names, addresses, CIDRs or `anywhere`); `ports` are already resolved from the service name
(declared services first, then the knowledge base) so every consumer sees the same numbers.

Order semantics (first match wins), documented in docs/registry.md:
  1. the host's `denies`, then each role's `denies` (roles in the order the host lists them);
  2. the host's `provides`, then each role's `provides`;
  3. the default (`host.default`, else `registry.default`, else deny).
Denies always win over provides: a reader never has to guess whether an allow further up the file
overrides an explicit denial. `ppsguard.policy.compile.compile_host_policy` turns this into a
`HostPolicy`, the ordered `Rule` list shared by the evaluators and the firewall renderers.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from enum import StrEnum

from ppsguard.model.net import IPAddress, IPNetwork, PortRange, Protocol

ANYWHERE = "anywhere"


class Action(StrEnum):
    """What happens to a matching connection attempt. `reject` answers (RST / ICMP), deny drops."""

    ALLOW = "allow"
    DENY = "deny"
    REJECT = "reject"


class EntryKind(StrEnum):
    """The list an entry comes from."""

    PROVIDES = "provides"
    DENIES = "denies"
    USES = "uses"


class BindScope(StrEnum):
    """Where a service is expected to listen."""

    ANY = "any"
    LOOPBACK = "loopback"
    ADDRESS = "address"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    BOTH = "both"


class Sensitivity(StrEnum):
    """Data sensitivity of what crosses the port (FedRAMP SSP table 10-4 vocabulary)."""

    PUBLIC = "public"
    INTERNAL = "internal"
    CONFIDENTIAL = "confidential"
    RESTRICTED = "restricted"


@dataclass(frozen=True, slots=True, order=True)
class SourceLocation:
    """Where a value was written: file as given to the loader, 1-based line and column."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class ServicePort:
    """One protocol and an inclusive port range, e.g. 53/udp or 1000-2000/tcp."""

    protocol: Protocol
    ports: PortRange

    def __str__(self) -> str:
        return f"{self.ports}/{self.protocol}"


@dataclass(frozen=True, slots=True)
class Bind:
    """Expected bind scope; `address` is set only when scope is ADDRESS."""

    scope: BindScope
    address: IPAddress | None = None

    def __str__(self) -> str:
        return str(self.address) if self.address is not None else str(self.scope)


@dataclass(frozen=True, slots=True)
class Waiver:
    """An accepted exception to policy, valid until `expires` (inclusive)."""

    reason: str
    expires: dt.date
    location: SourceLocation


@dataclass(frozen=True, slots=True)
class NetworkDef:
    """A named set of addresses: members (names, addresses, CIDRs, `anywhere`) minus excluded."""

    name: str
    members: tuple[str, ...]
    excluded: tuple[str, ...]
    description: str | None
    location: SourceLocation


@dataclass(frozen=True, slots=True)
class ServiceDef:
    """A named service declared in the registry (knowledge-base names need no declaration)."""

    name: str
    ports: tuple[ServicePort, ...]
    description: str | None
    location: SourceLocation


@dataclass(frozen=True, slots=True)
class Entry:
    """One documented door: a provided service, an explicit denial, or an outbound use.

    `service` is the name as written (None when only `port:` was given); `ports` the resolved
    protocol/port ranges. `sources` and `excluded` are as written; for `uses` entries
    `destinations` says where the host connects to. `action` is ALLOW for provides/uses and
    DENY or REJECT for denies.
    """

    id: str
    kind: EntryKind
    action: Action
    service: str | None
    ports: tuple[ServicePort, ...]
    sources: tuple[str, ...]
    excluded: tuple[str, ...]
    destinations: tuple[str, ...]
    log: bool
    location: SourceLocation
    bind: Bind | None = None
    process: str | None = None
    unit: str | None = None
    purpose: str | None = None
    owner: str | None = None
    direction: Direction | None = None
    boundary: str | None = None
    encrypted: bool | None = None
    sensitivity: Sensitivity | None = None
    reference: str | None = None
    waiver: Waiver | None = None

    @property
    def label(self) -> str:
        """The service name, or the ports, as a reader would say it (a long port list is cut
        after 8 items, so messages stay one readable line whatever the registry holds)."""
        if self.service:
            return self.service
        shown = ", ".join(str(p) for p in self.ports[:8])
        return shown if len(self.ports) <= 8 else f"{shown}, ... ({len(self.ports):,} in all)"


@dataclass(frozen=True, slots=True)
class RoleDef:
    """A set of entries shared by every host that lists the role."""

    name: str
    provides: tuple[Entry, ...]
    denies: tuple[Entry, ...]
    uses: tuple[Entry, ...]
    description: str | None
    location: SourceLocation


@dataclass(frozen=True, slots=True)
class HostDef:
    """A machine: matched by name or by one of its addresses."""

    name: str
    addresses: tuple[IPAddress, ...]
    roles: tuple[str, ...]
    provides: tuple[Entry, ...]
    denies: tuple[Entry, ...]
    uses: tuple[Entry, ...]
    default: Action | None
    default_log: bool | None
    description: str | None
    location: SourceLocation
    default_location: SourceLocation | None = None


@dataclass(frozen=True, slots=True)
class Registry:
    """A whole loaded registry. `files` lists the main file first, then includes in load order."""

    networks: tuple[NetworkDef, ...]
    services: tuple[ServiceDef, ...]
    roles: tuple[RoleDef, ...]
    hosts: tuple[HostDef, ...]
    default: Action
    default_log: bool
    files: tuple[str, ...]
    description: str | None = None
    default_location: SourceLocation | None = None

    def network(self, name: str) -> NetworkDef | None:
        return next((n for n in self.networks if n.name == name), None)

    def service(self, name: str) -> ServiceDef | None:
        return next((s for s in self.services if s.name == name), None)

    def role(self, name: str) -> RoleDef | None:
        return next((r for r in self.roles if r.name == name), None)

    def host(self, name: str) -> HostDef | None:
        return next((h for h in self.hosts if h.name == name), None)

    def entries(self) -> tuple[Entry, ...]:
        """Every entry of every host and role, in document order of their owners."""
        out: list[Entry] = []
        for host in self.hosts:
            out.extend((*host.denies, *host.provides, *host.uses))
        for role in self.roles:
            out.extend((*role.denies, *role.provides, *role.uses))
        return tuple(out)


ANY_SOURCES: tuple[IPNetwork, ...] = (
    ipaddress.IPv4Network("0.0.0.0/0"),
    ipaddress.IPv6Network("::/0"),
)


@dataclass(frozen=True, slots=True)
class Rule:
    """One resolved, first-match rule of a host's inbound (or outbound) policy.

    An entry with several protocols becomes one Rule per protocol, all sharing `entry_id`.
    `ports` are disjoint, sorted ranges. `sources` and `destinations` are collapsed, disjoint
    IPv4 then IPv6 networks with every exclusion already subtracted; `ANY_SOURCES`
    (0.0.0.0/0 and ::/0) means anywhere, and an empty tuple means the rule matches nothing
    (e.g. a network minus itself). For inbound rules `destinations` is ANY_SOURCES unless the
    entry binds a specific address (that address) or loopback (127.0.0.0/8, ::1, and then
    `sources` is also restricted to loopback, since only local processes can reach it).
    """

    entry_id: str
    kind: EntryKind
    action: Action
    log: bool
    protocol: Protocol
    ports: tuple[PortRange, ...]
    sources: tuple[IPNetwork, ...]
    destinations: tuple[IPNetwork, ...]
    location: SourceLocation

    @property
    def source_is_any(self) -> bool:
        return self.sources == ANY_SOURCES

    @property
    def destination_is_any(self) -> bool:
        return self.destinations == ANY_SOURCES


@dataclass(frozen=True, slots=True)
class HostPolicy:
    """The ordered inbound rules of one host (first match wins), then the default.

    `rules` is what a firewall renders and what the evaluator walks; `outbound` lists the
    documented `uses` as ALLOW rules (destinations set, sources ANY_SOURCES) for audits and
    monitors; `default_location` is where the default was written (None when implicit).
    """

    host: str
    addresses: tuple[IPAddress, ...]
    rules: tuple[Rule, ...]
    outbound: tuple[Rule, ...]
    default_action: Action
    default_log: bool
    default_location: SourceLocation | None
