"""Debian's Chromium as the tests and benchmarks start it (through Playwright's
`executable_path`; nothing is downloaded). Without the background-networking flags Chromium
tries to reach Google's hosts at every start, which this machine's closed network refuses."""

from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
