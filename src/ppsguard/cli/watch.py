"""`pps watch`: who comes and goes, live, held against the registry (the library: monitor.watch).

Thin: parse options, build `WatchOptions`, run the watch. Alerts and notes go to stderr as one
line each (on a terminal, with a status line of events per second and open alerts); `--jsonl`
streams every event and alert to stdout.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from ppsguard.cli.storeopt import StoreOption

_HELP = """Watch connections, firewall log records and listening sockets live, and raise alerts
when traffic appears where the registry does not expect it.

Sources (each used when available; the watch says why one is off): conntrack events (every
connection, even one that lives a millisecond), NFLOG records of the rule set `pps policy apply`
loaded (denied and logged attempts, mapped to their registry entry), and socket-table changes
(new listeners, binds widened, owners changed; restarts stay silent).

Alerts: scans (Threshold Random Walk, decided after 4-5 first contacts; or the Snort-like window
presets low/medium/high), connections the registry does not allow, undocumented ports,
outbound connections no `uses` entry covers, new unregistered listeners, unexpected processes,
and lost events. Runs until interrupted (or --duration); SIGHUP reloads the registry, SIGTERM
flushes and exits 0. Needs root (CAP_NET_ADMIN). With --store, the alerts (each in its last
state) are recorded as one run when the watch stops (docs/store.md).

Alert lines, notes and (on a terminal) the live status go to stderr; --jsonl streams every
event and alert to stdout. See docs/watch.md."""


def register(app: typer.Typer) -> None:
    """Add `watch` to `app`."""

    @app.command("watch", help=_HELP, short_help="Watch who comes and goes, live; raise alerts.")
    def watch_command(  # noqa: PLR0917 - one parameter per command-line option
        registry: Annotated[
            Path | None,
            typer.Argument(
                help="The PPS registry to hold traffic against (optional).", metavar="REGISTRY"
            ),
        ] = None,
        host: Annotated[
            str | None, typer.Option("--host", help="The registry host this machine is.")
        ] = None,
        netns: Annotated[
            str | None, typer.Option("--netns", help="Watch inside this network namespace.")
        ] = None,
        duration: Annotated[
            float | None,
            typer.Option("--duration", help="Stop after this many seconds.", min=0.1),
        ] = None,
        jsonl: Annotated[
            bool,
            typer.Option("--jsonl", help="Stream every event and alert to stdout as JSON lines."),
        ] = False,
        alerts_to: Annotated[
            list[str] | None,
            typer.Option(
                "--alerts-to",
                help=(
                    "Also send alerts to a sink: jsonl:PATH, syslog (RFC 5424 to /dev/log), "
                    "syslog:unix:PATH, syslog:udp:HOST:PORT, or webhook:URL. Repeatable."
                ),
            ),
        ] = None,
        scan_detector: Annotated[
            str,
            typer.Option(
                "--scan-detector",
                help="trw (default), or the fixed-window presets low, medium, high.",
            ),
        ] = "trw",
        nflog_group: Annotated[
            int, typer.Option("--nflog-group", help="NFLOG group of the applied rule set.")
        ] = 5,
        no_track: Annotated[
            bool,
            typer.Option(
                "--no-track",
                help=(
                    "Do not switch connection tracking on "
                    "(a namespace with no `ct` rule tracks nothing)."
                ),
            ),
        ] = False,
        receive_buffer: Annotated[
            int,
            typer.Option(
                "--receive-buffer",
                help="Conntrack socket receive buffer in bytes (default 16 MiB).",
                min=4096,
            ),
        ] = 16 << 20,
        store: StoreOption = None,
    ) -> None:
        from ppsguard.cli.output import human
        from ppsguard.errors import UsageError
        from ppsguard.model.events import Alert
        from ppsguard.monitor.detectors import SCAN_DETECTORS
        from ppsguard.monitor.watch import Watch, WatchOptions
        from ppsguard.report.sanitize import visible

        if scan_detector not in SCAN_DETECTORS:
            raise UsageError(
                f"--scan-detector must be one of {', '.join(SCAN_DETECTORS)}", token=scan_detector
            )
        console = human()
        options = WatchOptions(
            registry=registry,
            host=host,
            netns=netns,
            duration=duration,
            jsonl=jsonl,
            sinks=list(alerts_to or []),
            scan_detector=scan_detector,
            nflog_group=nflog_group,
            track=not no_track,
            receive_buffer=receive_buffer,
        )

        def note(text: str) -> None:
            console.print(visible(f"watch: {text}"), markup=False, highlight=False)

        kept: dict[str, Alert] = {}  # the latest state of each alert, recorded at the end (--store)

        def alert_line(alert: Alert) -> None:
            kept[alert.key] = alert
            if jsonl:
                return
            entry = (
                f" [{alert.entry.id} {alert.entry.file}:{alert.entry.line}]" if alert.entry else ""
            )
            stamp = time.strftime("%H:%M:%S", time.localtime(alert.last_seen))
            console.print(
                visible(
                    f"{stamp} {alert.severity.value:<8} {alert.kind:<22} {alert.message}{entry}"
                ),
                markup=False,
                highlight=False,
            )

        watch = Watch(options, stdout=sys.stdout, on_alert=alert_line, on_note=note)
        started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        note(
            "sources: "
            + (", ".join(options_sources(options)) or "none")
            + (f"; registry {registry}" if registry else "; no registry (scan detection only)")
        )
        if sys.stderr.isatty():
            from rich.live import Live

            from ppsguard.cli.watch_view import LiveView

            view = LiveView(watch)

            def on_alert(alert: Alert) -> None:
                kept[alert.key] = alert
                view.add(alert)

            watch.on_alert = on_alert
            with Live(view, console=console, refresh_per_second=2, transient=True):
                code = watch.run()
        else:
            code = watch.run()
        summary = (
            f"{watch.events} events, {watch.alerts} alert announcements, "
            f"{watch.detectors.lost_events} events lost, "
            f"{watch.kernel_messages} conntrack messages read"
        )
        for health in watch.health.values():
            summary += f"; {health.name}: {'on' if health.running else 'off (' + health.note + ')'}"
        note(summary)
        if store is not None or os.environ.get("PPSGUARD_STORE"):
            from ppsguard.cli.storeopt import record
            from ppsguard.monitor.records import alert_record

            document = {
                "schema": "ppsguard.watch",
                "version": 1,
                "host": netns or socket.gethostname(),
                "observed_at": started,
                "stopped_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "events": watch.events,
                "alerts": [alert_record(a) for a in kept.values()],
            }
            record(store, "watch", document, netns=netns, registry=registry)
        raise typer.Exit(code)


def options_sources(options: object) -> list[str]:
    names = []
    for name in ("conntrack", "nflog", "listeners"):
        if getattr(options, name, False):
            names.append(name)
    return names
