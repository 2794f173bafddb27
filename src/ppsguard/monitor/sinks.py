"""Where alerts go: a JSONL file, syslog (RFC 5424), a webhook. I/O edge.

    sink = open_sink("jsonl:/var/log/pps-alerts.jsonl" | "syslog" | "syslog:unix:/dev/log"
                     | "syslog:udp:127.0.0.1:514" | "webhook:http://127.0.0.1:9000/hook")

A failing sink never stops the watch: every sink counts its failures, and the webhook sends from
its own thread with a bounded queue, a timeout per request and retries with backoff (each alert
carries an `id` so the receiver can drop a repeat). The terminal view lives in `monitor.view`.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from ppsguard.errors import UsageError
from ppsguard.model.events import Alert
from ppsguard.model.findings import Severity
from ppsguard.monitor.records import alert_record

# RFC 5424 severities: 2 critical, 3 error, 4 warning, 5 notice, 6 informational.
_SYSLOG_SEVERITY = {
    Severity.CRITICAL: 2,
    Severity.HIGH: 3,
    Severity.MEDIUM: 4,
    Severity.LOW: 5,
    Severity.INFO: 6,
}
_FACILITY_SECURITY = 13  # "log audit"; RFC 5424 facility 13
MAX_QUEUE = 10_000


class Sink(Protocol):
    name: str
    failures: int

    def send(self, alert: Alert) -> None: ...

    def close(self) -> None: ...


class JsonlSink:
    """Appends one JSON line per alert announcement."""

    def __init__(self, path: str) -> None:
        self.name = f"jsonl:{path}"
        self.failures = 0
        try:
            self.handle = Path(path).open("a", encoding="utf-8")  # noqa: SIM115 -- lives as long as the sink
        except OSError as exc:
            raise UsageError(f"cannot open alert file {path}: {exc.strerror}", token=path) from exc

    def send(self, alert: Alert) -> None:
        try:
            self.handle.write(json.dumps(alert_record(alert), ensure_ascii=True) + "\n")
            self.handle.flush()
        except OSError:
            self.failures += 1

    def close(self) -> None:
        self.handle.close()


def syslog_message(alert: Alert, *, hostname: str, now: float, pid: int) -> bytes:
    """One RFC 5424 message: <PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD] MSG."""
    priority = _FACILITY_SECURITY * 8 + _SYSLOG_SEVERITY[alert.severity]
    stamp = datetime.fromtimestamp(now, tz=UTC).isoformat(timespec="milliseconds")
    stamp = stamp.replace("+00:00", "Z")
    entry = alert.entry.id if alert.entry else "-"

    def param(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")

    data = (
        f'[ppsguard@32473 kind="{param(alert.kind)}" key="{param(alert.key)}" '
        f'entry="{param(entry)}" count="{alert.count}"]'
    )
    text = alert.message.encode("ascii", "backslashreplace").decode("ascii")
    text = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
    line = f"<{priority}>1 {stamp} {hostname or '-'} pps-watch {pid} {alert.kind} {data} {text}"
    return line.encode("utf-8")


class SyslogSink:
    """RFC 5424 to a unix datagram socket (default /dev/log) or a UDP address."""

    def __init__(self, target: str) -> None:
        self.name = f"syslog:{target}"
        self.failures = 0
        self.hostname = socket.gethostname()
        if target.startswith("udp:"):
            host, _, port = target[4:].rpartition(":")
            self.address: str | tuple[str, int] = (host.strip("[]"), int(port))
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            self.sock = socket.socket(family, socket.SOCK_DGRAM)
        else:
            self.address = target[5:] if target.startswith("unix:") else (target or "/dev/log")
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    def send(self, alert: Alert) -> None:
        try:
            message = syslog_message(
                alert, hostname=self.hostname, now=time.time(), pid=os.getpid()
            )
            self.sock.sendto(message, self.address)
        except OSError:
            self.failures += 1

    def close(self) -> None:
        self.sock.close()


class WebhookSink:
    """POSTs each alert as JSON from a background thread, retrying with backoff."""

    def __init__(self, url: str, *, timeout: float = 3.0, retries: int = 5) -> None:
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"a webhook needs an http:// or https:// URL, got {url!r}", token=url)
        self.name = f"webhook:{url}"
        self.url = url
        self.timeout = timeout
        self.retries = retries
        self.failures = 0
        self.delivered = 0
        self.dropped = 0
        self.queue: queue.Queue[dict[str, Any] | None] = queue.Queue(MAX_QUEUE)
        self.thread = threading.Thread(target=self._run, name="pps-webhook", daemon=True)
        self.thread.start()

    def send(self, alert: Alert) -> None:
        try:
            self.queue.put_nowait(alert_record(alert))
        except queue.Full:
            self.dropped += 1

    def _post(self, record: dict[str, Any]) -> bool:
        body = json.dumps(record).encode("utf-8")
        request = urllib.request.Request(  # noqa: S310 -- the URL scheme is checked in __init__
            self.url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                status: int = response.status
                return 200 <= status < 300
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def _run(self) -> None:
        while True:
            record = self.queue.get()
            if record is None:
                return
            for attempt in range(self.retries + 1):
                if self._post(record):
                    self.delivered += 1
                    break
                self.failures += 1
                time.sleep(min(0.2 * 2**attempt, 5.0))
            else:
                self.dropped += 1

    def close(self, wait: float = 5.0) -> None:
        self.queue.put(None)
        self.thread.join(wait)


def open_sink(spec: str) -> Sink:
    kind, _, rest = spec.partition(":")
    if kind == "jsonl" and rest:
        return JsonlSink(rest)
    if kind == "syslog":
        return SyslogSink(rest)
    if kind == "webhook" and rest:
        return WebhookSink(rest)
    raise UsageError(
        f"unknown alert sink {spec!r}: use jsonl:PATH, syslog[:unix:PATH|:udp:HOST:PORT] "
        "or webhook:URL",
        token=spec,
    )
