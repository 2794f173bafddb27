"""Alert sinks against real receivers on this machine: a unix syslog socket and a loopback
webhook that fails, then recovers (retries, no duplicates, the watch never blocked)."""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from ppsguard.errors import UsageError
from ppsguard.model.events import Alert, EntryRef
from ppsguard.model.findings import Severity
from ppsguard.monitor.sinks import JsonlSink, SyslogSink, WebhookSink, open_sink, syslog_message

RFC5424 = re.compile(
    r"^<(\d+)>1 (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (\S+) pps-watch (\d+) (\S+) "
    r"(\[ppsguard@32473 [^\]]*\]) (.*)$"
)


def alert(n: int = 0, message: str = "198.18.0.66 is scanning 198.18.0.2") -> Alert:
    return Alert(
        key=f"scan|198.18.0.{n}",
        kind="scan",
        severity=Severity.HIGH,
        message=message,
        first_seen=1.0,
        last_seen=2.0,
        remote=ipaddress.ip_address("198.18.0.66"),
        ports=[22, 80],
        entry=EntryRef("pop3", "seed.yaml", 20),
    )


def test_syslog_message_is_rfc5424_and_escapes_hostile_text() -> None:
    line = syslog_message(alert(message='evil\x1b[2J"]\n'), hostname="h", now=0.0, pid=7).decode()
    match = RFC5424.match(line)
    assert match is not None, line
    assert match.group(1) == str(13 * 8 + 3)
    assert "\x1b" not in line and "\n" not in line
    assert 'entry="pop3"' in match.group(6)


def test_syslog_sink_delivers_to_a_unix_socket(tmp_path: Path) -> None:
    path = tmp_path / "log.sock"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(path))
    receiver.settimeout(5)
    sink = SyslogSink(f"unix:{path}")
    sink.send(alert())
    data = receiver.recv(65536).decode()
    sink.close()
    receiver.close()
    assert RFC5424.match(data) and sink.failures == 0


def test_a_missing_syslog_socket_counts_failures_and_never_raises(tmp_path: Path) -> None:
    sink = SyslogSink(f"unix:{tmp_path / 'nobody-listens'}")
    sink.send(alert())
    sink.close()
    assert sink.failures == 1


class Hook(BaseHTTPRequestHandler):
    fail_first = 2
    calls = 0
    received: ClassVar[list[dict[str, object]]] = []
    lock = threading.Lock()
    gate = threading.Event()  # the receiver answers nothing until the test opens it

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Hook.gate.wait(60)
        with Hook.lock:
            Hook.calls += 1
            failing = Hook.calls <= Hook.fail_first
            if not failing:
                Hook.received.append(body)
        self.send_response(503 if failing else 200)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        return


def test_webhook_retries_through_failures_without_duplicates() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        # a sender that waited for the receiver would hang here: it answers nothing yet, and
        # the sink would wait for it up to its timeout (a bound, never a measure)
        sink = WebhookSink(f"http://127.0.0.1:{server.server_port}/hook", timeout=30.0)
        sending = threading.Thread(target=lambda: [sink.send(alert(n)) for n in range(3)])
        sending.start()
        sending.join(10)
        assert not sending.is_alive(), "send waited for the receiver"
        Hook.gate.set()
        sink.close(wait=30)
    finally:
        server.shutdown()
        server.server_close()
    ids = [r["id"] for r in Hook.received]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 3
    assert sink.failures == 2 and sink.delivered == 3 and sink.dropped == 0


def test_an_unreachable_webhook_drops_after_retries_and_never_raises() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sink = WebhookSink(f"http://127.0.0.1:{port}/", timeout=0.2, retries=1)
    sink.send(alert())
    sink.close(wait=10)
    assert sink.dropped == 1 and sink.delivered == 0


def test_jsonl_sink_and_bad_specs(tmp_path: Path) -> None:
    sink = JsonlSink(str(tmp_path / "alerts.jsonl"))
    sink.send(alert())
    sink.close()
    record = json.loads((tmp_path / "alerts.jsonl").read_text())
    assert record["type"] == "alert" and record["entry"]["id"] == "pop3"
    for bad in ("carrier-pigeon:x", "webhook:ftp://x", "jsonl:"):
        with pytest.raises(UsageError):
            open_sink(bad)
