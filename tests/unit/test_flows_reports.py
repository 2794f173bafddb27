"""`pps flows audit --markdown/--html`: real reports of a real capture and of a Zeek log with
hostile uids, escaped for Markdown, HTML and the terminal, and written atomically."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

from test_flows_audit import SEED, capture

from ppsguard.flows.audit import audit_flows, document
from ppsguard.flows.inputs import read_flows
from ppsguard.registry.load import load_registry
from ppsguard.report.flows_html import render_flows_html
from ppsguard.report.flows_markdown import render_flows_markdown

HOSTILE = "<script>alert(1)</script>\x1b[2J\x1b]8;;http://198.18.0.9/\x07|`x`"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ppsguard", "flows", "audit", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_reports_of_the_seed_building_capture(tmp_path: Path) -> None:
    path = capture(tmp_path)
    md, page = tmp_path / "audit.md", tmp_path / "audit.html"
    done = run(str(SEED), str(path), "--markdown", str(md), "--html", str(page), "--json")
    assert done.returncode == 1, done.stderr
    doc = json.loads(done.stdout)
    text = md.read_text()
    assert text.startswith("# ppsguard flows audit of building")
    assert "| high | unauthorized-peer | pop3 | 1 |" in text
    assert "198.18.0.1:1337/tcp answered, but no entry provides it" in text
    assert "198.18.0.66" in text  # the scanner among the scan finding's peers
    assert "| pop3 | 1 | 1 | 1 |" in text
    for finding in doc["findings"]:
        for uid in finding["examples"]:
            assert uid in text and uid in page.read_text()
    body = page.read_text()
    assert body.startswith("<!DOCTYPE html>") and "<script" not in body
    assert "unauthorized-peer" in body and "undocumented-service" in body

    class Cells(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.text: list[str] = []

        def handle_data(self, data: str) -> None:
            self.text.append(data)

    cells = Cells()
    cells.feed(body)
    assert "pop3-others" in "".join(cells.text)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audit.html", "audit.md", "building.pcap"]


def hostile_log(tmp_path: Path) -> Path:
    """A Zeek JSON conn.log whose uids carry markup and terminal escapes; the flow is an
    outsider's established pop3 connection (a finding with the uid among its examples)."""
    log = tmp_path / "conn.json"
    record = {
        "ts": 10.0, "uid": HOSTILE, "id.orig_h": "198.18.0.50", "id.orig_p": 40002,
        "id.resp_h": "198.18.0.1", "id.resp_p": 110, "proto": "tcp", "conn_state": "SF",
        "orig_pkts": 4, "resp_pkts": 3,
    }  # fmt: skip
    log.write_text(json.dumps(record) + "\n")
    return log


def test_hostile_uids_are_inert(tmp_path: Path) -> None:
    doc = document(audit_flows(load_registry(SEED), read_flows(hostile_log(tmp_path)), "building"))
    examples = [uid for f in doc["findings"] for uid in f["examples"]]  # type: ignore[attr-defined]
    assert HOSTILE in examples  # the engine keeps the text; the renderers make it inert
    text = render_flows_markdown(doc)
    assert "\x1b" not in text and "\x07" not in text
    assert "\\x1b[2J" in text
    # markup only inside fenced code blocks (shown as text by every Markdown renderer)
    outside = re.sub(r"(?ms)^(`{3,})text\n.*?^\1$", "", text)
    assert "<script>" not in outside and "<script>" in text
    page = render_flows_html(doc)
    assert "\x1b" not in page and "\x07" not in page and "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;\\x1b[2J" in page
    hostile_host = render_flows_markdown({**doc, "host": "<b>x</b>\x1b[31m"})
    assert "&lt;b&gt;x&lt;/b&gt;\\x1b[31m" in hostile_host.splitlines()[0]


def test_report_write_failure_keeps_the_old_file_and_says_so(tmp_path: Path) -> None:
    log = hostile_log(tmp_path)
    md = tmp_path / "audit.md"
    md.write_text("previous report\n")
    missing = tmp_path / "no-such-folder" / "audit.html"
    done = run(str(SEED), str(log), "--markdown", str(md), "--html", str(missing))
    assert done.returncode == 2, done.stderr
    assert "no-such-folder" in done.stderr and "Traceback" not in done.stderr
    assert md.read_text().startswith("# ppsguard flows audit of")  # the Markdown was written
    assert not missing.parent.exists()
    assert "\x1b" not in done.stdout  # the terminal view is sanitized too
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audit.md", "conn.json"]


def test_empty_audit_reports() -> None:
    doc = document(audit_flows(load_registry(SEED), iter(()), "building"))
    assert "No findings" in render_flows_markdown(doc)
    assert "No findings" in render_flows_html(doc)
