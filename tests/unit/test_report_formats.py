"""Reports of one audit: Markdown, console, CSV (FedRAMP SSP 10-4 columns), HTML, building."""

from __future__ import annotations

import csv
import datetime as dt
import html.parser
import io
import ipaddress
import re
import sys

import pytest
from rich.console import Console

from ppsguard.audit import baseline_for, evaluate
from ppsguard.audit.views import (
    FirewallState,
    FirewallView,
    Listener,
    Observations,
    OutsideView,
    Reach,
    ReachState,
    Vantage,
)
from ppsguard.model.findings import AuditReport, Severity
from ppsguard.model.net import Family, Protocol
from ppsguard.model.sockets import exposure_of
from ppsguard.registry.load import parse_registry
from ppsguard.report.building import LETTERS
from ppsguard.report.console import print_report
from ppsguard.report.csvdoc import COLUMNS, render_csv
from ppsguard.report.html import render_html
from ppsguard.report.markdown import render_markdown

HOSTILE = "<script>window.pwned=1</script><img src=x onerror=window.pwned=2> | `x` [bold]"
REGISTRY = """
version: 1
hosts:
  lab:
    denies:
      - {id: mysql, service: mysql}
    provides:
      - id: http
        port: 80/tcp
        from: anywhere
        purpose: "=HYPERLINK(\\"x\\")"
        encrypted: false
        sensitivity: public
      - {id: redis, port: 6379/tcp, from: anywhere, bind: loopback}
"""
LAB = ipaddress.ip_address("198.18.0.1")


def _listener(port: int, address: str = "0.0.0.0", exe: str = "/usr/bin/python3") -> Listener:
    ip = ipaddress.ip_address(address)
    return Listener(Protocol.TCP, Family.of(ip), ip, port, exposure_of(ip), "python3", exe)


def sample_report() -> tuple[AuditReport, object]:
    registry = parse_registry(REGISTRY, "lab.yaml")
    baseline, _ = baseline_for(registry, "lab")
    listeners = (
        _listener(80),
        _listener(3306),
        _listener(6379),
        _listener(1337, exe=HOSTILE),
        _listener(23),
        _listener(50000, "::1"),
    )
    outside = OutsideView(
        Vantage.REMOTE,
        (LAB,),
        frozenset({(Protocol.TCP, p) for p in (80, 3306, 1337, 23, 8443)}),
        (
            Reach(Protocol.TCP, 80, LAB, ReachState.OPEN, "http", banner=HOSTILE),
            Reach(Protocol.TCP, 1337, LAB, ReachState.FILTERED),
            Reach(Protocol.TCP, 8443, LAB, ReachState.OPEN, "https-alt", banner=HOSTILE),
        ),
    )
    obs = Observations(
        "lab",
        dt.datetime(2026, 6, 1, tzinfo=dt.UTC),
        listeners,
        outside,
        FirewallView(FirewallState.ENFORCED),
    )
    report = evaluate(obs, baseline, registry_file="lab.yaml", host="lab", netns=None)
    return report, baseline


class _Collect(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_html_is_self_contained_escaped_and_lights_one_window_per_door() -> None:
    report, _ = sample_report()
    page = render_html(report)
    parser = _Collect()
    parser.feed(page)
    tags = [t for t, _ in parser.tags]
    assert "script" not in tags and "img" not in tags
    assert not any(
        (a.get("src") or a.get("href") or "").startswith(("http:", "https:", "//"))
        for _, a in parser.tags
    )
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in page
    lit = [a for t, a in parser.tags if t == "a" and "lit" in (a.get("class") or "")]
    assert len(lit) == len(report.doors) == 7  # 80 3306 6379 1337 23 50000 + 8443 from outside
    for attrs in lit:
        assert attrs.get("tabindex") == "0" and attrs.get("aria-label") and attrs.get("title")
    statuses = {d.port: d.status.value for d in report.doors}
    assert statuses[1337] == "undocumented" and statuses[23] == "risky"
    assert statuses[3306] == "blocked" and statuses[6379] == "risky"
    assert all(letter in page for letter in LETTERS.values())


def test_markdown_escapes_cells_and_fences_evidence() -> None:
    report, _ = sample_report()
    text = render_markdown(report)
    outside_fences = re.sub(r"(`{3,})text\n.*?\n\1", "", text, flags=re.S)
    assert "<script>" not in outside_fences and "<img" not in outside_fences
    assert "&lt;script&gt;" in outside_fences  # the process name, escaped in table cells
    assert "<script>" in text  # evidence keeps the raw text, inside fenced code
    assert "## Findings" in text and "unregistered-listener" in text


def test_console_prints_host_text_literally() -> None:
    report, _ = sample_report()
    buffer = io.StringIO()
    print_report(report, Console(file=buffer, width=200, color_system=None))
    out = buffer.getvalue()
    assert "[bold]" in out  # not eaten as markup
    assert "unregistered-listener" in out


def test_csv_has_fedramp_columns_and_neutralises_formulas() -> None:
    report, baseline = sample_report()
    rows = list(csv.DictReader(io.StringIO(render_csv(report, baseline))))  # type: ignore[arg-type]
    assert tuple(rows[0]) == COLUMNS
    http = next(r for r in rows if r["port"] == "80")
    assert http["purpose"].startswith("'=") and http["encrypted"] == "no"
    assert http["data sensitivity"] == "public" and http["protocol"] == "TCP"
    assert any(r["port"] == "1337" and r["purpose"].startswith("TODO") for r in rows)


def test_json_document_has_the_promised_keys() -> None:
    report, _ = sample_report()
    from ppsguard.report.audit_document import audit_document

    doc = audit_document(report, Severity.MEDIUM)
    assert set(doc) >= {"schema", "version", "host", "observed_at", "findings", "summary"}
    keys = {"id", "type", "severity", "protocol", "port", "address", "process", "entry"}
    assert all(keys | {"evidence", "remedy"} <= set(f) for f in doc["findings"])
    assert doc["summary"]["failing"] == len(report.failing(Severity.MEDIUM))


def test_reports_show_control_characters_escaped(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process name and banner with ESC/OSC sequences: no ESC byte in the terminal report
    (Rich and plain), the Markdown, or the CSV; the markup prints literally."""
    hostile = "a\x1b[8m\x1b]0;PWNED\x07[link=http://x]\u202e"
    monkeypatch.setattr(sys.modules[__name__], "HOSTILE", hostile)
    report, baseline = sample_report()
    for fancy in (True, False):
        buffer = io.StringIO()
        print_report(report, Console(file=buffer, width=200, color_system=None), fancy=fancy)
        out = buffer.getvalue()
        assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
        assert "a\\x1b[8m\\x1b]0;PWNED\\x07[link=http://x]" in out
    markdown = render_markdown(report)
    assert "\x1b" not in markdown and "\\x1b[8m" in markdown
    assert "\x1b" not in render_csv(report, baseline)  # type: ignore[arg-type]
