"""`pps serve` with real lab hosts, in a real browser: hosts audited by the real `pps audit
--store` appear on the fleet page; a click shows the building with the right number of lit doors
and a click on a door its card with the registry entry; an nmap scan of a host that `pps watch`
watches makes a scan alert appear on the open page (and on the building); the explain form gives
the verdict of `pps policy explain`; a desk on a lab address asks for its token. Screenshots of
the fleet page and the building are written as artifacts."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from serve_helpers import PPS, Desk, browser, free_port, need_chromium, screenshot, watch_page
from watch_helpers import Watcher

from ppsguard.lab.hosts import HostSpec

pytestmark = pytest.mark.lab
REGISTRY = """
version: 1
hosts:
  target:
    provides:
      - {id: web, port: 8080/tcp, from: anywhere, purpose: "the team's web front", owner: web-team}
      - {id: admin, port: 2222/tcp, from: [198.18.0.10], purpose: admin door, owner: ops}
    denies:
      - {id: mysql, port: 3306/tcp, from: anywhere, log: true}
"""


def _pps(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PPS, *args], capture_output=True, text=True, timeout=300, check=False)


def _audit(store: str, netns: str, *extra: str) -> dict[str, Any]:
    done = _pps("audit", *extra, "--netns", netns, "--no-scan", "--json", "--store", store)
    assert done.returncode in (0, 1), done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_fleet_building_card_live_and_explain(lab_factory: Any, tmp_path: Path) -> None:
    need_chromium()
    lab = lab_factory(
        [
            HostSpec("target", ipv4="198.18.0.2"),
            HostSpec("scanner", ipv4="198.18.0.66"),
        ]
    )
    target, scanner = lab["target"], lab["scanner"]
    for port in (8080, 2222, 9090, 3306):
        target.listen(port)
    scanner.listen(7000)
    registry = tmp_path / "registry.yaml"
    registry.write_text(REGISTRY, encoding="utf-8")
    store = f"sqlite:///{tmp_path / 'store.db'}"
    audited = _audit(store, target.netns, str(registry), "--host", "target")
    _audit(store, scanner.netns)
    lit = len(audited["doors"])
    assert lit >= 4
    alerts = tmp_path / "alerts.jsonl"
    alerts.write_text("", encoding="utf-8")
    label = f"{socket.gethostname()}/{target.netns}"
    extra = ("--registry", str(registry), "--alerts", f"{label}={alerts}")
    with (
        Watcher(target, None, "--alerts-to", f"jsonl:{alerts}"),
        Desk(store, *extra) as desk,
        browser() as b,
    ):
        page = b.new_page(viewport={"width": 1400, "height": 1000})
        seen = watch_page(page)
        page.goto(desk.url + "/")
        rows = page.locator("tr.host")
        assert rows.count() == 2
        names = {rows.nth(i).get_attribute("data-host") for i in range(2)}
        assert names == {label, f"{socket.gethostname()}/{scanner.netns}"}
        screenshot(page, tmp_path, "dashboard-fleet.png")
        scanner_label = f"{socket.gethostname()}/{scanner.netns}"
        page.fill("input[name=q]", "scanner")  # filter as you type (htmx)
        expect(page.locator("tr.host")).to_have_count(1)
        assert page.get_attribute("tr.host", "data-host") == scanner_label
        page.fill("input[name=q]", "")
        expect(page.locator("tr.host")).to_have_count(2)
        for first, way, then in ((scanner_label, "asc", "desc"), (label, "desc", "asc")):
            page.click("th a:text('open doors')")  # sort by open doors
            expect(page).to_have_url(re.compile(f"sort=doors&dir={way}"))
            link = page.locator("th a:text('open doors')")  # the table swapped in (htmx)
            expect(link).to_have_attribute("href", re.compile(f"dir={then}"))
            expect(page.locator("tr.host").first).to_have_attribute("data-host", first)
        page.click(f"tr.host[data-host='{label}'] a.host-link")
        page.wait_for_selector("body[data-building=drawn]", timeout=10_000)
        assert page.get_attribute("#building", "data-lit") == str(lit)
        screenshot(page, tmp_path, "dashboard-building.png")
        box = page.locator("#building").bounding_box()
        assert box is not None
        # The door of 8080 on floor 7 (8080 // 1024), at column 8080 % 1024: hover and click it.
        page.mouse.move(*_door_point(box, 8080))
        assert "tcp/8080" in page.inner_text("#tip")
        page.mouse.click(*_door_point(box, 8080))
        page.wait_for_selector("#door-card[data-port='8080']", timeout=5000)
        assert page.inner_text("#door-card .entry-id") == "web"
        assert page.inner_text("#door-card .entry-purpose") == "the team's web front"
        assert page.inner_text("#door-card .entry-owner") == "web-team"
        assert page.inner_text("#door-card .entry-where").endswith(f"{registry.name}:6")
        live = b.new_page(viewport={"width": 1400, "height": 800})
        live.goto(desk.url + "/live")
        live.wait_for_selector("body[data-live=open]", timeout=10_000)
        # the building follows the stream too: a knock before it connected would be missed
        page.wait_for_selector("#building[data-live-state=open]", timeout=10_000)
        nmap = scanner.run(
            ["nmap", "-sS", "-n", "-Pn", "-T4", "-p", "1-200", str(target.ipv4)], check=False
        )
        assert nmap.returncode == 0, nmap.stderr
        live.wait_for_selector("tr.alert.kind-scan", timeout=2000)
        assert "198.18.0.66" in live.inner_text("tr.alert.kind-scan")
        page.wait_for_selector("#building[data-knocks]", timeout=2000)  # the doors blinked
        page.goto(desk.url + "/registry?host=target")
        for source, port in (
            ("198.18.0.50", "8080/tcp"),
            ("198.18.0.50", "2222/tcp"),
            ("198.18.0.10", "2222/tcp"),
            ("198.18.0.50", "3306/tcp"),
        ):
            page.fill("input[name=from]", source)
            page.fill("input[name=to_port]", port)
            page.click("#explain button[type=submit]")
            page.wait_for_selector(f"#verdict [data-asked='{source} {port}']", timeout=5000)
            cli = _pps(
                "policy",
                "explain",
                str(registry),
                "--host",
                "target",
                "--from",
                source,
                "--to-port",
                port,
                "--json",
            )
            assert cli.returncode == 0, cli.stderr
            want = json.loads(cli.stdout)
            assert page.inner_text("#explain-verdict") == want["verdict"].upper()
            assert page.inner_text("#explain-entry") == want["entry"]["id"]
        assert seen["errors"] == [], seen["errors"]


def _door_point(box: dict[str, float], port: int) -> tuple[float, float]:
    """Where the building draws `port` at zoom 1 (static/building.js's layout)."""
    floors, ground, gap = 64, 3, 0.25
    world_h = (floors - 1) + gap + ground
    floor = port // 1024
    top = (floors - 1) + gap if floor == 0 else (floors - 1) - floor
    height = ground if floor == 0 else 0.86
    x = box["x"] + (port % 1024 + 0.5) / 1024 * box["width"]
    y = box["y"] + (top + height / 2) / world_h * box["height"]
    return x, y


def test_a_desk_on_a_lab_address_wants_its_token(lab_factory: Any, tmp_path: Path) -> None:
    lab = lab_factory([HostSpec("desk", ipv4="198.18.0.2"), HostSpec("guard", ipv4="198.18.0.9")])
    store = f"sqlite:///{tmp_path / 'store.db'}"
    _audit(store, lab["desk"].netns)
    port = free_port()
    refused = lab["desk"].run(
        [*PPS, "serve", "--store", store, "--listen", f"198.18.0.2:{port}"], check=False
    )
    assert refused.returncode == 2 and "--token-file" in refused.stderr
    token = tmp_path / "token"
    token.write_text("lab-token-0123456789abcdef\n", encoding="utf-8")
    listen = f"198.18.0.2:{port}"
    with Desk(store, "--token-file", str(token), listen=listen, netns=lab["desk"].netns):
        probe = lab["guard"].run([sys.executable, "-c", _PROBE, f"http://{listen}"], check=False)
    assert probe.returncode == 0, probe.stderr
    result = json.loads(probe.stdout)
    assert result["without"] == 401
    assert result["bearer"] == 200
    assert result["login"] == 303
    flags = [f.strip().lower() for f in result["cookie"].split(";")]
    assert "httponly" in flags and "samesite=strict" in flags
    assert result["with_cookie"] == 200


_PROBE = r"""
import http.cookiejar, json, re, sys, urllib.error, urllib.parse, urllib.request
base = sys.argv[1]
jar = http.cookiejar.CookieJar()
class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)
def status(req):
    try:
        with opener.open(req, timeout=10) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()
out = {}
out["without"] = status(base + "/")[0]
auth = {"Authorization": "Bearer lab-token-0123456789abcdef"}
bearer = urllib.request.Request(base + "/", headers=auth)
out["bearer"] = status(bearer)[0]
_, _, page = status(base + "/login")
csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
form = urllib.parse.urlencode({"csrf": csrf, "token": "lab-token-0123456789abcdef"}).encode()
login = urllib.request.Request(base + "/login", data=form, headers={"Origin": base})
code, headers, _ = status(login)
out["login"] = code
out["cookie"] = next(c for c in headers.get_all("set-cookie") if c.startswith("pps_session="))
out["with_cookie"] = status(base + "/")[0]
print(json.dumps(out))
"""
