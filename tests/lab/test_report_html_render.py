"""The HTML report in a real browser (Debian's chromium, headless, driven by Playwright).

A screenshot is produced; the lit windows are exactly the open doors; banners carrying HTML
or script render as text and never run. Never `playwright install`: the system chromium is used.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
from pathlib import Path

import pytest

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
from ppsguard.model.net import Family, Protocol
from ppsguard.model.sockets import exposure_of
from ppsguard.registry.load import parse_registry
from ppsguard.report.html import render_html
from ppsguard.testing.browser import ARGS, CHROMIUM

SCRIPT = "<script>window.pwned=1</script>"
IMG = '<img src=x onerror="window.pwned=2">'
REGISTRY = """
version: 1
hosts:
  lab:
    denies: [{id: mysql, service: mysql}]
    provides:
      - {id: ssh, port: 22/tcp, from: anywhere}
      - {id: http, port: 80/tcp, from: anywhere}
      - {id: redis, port: 6379/tcp, from: anywhere, bind: loopback}
"""
LAB = ipaddress.ip_address("198.18.0.1")


def _need_chromium() -> None:
    if shutil.which(CHROMIUM) is None or not os.access(CHROMIUM, os.X_OK):
        if os.environ.get("PPSGUARD_REQUIRE_LAB", "") not in ("", "0"):
            pytest.fail("chromium is required (deps/debian-packages.txt)", pytrace=False)
        pytest.skip("Debian's chromium is not installed")


def _listener(port: int, address: str = "0.0.0.0", exe: str = "/usr/bin/python3") -> Listener:
    ip = ipaddress.ip_address(address)
    return Listener(Protocol.TCP, Family.of(ip), ip, port, exposure_of(ip), "python3", exe)


def _report():  # type: ignore[no-untyped-def]
    baseline, _ = baseline_for(parse_registry(REGISTRY, "lab.yaml"), "lab")
    listeners = tuple(
        [
            _listener(22),
            _listener(80),
            _listener(3306),
            _listener(6379),
            _listener(1337, exe=f"/tmp/{SCRIPT}"),
            _listener(23),
            _listener(40000, "::1"),
            _listener(65535),
        ]
    )
    outside = OutsideView(
        Vantage.REMOTE,
        (LAB,),
        frozenset({(Protocol.TCP, p) for p in (22, 80, 3306, 1337, 23, 8080)}),
        (
            Reach(Protocol.TCP, 22, LAB, ReachState.OPEN, "ssh", banner=f"SSH-2.0-{IMG}"),
            Reach(Protocol.TCP, 80, LAB, ReachState.OPEN, "http", banner=SCRIPT),
            Reach(Protocol.TCP, 8080, LAB, ReachState.OPEN, "http-proxy", banner=IMG + SCRIPT),
        ),
    )
    obs = Observations(
        "lab",
        dt.datetime(2026, 6, 1, tzinfo=dt.UTC),
        listeners,
        outside,
        FirewallView(FirewallState.ENFORCED),
    )
    return evaluate(obs, baseline, registry_file="lab.yaml", host="lab", netns=None)


def test_html_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    _need_chromium()
    from playwright.sync_api import sync_playwright

    report = _report()
    page_file = tmp_path / "audit.html"
    page_file.write_text(render_html(report), encoding="utf-8")
    shot = tmp_path / "audit.png"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            requests: list[str] = []
            page.on("request", lambda request: requests.append(request.url))
            page.goto(page_file.as_uri())
            page.screenshot(path=str(shot), full_page=True)
            lit = page.locator(".building .lit")
            assert lit.count() == len(report.doors) == 9
            assert page.evaluate("typeof window.pwned") == "undefined"
            assert page.locator("script").count() == 0
            assert page.locator("img").count() == 0
            body = page.inner_text("body")
            assert SCRIPT in body and IMG in body  # shown as text
            first = lit.first
            first.focus()
            label = first.get_attribute("aria-label") or ""
            assert label.startswith("tcp/") and "service:" in label
            letters = {lit.nth(i).inner_text() for i in range(lit.count())}
            assert letters <= {"D", "U", "R", "B"} and {"U", "R", "B", "D"} <= letters
            assert all(url.startswith("file:") for url in requests)
        finally:
            browser.close()
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
    keep = os.environ.get("PPSGUARD_KEEP_SCREENSHOT")
    if keep:
        Path(keep).write_bytes(data)
