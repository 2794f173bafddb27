"""Helpers for the `pps serve` tests (no tests here): a real desk process, a real browser.

`Desk(store, ...)` starts `pps serve` on a free loopback port (or inside a lab namespace) and
stops it with SIGTERM; `browser()` launches Debian's chromium through Playwright (never a
downloaded browser) and fails, not skips, when it is missing under PPSGUARD_REQUIRE_LAB=1.
Screenshots go to the test's folder and, when PPSGUARD_ARTIFACTS names a folder, there too.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from ppsguard.testing.browser import ARGS, CHROMIUM

PPS = [sys.executable, "-m", "ppsguard"]
SCRIPT = "<script>window.pwned=1</script>"
IMG = '"><img src=x onerror="window.pwned=2">'


def need_chromium() -> None:
    if shutil.which(CHROMIUM) is None or not os.access(CHROMIUM, os.X_OK):
        if os.environ.get("PPSGUARD_REQUIRE_LAB", "") not in ("", "0"):
            pytest.fail("chromium is required (deps/debian-packages.txt)", pytrace=False)
        pytest.skip("Debian's chromium is not installed")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Desk:
    """`pps serve` as its own process; `url` is where it answers."""

    def __init__(
        self,
        store: str,
        *extra: str,
        listen: str | None = None,
        netns: str | None = None,
    ) -> None:
        self.listen = listen or f"127.0.0.1:{free_port()}"
        argv = [*PPS, "serve", "--store", store, "--listen", self.listen, *extra]
        if netns is not None:
            argv = ["ip", "netns", "exec", netns, *argv]
        self.netns = netns
        self.log = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 -- closed in stop()
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=self.log, text=True)
        host, _, port = self.listen.rpartition(":")
        self.url = f"http://{host}:{port}"
        self.stderr = ""
        self._wait(host, int(port))

    def _wait(self, host: str, port: int) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if "the desk is at" in self._peek():
                return
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"pps serve did not start: {self.stderr}")

    def _peek(self) -> str:
        self.log.seek(0)
        self.stderr = self.log.read()
        return self.stderr

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._peek()
        self.log.close()

    def __enter__(self) -> Desk:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


@contextmanager
def browser() -> Iterator[Any]:
    """A headless Debian chromium (Playwright's sync API)."""
    need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield launched
        finally:
            launched.close()


def watch_page(page: Any) -> dict[str, list[str]]:
    """Collect the page's console errors, failed requests and requests to other origins."""
    seen: dict[str, list[str]] = {"errors": [], "requests": [], "dialogs": []}
    page.on("pageerror", lambda exc: seen["errors"].append(str(exc)))
    page.on("request", lambda request: seen["requests"].append(request.url))
    page.on("dialog", lambda dialog: (seen["dialogs"].append(dialog.message), dialog.dismiss()))
    return seen


def screenshot(page: Any, folder: Path, name: str) -> Path:
    """A full-page PNG in `folder` (and in $PPSGUARD_ARTIFACTS when set)."""
    shot = folder / name
    page.screenshot(path=str(shot), full_page=True)
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
    keep = os.environ.get("PPSGUARD_ARTIFACTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        (Path(keep) / name).write_bytes(data)
    return shot
