"""`pps watch` as a library: run the sources, feed the detectors, hand alerts to the sinks.

    options = WatchOptions(registry=Path("registry.yaml"), netns="web1", duration=60)
    Watch(options, stdout=sys.stdout).run()

Sources, each started when it can run and reported in `health` when it cannot (and why):
conntrack events (`monitor.conntrack`), NFLOG records of ppsguard's rule set (`monitor.nflog`,
group 5, the renderers' default), and socket-table deltas (`monitor.listeners`). The readers run
in threads that push batches into one queue; the main thread feeds `monitor.detectors` and writes
every event and alert as a JSON line when `jsonl` is set (to `stdout`), and alerts to the sinks.

Signals: SIGHUP reloads the registry (a broken registry keeps the old one and says why), SIGTERM
and SIGINT end the watch after flushing the alerts; the exit code is 0. I/O edge.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import TextIO

import orjson

from ppsguard.errors import PpsError
from ppsguard.model.events import Alert, Direction, Event, EventKind, EvidenceSource
from ppsguard.model.net import IPAddress
from ppsguard.model.registry import Action
from ppsguard.monitor.conntrack import ConntrackSource, disable_tracking, enable_tracking
from ppsguard.monitor.detectors import Detectors
from ppsguard.monitor.expectations import Expectations
from ppsguard.monitor.listeners import ListenerSource
from ppsguard.monitor.records import alert_record, event_record
from ppsguard.monitor.sinks import Sink, open_sink

NFLOG_GROUP = 5


@dataclass(slots=True)
class WatchOptions:
    registry: Path | None = None
    host: str | None = None
    netns: str | None = None
    duration: float | None = None
    jsonl: bool = False
    sinks: list[str] = field(default_factory=list)
    scan_detector: str = "trw"
    nflog_group: int = NFLOG_GROUP
    listener_interval: float = 0.5
    receive_buffer: int = 16 << 20
    track: bool = True
    conntrack: bool = True
    nflog: bool = True
    listeners: bool = True


@dataclass(slots=True)
class SourceHealth:
    name: str
    running: bool
    note: str


def local_addresses() -> frozenset[IPAddress]:
    """The addresses of this namespace's interfaces (`ip -j address`)."""
    import ipaddress

    result = subprocess.run(
        ["ip", "-j", "address", "show"], capture_output=True, text=True, timeout=10, check=False
    )
    out: set[IPAddress] = set()
    if result.returncode == 0:
        for link in json.loads(result.stdout or "[]"):
            for info in link.get("addr_info", []):
                with contextlib.suppress(ValueError):
                    out.add(ipaddress.ip_address(info.get("local", "").split("%")[0]))
    return frozenset(out)


class Watch:
    def __init__(
        self,
        options: WatchOptions,
        *,
        stdout: TextIO,
        on_alert: Callable[[Alert], None] | None = None,
        on_note: Callable[[str], None] | None = None,
    ) -> None:
        self.options = options
        self.stdout = stdout
        self.on_alert = on_alert
        self.on_note = on_note or (lambda _text: None)
        self.queue: queue.Queue[list[Event]] = queue.Queue(maxsize=100_000)
        self.stop = threading.Event()
        self.reload = threading.Event()
        self.health: dict[str, SourceHealth] = {}
        self.sinks: list[Sink] = [open_sink(spec) for spec in options.sinks]
        self.expectations = self._load() if options.registry else None
        self.detectors = Detectors(self.expectations, scan_detector=options.scan_detector)
        self.events = 0
        self.alerts = 0
        self.queue_drops = 0
        self.tracking_enabled = False
        self._threads: list[threading.Thread] = []
        self.listener_source: ListenerSource | None = None
        self.conntrack: ConntrackSource | None = None

    @property
    def kernel_messages(self) -> int:
        return self.conntrack.messages if self.conntrack is not None else 0

    def _load(self) -> Expectations:
        from ppsguard.registry.load import load_registry

        assert self.options.registry is not None
        return Expectations(load_registry(self.options.registry), self.options.host)

    # -- sources -------------------------------------------------------------------------------
    def _push(self, events: list[Event]) -> None:
        if not events:
            return
        try:
            self.queue.put_nowait(events)
        except queue.Full:
            self.queue_drops += len(events)

    def _start_conntrack(self, local: frozenset[IPAddress]) -> None:
        try:
            source = ConntrackSource(local, receive_buffer=self.options.receive_buffer)
        except PpsError as exc:
            self.health["conntrack"] = SourceHealth("conntrack", False, str(exc))
            return
        self.conntrack = source
        dropped = "; updates that give no event dropped in the kernel" if source.filtered else ""
        self.health["conntrack"] = SourceHealth("conntrack", True, "NEW, UPDATE, DESTROY" + dropped)

        def run() -> None:
            try:
                while not self.stop.is_set():
                    self._push(source.read(0.2))
                while batch := source.read(0.0):  # what is queued when we stop
                    self._push(batch)
            except OSError as exc:
                self.health["conntrack"] = SourceHealth("conntrack", False, str(exc))
            finally:
                source.close()

        self._thread(run, "pps-conntrack")

    def _start_nflog(self, local: frozenset[IPAddress]) -> None:
        from ppsguard.monitor.conntrack import direction_of
        from ppsguard.monitor.nflog import NflogReader

        try:
            reader = NflogReader(self.options.nflog_group)
        except PpsError as exc:
            self.health["nflog"] = SourceHealth("nflog", False, str(exc))
            return
        self.health["nflog"] = SourceHealth(
            "nflog", True, f"group {self.options.nflog_group} (pps:<entry> prefixes)"
        )
        names = {6: "tcp", 17: "udp", 1: "icmp", 58: "ipv6-icmp"}

        def run() -> None:
            with reader:
                while not self.stop.is_set():
                    batch = [
                        Event(
                            time=time.time(),
                            kind=EventKind.LOGGED,
                            source=EvidenceSource.NFLOG,
                            protocol=names.get(record.protocol or -1, str(record.protocol)),
                            orig=record.source,
                            orig_port=record.source_port,
                            resp=record.destination,
                            resp_port=record.destination_port,
                            direction=direction_of(record.source, record.destination, local),
                            entry_id=record.entry_id,
                            detail=record.prefix.strip() or None,
                        )
                        for record in reader.read(0.2)
                    ]
                    self._push(batch)

        self._thread(run, "pps-nflog")

    def _thread(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # -- the loop ------------------------------------------------------------------------------
    def _annotate(self, event: Event) -> Event:
        """A logged packet's fate, from the action of the entry that logged it; the process
        that accepted an inbound connection, from the listening socket that is still there."""
        if (
            event.kind is EventKind.ANSWERED
            and event.direction is Direction.INBOUND
            and self.listener_source is not None
        ):
            owner = self.listener_source.owner_of(event.protocol, event.resp, event.resp_port)
            if owner is not None:
                return replace(event, process=owner.process, pid=owner.pid)
        if event.kind is not EventKind.LOGGED or self.expectations is None:
            return event
        action = self.expectations.action_of(event.entry_id)
        if action is None:
            return event
        return replace(event, state="accepted" if action is Action.ALLOW else "dropped")

    def _emit_event(self, event: Event) -> None:
        if self.options.jsonl:
            self.stdout.write(orjson.dumps(event_record(event)).decode() + "\n")

    def _emit_alert(self, alert: Alert) -> None:
        self.alerts += 1
        if self.options.jsonl:
            self.stdout.write(orjson.dumps(alert_record(alert)).decode() + "\n")
        for sink in self.sinks:
            sink.send(alert)
        if self.on_alert is not None:
            self.on_alert(alert)

    def _handle(self, events: list[Event]) -> None:
        for raw in events:
            event = self._annotate(raw)
            self.events += 1
            self._emit_event(event)
            for alert in self.detectors.feed(event):
                self._emit_alert(alert)

    def _reload(self) -> None:
        self.reload.clear()
        try:
            self.expectations = self._load()
        except PpsError as exc:
            self.on_note(f"registry not reloaded, keeping the previous one: {exc}")
            return
        self.detectors.expectations = self.expectations
        self.on_note(f"registry reloaded from {self.options.registry}")

    def _signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def stop(_signum: int, _frame: FrameType | None) -> None:
            self.stop.set()

        def hup(_signum: int, _frame: FrameType | None) -> None:
            self.reload.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, hup)

    def run(self) -> int:
        """Watch until the duration ends or a signal stops it; 0 when it ended normally."""
        self._signals()
        if self.options.netns is not None:
            enter_netns(self.options.netns)
        if self.options.track and self.options.conntrack:
            for note in enable_tracking():
                self.tracking_enabled = True
                self.on_note(note)
        local = local_addresses()
        if self.options.conntrack:
            self._start_conntrack(local)
        if self.options.nflog:
            self._start_nflog(local)
        listeners = ListenerSource(None) if self.options.listeners else None
        self.listener_source = listeners
        if listeners is not None:
            self.health["sockets"] = SourceHealth(
                "sockets", True, f"sock_diag every {self.options.listener_interval:g} s"
            )
            listeners.poll(time.time())  # the baseline: what listens now says nothing
        for health in self.health.values():
            if not health.running:
                self.on_note(f"source {health.name} is off: {health.note}")
        started = time.monotonic()
        next_poll = started + self.options.listener_interval
        try:
            while not self.stop.is_set():
                now_mono = time.monotonic()
                if (
                    self.options.duration is not None
                    and now_mono - started >= self.options.duration
                ):
                    break
                if self.reload.is_set():
                    self._reload()
                try:
                    self._handle(self.queue.get(timeout=0.05))
                    while True:
                        self._handle(self.queue.get_nowait())
                except queue.Empty:
                    pass
                if listeners is not None and now_mono >= next_poll:
                    next_poll = now_mono + self.options.listener_interval
                    self._handle(listeners.poll(time.time()))
                for alert in self.detectors.tick(time.time()):
                    self._emit_alert(alert)
                self.stdout.flush()
        finally:
            self.finish()
        return 0

    def finish(self) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(2.0)
        with contextlib.suppress(queue.Empty):
            while True:
                self._handle(self.queue.get_nowait())
        for alert in self.detectors.flush():
            self._emit_alert(alert)
        for sink in self.sinks:
            sink.close()
        if self.tracking_enabled:
            disable_tracking()
        with contextlib.suppress(OSError, ValueError):
            self.stdout.flush()


def enter_netns(name: str) -> None:
    """Move the whole watch into network namespace `name` (before any thread starts)."""
    from ppsguard.inventory import netns as netns_mod

    fd = netns_mod._open(netns_mod.resolve(name))  # the inventory's own namespace opener
    try:
        netns_mod.setns_current_thread(fd)
    finally:
        os.close(fd)
