"""`pps serve` in a real browser (Debian's chromium via Playwright), without the network lab:
hostile banners, process names and alert text stay text on every page; the token, the login
form and its cookie; the security headers. The store holds a real audit (the audit engine's
own report of observations, as `pps audit --json` prints it), recorded by `record_run`."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import subprocess
from pathlib import Path

from serve_helpers import IMG, PPS, SCRIPT, Desk, browser, free_port, watch_page

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
from ppsguard.report.audit_document import audit_document
from ppsguard.store import record_run
from ppsguard.store.engine import close_all

REGISTRY = """
version: 1
hosts:
  lab:
    provides:
      - {id: ssh, port: 22/tcp, from: anywhere, purpose: "admin <b>shell</b>", owner: ops}
      - {id: http, port: 80/tcp, from: anywhere}
"""
LAB = ipaddress.ip_address("198.18.0.1")
HOSTILE = SCRIPT + IMG


def _listener(port: int, name: str = "python3", exe: str = "/usr/bin/python3") -> Listener:
    ip = ipaddress.ip_address("0.0.0.0")
    return Listener(Protocol.TCP, Family.of(ip), ip, port, exposure_of(ip), name, exe)


def _store(tmp_path: Path) -> tuple[str, Path]:
    registry = tmp_path / "lab.yaml"
    registry.write_text(REGISTRY, encoding="utf-8")
    baseline, _ = baseline_for(parse_registry(REGISTRY, str(registry)), "lab")
    listeners = (
        _listener(22),
        _listener(80),
        _listener(1337, name=HOSTILE[:40], exe=f"/tmp/{SCRIPT}"),
        _listener(40000),
    )
    outside = OutsideView(
        Vantage.REMOTE,
        (LAB,),
        frozenset({(Protocol.TCP, p) for p in (22, 80, 1337)}),
        (
            Reach(Protocol.TCP, 22, LAB, ReachState.OPEN, "ssh", banner=f"SSH-2.0-{IMG}"),
            Reach(Protocol.TCP, 80, LAB, ReachState.OPEN, "http", banner=HOSTILE),
            Reach(Protocol.TCP, 1337, LAB, ReachState.OPEN, "unknown", banner=HOSTILE),
        ),
    )
    obs = Observations(
        "lab",
        dt.datetime.now(dt.UTC),
        listeners,
        outside,
        FirewallView(FirewallState.ENFORCED),
    )
    report = evaluate(obs, baseline, registry_file=str(registry), host="lab", netns=None)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    record_run(url, "audit", audit_document(report), registry=registry)
    close_all()
    return url, registry


def _assert_inert(page, seen) -> None:  # type: ignore[no-untyped-def]
    assert page.evaluate("typeof window.pwned") == "undefined"
    assert page.locator("img").count() == 0
    sources = page.eval_on_selector_all("script", "nodes => nodes.map(n => n.src)")
    assert all("/static/" in s for s in sources), sources  # only the desk's own files
    assert seen["dialogs"] == [] and seen["errors"] == [], seen


def test_hostile_text_stays_text_on_every_page(tmp_path: Path) -> None:
    url, registry = _store(tmp_path)
    alerts = tmp_path / "alerts.jsonl"
    alerts.write_text("", encoding="utf-8")
    with (
        Desk(
            url, "--registry", str(registry), "--alerts", f"{socket.gethostname()}={alerts}"
        ) as desk,
        browser() as b,
    ):
        page = b.new_page(viewport={"width": 1300, "height": 900})
        seen = watch_page(page)
        page.goto(desk.url + "/")
        assert page.locator("tr.host").count() == 1
        page.click("a.host-link")
        page.wait_for_selector("body[data-building=drawn]", timeout=10_000)
        assert page.get_attribute("#building", "data-lit") == "4"
        assert HOSTILE in page.inner_text("table.doors")
        page.click("a.door-link[data-port='1337']")
        page.wait_for_selector("#door-card[data-port='1337']", timeout=5000)
        card = page.inner_text("#door-card")
        assert HOSTILE in card  # the banner
        assert SCRIPT in page.inner_text("#door-card .process")  # the process name
        page.click("a.door-link[data-port='22']")
        page.wait_for_selector("#door-card[data-port='22']", timeout=5000)
        assert page.inner_text("#door-card .entry-purpose") == "admin <b>shell</b>"
        assert page.locator("#door-card b:text('shell')").count() == 0
        _assert_inert(page, seen)
        live = b.new_page()
        seen_live = watch_page(live)
        live.goto(desk.url + "/live")
        live.wait_for_selector("body[data-live=open]", timeout=10_000)
        record = {
            "type": "alert",
            "id": "k#0",
            "key": "k",
            "kind": "scan",
            "severity": "high",
            "message": HOSTILE,
            "last_seen": 1.0,
            "remote": "198.18.0.66",
            "ports": [22],
            "proto": "tcp",
            "entry": {"id": HOSTILE, "file": "x.yaml", "line": 1},
        }
        with alerts.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        live.wait_for_selector("tr.alert.kind-scan", timeout=5000)
        assert HOSTILE in live.inner_text("tr.alert .message")
        event = {
            "type": "event",
            "ts": 2.0,
            "kind": "opened",
            "proto": "tcp",
            "id.orig_h": "198.18.0.66",
            "id.orig_p": 40000,
            "id.resp_h": "198.18.0.1",
            "id.resp_p": 22,
            "direction": "inbound",
            "process": HOSTILE,
        }
        with alerts.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(event) + "\n")
        live.wait_for_selector("tr.event.kind-opened", timeout=5000)
        assert HOSTILE in live.inner_text("tr.event .message")
        page.wait_for_selector("#building[data-knocks]", timeout=5000)  # the door blinked
        _assert_inert(live, seen_live)
        reports = page.request.get(desk.url + "/reports")
        assert reports.status == 200
        run_html = page.request.get(desk.url + "/reports/1.html")
        assert run_html.status == 200 and HOSTILE not in run_html.text()
        assert "&lt;script&gt;" in run_html.text()
        markdown = page.request.get(desk.url + "/reports/1.md")
        assert markdown.status == 200 and markdown.text().startswith("# ppsguard audit of lab")
        table = page.request.get(desk.url + "/reports/1.csv")
        assert table.status == 200
        assert "attachment" in table.headers["content-disposition"]
        header, *rows = table.text().splitlines()
        assert header.startswith("direction,") and any(",22,TCP," in r for r in rows), rows


def test_token_login_cookie_and_headers(tmp_path: Path) -> None:
    url, _ = _store(tmp_path)
    token_file = tmp_path / "token"
    token_file.write_text("correct-horse-battery-staple-42\n", encoding="utf-8")
    with Desk(url, "--token-file", str(token_file)) as desk, browser() as b:
        context = b.new_context()
        page = context.new_page()
        seen = watch_page(page)
        first = page.goto(desk.url + "/")
        assert first is not None and first.status == 401
        bearer = context.request.get(
            desk.url + "/", headers={"Authorization": "Bearer correct-horse-battery-staple-42"}
        )
        assert bearer.status == 200
        headers = bearer.headers
        assert "script-src 'self'" in headers["content-security-policy"]
        assert "unsafe-inline" not in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"
        wrong = context.request.get(desk.url + "/", headers={"Authorization": "Bearer nope"})
        assert wrong.status == 401
        page.goto(desk.url + "/login")
        page.fill("input[name=token]", "wrong-token-wrong-token")
        page.click("button[type=submit]")
        assert "wrong token" in page.inner_text("main")
        page.fill("input[name=token]", "correct-horse-battery-staple-42")
        page.click("button[type=submit]")
        page.wait_for_selector("tr.host", timeout=5000)
        cookies = {c["name"]: c for c in context.cookies()}
        session = cookies["pps_session"]
        assert session["httpOnly"] is True and session["sameSite"] == "Strict"
        assert "correct-horse" not in session["value"]  # an HMAC, never the token
        assert cookies["pps_csrf"]["httpOnly"] is True
        assert page.goto(desk.url + "/host/1").status == 200  # type: ignore[union-attr]
        forged = context.request.post(desk.url + "/login", form={"token": "x", "csrf": "forged"})
        assert forged.status == 403
        assert seen["errors"] == []


def test_a_non_loopback_address_without_a_token_refuses_to_start(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            *PPS,
            "serve",
            "--store",
            f"sqlite:///{tmp_path / 's.db'}",
            "--listen",
            f"198.18.0.1:{free_port()}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--token-file" in lines[0], done.stderr


def test_tls_with_a_token_sets_a_secure_cookie(tmp_path: Path) -> None:
    import re
    import ssl
    import urllib.error
    import urllib.parse
    import urllib.request

    from ppsguard.testing.certificates import self_signed_pem

    url, _ = _store(tmp_path)
    cert, key = self_signed_pem(
        tmp_path, common_name="localhost", expired=False, sans=["localhost"]
    )
    token_file = tmp_path / "token"
    token_file.write_text("tls-token-0123456789abcdef\n", encoding="utf-8")
    port = free_port()
    extra = ("--token-file", str(token_file), "--tls-cert", str(cert), "--tls-key", str(key))
    context = ssl.create_default_context(cafile=str(cert))

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *_args, **_kwargs):  # type: ignore[no-untyped-def]
            return None

    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), NoRedirect)

    def fetch(request: urllib.request.Request | str):  # type: ignore[no-untyped-def]
        try:
            with opener.open(request, timeout=10) as answer:
                return answer.status, answer.headers, answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.headers, error.read().decode()

    with Desk(url, *extra, listen=f"127.0.0.1:{port}"):
        base = f"https://localhost:{port}"
        assert fetch(base + "/")[0] == 401
        auth = {"Authorization": "Bearer tls-token-0123456789abcdef"}
        assert fetch(urllib.request.Request(base + "/", headers=auth))[0] == 200
        _, headers, page = fetch(base + "/login")
        csrf_cookie = next(c for c in headers.get_all("set-cookie") if c.startswith("pps_csrf="))
        assert "Secure" in csrf_cookie
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf is not None
        form = urllib.parse.urlencode(
            {"csrf": csrf.group(1), "token": "tls-token-0123456789abcdef"}
        ).encode()
        login = urllib.request.Request(
            base + "/login",
            data=form,
            headers={"Origin": base, "Cookie": csrf_cookie.split(";")[0]},
        )
        status, headers, _ = fetch(login)
        assert status == 303
        session = next(c for c in headers.get_all("set-cookie") if c.startswith("pps_session="))
        flags = {f.strip() for f in session.split(";")}
        assert {"HttpOnly", "SameSite=Strict", "Secure"} <= flags


def test_a_busy_address_is_one_line_and_ctrl_c_ends_open_streams(tmp_path: Path) -> None:
    import signal
    import urllib.request

    url, _ = _store(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        done = subprocess.run(
            [*PPS, "serve", "--store", url, "--listen", f"127.0.0.1:{taken}"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 3, done.stderr
    assert done.stderr.count("\n") == 1 and "cannot listen on 127.0.0.1" in done.stderr
    desk = Desk(url)
    try:
        stream = urllib.request.urlopen(desk.url + "/live/events", timeout=10)
        assert stream.readline() == b"retry: 1000\n"
        desk.process.send_signal(signal.SIGINT)
        assert desk.process.wait(timeout=15) == 130
        stream.close()
    finally:
        desk.stop()
    assert desk.stderr.strip().splitlines() == [desk.stderr.strip()], desk.stderr  # no traceback
