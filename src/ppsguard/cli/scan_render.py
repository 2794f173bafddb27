"""How `pps scan` shows its work to people: the progress bar, the result table, the dry-run plan.

Rendering only: it takes a ScanResult or a ScanPlan and prints; it must not scan, plan or decide.
Machine formats (JSON, JSONL, XML, grepable) are built elsewhere; the progress observer is
handed the JSONL row builder so that it can stream port lines as they are found.
"""

from __future__ import annotations

import shlex
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ppsguard.cli import output
from ppsguard.model.net import IPAddress
from ppsguard.model.scan import HostResult, HostState, PortResult, PortState, ScanResult

if TYPE_CHECKING:
    from ppsguard.scan.plan import ScanPlan


class ProgressObserver:
    """Rich progress bar on stderr; JSONL lines on stdout as results arrive."""

    def __init__(
        self,
        progress: bool,
        jsonl: bool,
        all_states: bool,
        port_row: Callable[[PortResult], dict[str, Any]],
    ) -> None:
        self.jsonl, self.all_states, self.port_row = jsonl, all_states, port_row
        self.wants_ports = jsonl  # per-port callbacks only when streaming them
        self.lock = threading.Lock()
        self.bar: Any = None
        from ppsguard.scan.observer import Eta

        self.eta = Eta()  # sliding-window rate: never negative, no stall at 99%
        self.task: Any = None
        if progress:
            from rich.progress import (
                BarColumn,
                Progress,
                TaskProgressColumn,
                TextColumn,
            )

            self.bar = Progress(
                TextColumn("{task.fields[phase]}"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.description}"),
                console=output.human(),
                transient=True,
            )

    def on_phase(self, name: str) -> None:
        """A new phase (discovery, ports): a bar of its own, with its own ETA."""
        if self.bar is not None:
            if self.task is not None:
                self.bar.remove_task(self.task)
            self.bar.start()
            self.task = self.bar.add_task("ETA --", total=1, phase=name)
            from ppsguard.scan.observer import Eta

            self.eta = Eta()

    def on_start(self, total_probes: int, seed: int) -> None:
        if total_probes:  # a discovery-only run (-sn) has no probe order to repeat
            output.human().print(f"seed {seed} (repeat this probe order with --seed {seed})")
        if self.bar is not None and self.task is None:
            self.on_phase("ports")

    def on_progress(self, done: int, total: int) -> None:
        if self.bar is not None and self.task is not None:
            eta = self.eta.update(time.monotonic(), done, total)
            label = "ETA --" if eta is None else f"ETA {eta:.0f}s"
            self.bar.update(
                self.task, completed=min(done, total), total=max(1, total), description=label
            )

    def on_port(self, address: IPAddress, result: PortResult) -> None:
        if self.jsonl and (self.all_states or result.state is PortState.OPEN):
            with self.lock:
                output.emit_jsonl(
                    [{"type": "port", "address": str(address), **self.port_row(result)}]
                )

    def on_host(self, host: HostResult) -> None:
        return None

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def render_table(result: ScanResult, all_hosts: bool = False) -> None:
    """Hosts that are up (all with `all_hosts`), then a summary that counts the others."""
    from rich.table import Table

    console = output.human()
    for host in result.hosts:
        name = f" ({host.hostname})" if host.hostname else ""
        if host.address is None:
            console.print(f"[red]{host.hostname}[/red]: {host.error}", markup=True)
            continue
        if host.state is not HostState.UP:
            if all_hosts:
                why = host.error or str(host.reason or "no-response")
                console.print(f"{host.address}{name}: host {host.state} ({why})")
            continue
        summary = ", ".join(f"{n} {s}" for s, n in sorted(host.summary.items()))
        why = f" ({host.reason})" if host.reason is not None else ""
        console.print(
            f"[bold]{host.address}{name}[/bold]{why}: {summary or 'up, no ports scanned'}",
            markup=True,
        )
        for flag in host.flags:
            console.print(f"  [yellow]flag:[/yellow] {flag}", markup=True)
        if host.ports:
            table = Table(show_header=True, header_style="bold")
            for col in ("PORT", "STATE", "REASON", "SERVICE"):
                table.add_column(col)
            for p in host.ports:
                svc = ""
                if p.service is not None and p.service.name:
                    svc = " ".join(
                        x for x in (p.service.name, p.service.product, p.service.version) if x
                    )
                    svc += f" ({p.service.confidence})"
                table.add_row(f"{p.port}/{p.protocol}", str(p.state), str(p.reason), svc)
            console.print(table)
    s = result.stats
    console.print(
        f"{host_count(result)} in {s.elapsed_s:.2f}s, {s.probes_sent} probes, "
        f"{s.retransmissions} retransmissions, engine {result.engine}, seed {s.seed}"
    )


def host_count(result: ScanResult) -> str:
    """`254 addresses, 2 up` (plus how many were not scanned or not probed, when any were)."""
    addressed = [h for h in result.hosts if h.address is not None]
    up = sum(1 for h in addressed if h.state is HostState.UP)
    text = f"{len(addressed)} address{'es' if len(addressed) != 1 else ''}, {up} up"
    skipped = sum(1 for h in addressed if h.error and h.error.startswith("not scanned"))
    unknown = sum(1 for h in addressed if h.state is HostState.UNKNOWN)
    if skipped:
        text += f", {skipped} not scanned (network/broadcast)"
    if unknown:
        text += f", {unknown} undecided (--deadline)"
    if len(addressed) < len(result.hosts):
        text += f", {len(result.hosts) - len(addressed)} unresolved"
    return text


def render_plan(plan: ScanPlan, nmap: list[list[str]] | None = None) -> None:
    """The dry run: whom the gate admitted, what would be sent, how fast; nothing is sent."""
    console = output.human()
    lines: list[str] = []
    for target in plan.targets.entries:
        if target.error is not None:
            lines.append(f"target {target.token}: {target.error}")
            continue
        what = (
            f"host name, resolved to {target.first}"
            if target.hostname is not None and target.count
            else f"{target.count} address(es) {target.first} .. {target.last}"
            if target.count
            else "0 addresses"
        )
        excluded = f" ({target.excluded} excluded)" if target.excluded else ""
        lines.append(f"target {target.token}: {what}{excluded}")
    if plan.gate.exclude:
        lines.append(f"excluding {', '.join(str(n) for n in plan.gate.exclude)}")
    if plan.gate.scope is not None:
        lines.append(f"scope: all {plan.targets.count} address(es) inside the --scope allow-list")
    rate = "unlimited" if plan.max_rate is None else f"at most {plan.max_rate:g} packets/s"
    lines.append(
        f"dry run: engine {plan.engine}, {len(plan.ports.tcp)} TCP + {len(plan.ports.udp)} UDP "
        f"ports per host, up to {plan.probes} probes (plus retries and discovery), "
        f"timing T{plan.gate.timing}, rate {rate}"
    )
    lines.extend("would run: " + shlex.join(argv) for argv in nmap or ())
    for line in lines:
        console.print(line, markup=False, highlight=False)
