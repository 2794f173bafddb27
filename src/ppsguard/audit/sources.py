"""Observation sources: what feeds the audit's views, behind one small Protocol. I/O edge.

A source fills in one or more views of `Observations` (`views.py`: the listeners, the outside
view, the firewall view) and adds what it could not see to `gaps`:

    seen = Observations(host="web", observed_at=now, listeners=None)
    seen = gather([LocalInventory(None), LiveFirewall(None, policy)], seen)

Sources run in order and each sees what the earlier ones found (the outside scan probes the
ports the local inventory found open). Today's sources: the local socket inventory, a scan of
the host's own addresses, an imported nmap XML file, the live nftables rule set, and `Recorded`
views taken elsewhere (a stored run, another process). A flow file, the live monitor or the store
become sources by implementing `observe`, and every view and finding rule works on them
unchanged. The collection itself lives in `observe.py`; this module only composes it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ppsguard.audit.baseline import Baseline
from ppsguard.audit.observe import (
    firewall_view,
    host_addresses,
    local_listeners,
    outside_from_nmap,
    ports_to_scan,
    scan_outside,
)
from ppsguard.audit.views import (
    FirewallState,
    FirewallView,
    Listener,
    Observations,
    OutsideView,
    Vantage,
)
from ppsguard.errors import PpsError
from ppsguard.model.net import IPNetwork
from ppsguard.model.registry import HostPolicy
from ppsguard.scan.scope import ScopeGate


class ObservationSource(Protocol):
    """Something that sees part of a host."""

    def observe(self, seen: Observations) -> Observations:
        """`seen` with this source's views filled in and its gaps appended; views it does not
        feed are left as they are."""
        ...


def gather(sources: Iterable[ObservationSource], seen: Observations) -> Observations:
    """Run `sources` in order over `seen` (each sees what the earlier ones found)."""
    for source in sources:
        seen = source.observe(seen)
    return seen


@dataclass(frozen=True, slots=True)
class LocalInventory:
    """The host's (or network namespace's) listening sockets and its own addresses."""

    netns: str | None = None

    def observe(self, seen: Observations) -> Observations:
        listeners, gaps = local_listeners(self.netns)
        return dataclasses.replace(
            seen,
            listeners=listeners,
            addresses=host_addresses(self.netns),
            gaps=(*seen.gaps, *gaps),
        )


@dataclass(frozen=True, slots=True)
class OutsideScan:
    """A TCP connect scan (and service identification) of the host's own addresses, on every
    port the local inventory saw open and every port the baseline names; run from inside
    `from_netns` (None: here), through the scope gate: addresses outside `scope` (when given)
    are not scanned and are named as a gap. Needs the local inventory's addresses."""

    baseline: Baseline
    from_netns: str | None = None
    vantage: Vantage = Vantage.SELF
    identify: bool = True
    scope: Sequence[IPNetwork] | None = None

    def observe(self, seen: Observations) -> Observations:
        ports = ports_to_scan(seen.listeners or (), self.baseline)
        gate = ScopeGate(scope=self.scope, timing=4)
        admitted, refused = gate.partition(seen.addresses)
        gaps = seen.gaps
        if refused:
            shown = ", ".join(str(a) for a in refused)
            gaps = (*gaps, f"not scanned, outside the --scope allow-list: {shown}")
        try:
            view = scan_outside(
                tuple(admitted),
                ports,
                from_netns=self.from_netns,
                vantage=self.vantage,
                identify=self.identify,
                gate=gate,
            )
        except PpsError as exc:
            return dataclasses.replace(seen, gaps=(*gaps, f"outside view not taken: {exc}"))
        return dataclasses.replace(seen, outside=view, gaps=gaps)


@dataclass(frozen=True, slots=True)
class NmapFile:
    """An imported nmap XML file as the outside view. When the local views were taken and the
    file scanned none of this host's addresses, it describes another machine: the local views
    say nothing of it and are dropped (see `describes_another_machine`)."""

    path: Path

    def observe(self, seen: Observations) -> Observations:
        view = outside_from_nmap(self.path)
        if seen.listeners is not None and _foreign(view, seen):
            shown = ", ".join(str(a) for a in view.addresses[:4])
            return dataclasses.replace(
                seen,
                listeners=None,
                firewall=None,
                outside=view,
                gaps=(
                    f"the nmap file scanned {shown}, not this machine: "
                    "audited from the file alone (no sockets, no firewall)",
                ),
            )
        return dataclasses.replace(seen, outside=view)


def _foreign(view: OutsideView, seen: Observations) -> bool:
    return bool(view.addresses) and not set(view.addresses) & set(seen.addresses)


def describes_another_machine(seen: Observations) -> bool:
    """True when an imported file's outside view replaced the local views (see `NmapFile`)."""
    view = seen.outside
    return (
        view is not None
        and view.vantage is Vantage.NMAP
        and seen.listeners is None
        and _foreign(view, seen)
    )


@dataclass(frozen=True, slots=True)
class LiveFirewall:
    """The live nftables rule set (and iptables-legacy rules), judged against `policy`."""

    netns: str | None = None
    policy: HostPolicy | None = None

    def observe(self, seen: Observations) -> Observations:
        view = firewall_view(self.netns, self.policy)
        gaps = view.notes if view.state is FirewallState.UNKNOWN else ()
        return dataclasses.replace(seen, firewall=view, gaps=(*seen.gaps, *gaps))


@dataclass(frozen=True, slots=True)
class Recorded:
    """Views taken elsewhere (a stored run, another process, a file): fills in those it holds."""

    listeners: tuple[Listener, ...] | None = None
    outside: OutsideView | None = None
    firewall: FirewallView | None = None
    gaps: tuple[str, ...] = ()

    def observe(self, seen: Observations) -> Observations:
        return dataclasses.replace(
            seen,
            listeners=self.listeners if self.listeners is not None else seen.listeners,
            outside=self.outside if self.outside is not None else seen.outside,
            firewall=self.firewall if self.firewall is not None else seen.firewall,
            gaps=(*seen.gaps, *self.gaps),
        )


def observe(
    *,
    host: str,
    baseline: Baseline,
    policy: HostPolicy | None,
    netns: str | None = None,
    local: bool = True,
    scan: bool = True,
    scan_from: str | None = None,
    nmap_file: Path | None = None,
    firewall: bool = True,
    identify: bool = True,
    scope: Sequence[IPNetwork] | None = None,
    now: dt.datetime | None = None,
) -> Observations:
    """Take every view asked for: the sources `pps audit`'s options choose, in order. The
    outside scan covers only the addresses inside `scope` (when given)."""
    seen = Observations(host=host, observed_at=now or dt.datetime.now(dt.UTC), listeners=None)
    if local:
        seen = LocalInventory(netns).observe(seen)
    if nmap_file is not None:
        seen = NmapFile(nmap_file).observe(seen)
    elif scan and local:
        vantage = Vantage.REMOTE if scan_from else Vantage.SELF
        seen = OutsideScan(baseline, scan_from or netns, vantage, identify, scope).observe(seen)
    if firewall and not (local and describes_another_machine(seen)):
        seen = LiveFirewall(netns, policy).observe(seen)
    return seen


__all__ = [
    "LiveFirewall",
    "LocalInventory",
    "NmapFile",
    "ObservationSource",
    "OutsideScan",
    "Recorded",
    "describes_another_machine",
    "gather",
    "observe",
]
