"""How `pps scan` shows its work: the progress bar (stderr), the result table and the dry-run
plan (stdout), and the `--json` document streamed host by host and port by port.

Rendering only: it takes a ScanResult or a ScanPlan and prints; it must not scan, plan or decide.
The document builders (`host_json`, `result_json`, the port row) live with the command and are
handed in (`Builders`, `port_row`); this module decides only how their documents are written.
Tables are plain aligned columns when piped or past output.FAST_ROWS ports, Rich on a terminal;
every outside string (host names, banners, errors) goes through the one sanitizer.
"""

from __future__ import annotations

import dataclasses
import functools
import shlex
import sys
import threading
import time
from collections.abc import Callable, Iterator
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
        if progress and sys.stderr.isatty():  # a bar in a log file is noise
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
            output.note(f"seed {seed} (repeat this probe order with --seed {seed})")
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
                    [{"type": "port", "address": str(address), **self.port_row(result)}],
                    plain=True,
                )

    def on_host(self, host: HostResult) -> None:
        return None

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _service_cell(p: PortResult) -> str:
    if p.service is None or not p.service.name:
        return ""
    name = " ".join(x for x in (p.service.name, p.service.product, p.service.version) if x)
    return f"{name} ({p.service.confidence})"


def _port_rows(ports: tuple[PortResult, ...]) -> Iterator[tuple[str, str, str, str]]:
    for p in ports:
        service = "" if p.service is None else _service_cell(p)
        yield f"{p.port}/{p.protocol}", str(p.state), str(p.reason), service


def _port_widths(ports: tuple[PortResult, ...]) -> tuple[int, int, int, int]:
    """The table's column widths without formatting a row: from the largest port number and
    the enum values present (65,535 rows: one pass of cheap attribute reads)."""
    port_width = len(str(max(p.port for p in ports))) + 1
    port_width += max(len(protocol) for protocol in {p.protocol for p in ports})
    states = max(len(state) for state in {p.state for p in ports})
    reasons = max(len(reason) for reason in {p.reason for p in ports})
    return port_width, states, reasons, 0


def render_table(result: ScanResult, all_hosts: bool = False) -> None:
    """On stdout, nmap-like: hosts that are up (all with `all_hosts`), a line each, then its
    ports as a table (plain and aligned when piped or big, Rich on a terminal), then a summary
    line that counts the others."""
    for host in result.hosts:
        name = f" ({host.hostname})" if host.hostname else ""
        if host.address is None:
            output.emit_line(f"{host.hostname}: {host.error}")
            continue
        if host.state is not HostState.UP:
            if all_hosts:
                why = host.error or str(host.reason or "no-response")
                output.emit_line(f"{host.address}{name}: host {host.state} ({why})")
            continue
        summary = ", ".join(f"{n} {s}" for s, n in sorted(host.summary.items()))
        why = f" ({host.reason})" if host.reason is not None else ""
        output.emit_line(f"{host.address}{name}{why}: {summary or 'up, no ports scanned'}")
        for flag in host.flags:
            output.emit_line(f"  flag: {flag}")
        if host.ports:
            output.emit_table(
                ("PORT", "STATE", "REASON", "SERVICE"),
                functools.partial(_port_rows, host.ports),
                count=len(host.ports),
                widths=_port_widths(host.ports),
            )
    s = result.stats
    output.emit_line(
        f"{host_count(result)} in {s.elapsed_s:.2f}s, {s.probes_sent} probes, "
        f"{s.retransmissions} retransmissions, engine {result.engine}, seed {s.seed}"
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Builders:
    """The command's document builders: a port, a host (with its ports), the whole result."""

    port: Callable[[PortResult], dict[str, Any]]
    host: Callable[[HostResult], dict[str, Any]]
    result: Callable[[ScanResult], dict[str, Any]]


def _port_items(
    ports: tuple[PortResult, ...], port_json: Callable[[PortResult], dict[str, Any]]
) -> Iterator[Any]:
    """The ports of the document, one by one; a port without a service is its JSON bytes from
    a template per (protocol, state, reason, reason_ttl) — it differs from its neighbours only in
    the number, so 65,535 ports cost one `%` each instead of a dict and an encode
    (~0.15 s -> ~0.07 s of CPU)."""
    from ppsguard.report.streams import RawJson, encode

    lead = b'{"port":0,'
    templates: dict[tuple[int, int, int, int | None], bytes] = {}  # member ids: no Enum hash
    for p in ports:
        if p.service is not None:
            yield port_json(p)
            continue
        key = (id(p.protocol), id(p.state), id(p.reason), p.reason_ttl)
        template = templates.get(key)
        if template is None:
            data = encode(port_json(dataclasses.replace(p, port=0)), plain=True)
            template = templates[key] = b'{"port":%d,' + data[len(lead) :].replace(b"%", b"%%")
        yield RawJson(template % p.port)


def json_document(result: ScanResult, builders: Builders) -> dict[str, Any]:
    """`builders.result(result)` with hosts and their ports as `Streamed` members (the same
    bytes once written)."""
    from ppsguard.report.streams import Streamed

    def hosts() -> Iterator[dict[str, Any]]:
        for h in result.hosts:
            doc = builders.host(dataclasses.replace(h, ports=()))
            doc["ports"] = Streamed(_port_items(h.ports, builders.port))
            yield doc

    document = builders.result(dataclasses.replace(result, hosts=()))
    document["hosts"] = Streamed(hosts())
    return document


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
        output.emit_line(line)
