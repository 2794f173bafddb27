"""Benchmark: `pps serve` in Chromium (issue 17), measured by the browser itself.

  building  navigation start -> the building of a host with 65,535 scan results (filtered, one
            in a hundred open) fully drawn on its canvas (building.js stamps performance.now()).
  fleet     navigation start -> the fleet page of 1,000 hosts (2 audits each, seeded by
            benchmarks/store.py's bulk seed) loaded (the navigation timing's loadEventEnd):
            as it opens (the first 250 rows of the sorted, filtered fleet) and with every row.
  live      an alert line appended to the file `pps watch --alerts-to jsonl:FILE` writes ->
            its row on the open live page (live.js stamps Date.now(); same clock).
Targets: <= 1 s, <= 1 s, <= 2 s. Each figure is the median of N runs (best shown too).

The desk is the real `pps serve` process on 127.0.0.1; the browser is Debian's chromium
(headless, Playwright, nothing downloaded). No network beyond loopback.

Usage: python benchmarks/dashboard.py [--quick]   (--quick: 3 runs each, 200 fleet hosts)
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ppsguard.store import record_run
from ppsguard.store.engine import close_all
from ppsguard.testing.browser import ARGS, CHROMIUM

PARTS_BUILDING = """(() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const data = performance.getEntriesByType('resource').find(r => r.name.endsWith('building.json'));
  return {'page html received': nav.responseEnd, 'building.json received': data.responseEnd};
})()"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_desk(store: str, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ppsguard",
            "serve",
            "--store",
            store,
            "--listen",
            f"127.0.0.1:{port}",
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("pps serve did not start")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def big_scan(url: str) -> None:
    """One host with 65,535 TCP results: filtered, and every hundredth port open."""
    ports = [
        {
            "protocol": "tcp",
            "port": p,
            "state": "open" if p % 100 == 0 else "filtered",
            "service": {"name": "http-alt"} if p % 100 == 0 else None,
        }
        for p in range(1, 65536)
    ]
    started = dt.datetime.now(dt.UTC).isoformat()
    document = {"hosts": [{"address": "198.18.0.2", "ports": ports}], "stats": {"started": started}}
    record_run(url, "scan", document, netns="tower")
    close_all()


def seed_fleet(url: str, hosts: int) -> None:
    spec = importlib.util.spec_from_file_location(
        "bench_store", Path(__file__).with_name("store.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.seed(url, hosts, 2, 0)
    close_all()


def summary(name: str, values: list[float], target: float) -> str:
    median = statistics.median(values)
    verdict = "met" if median <= target else "NOT met"
    return (
        f"{name:<9} median {median * 1000:7.0f} ms  best {min(values) * 1000:7.0f} ms  "
        f"(n={len(values)})  target <= {target:.0f} s: {verdict}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    runs = 3 if args.quick else 7
    n_hosts = 200 if args.quick else 1000
    if not os.access(CHROMIUM, os.X_OK):
        print("chromium is missing (deps/debian-packages.txt)", file=sys.stderr)
        return 3
    from playwright.sync_api import sync_playwright

    results: dict[str, list[float]] = {"building": [], "fleet": [], "live": []}
    with tempfile.TemporaryDirectory(prefix="pps-bench-desk-") as tmp:
        folder = Path(tmp)
        tower = f"sqlite:///{folder / 'tower.db'}"
        fleet = f"sqlite:///{folder / 'fleet.db'}"
        big_scan(tower)
        seed_fleet(fleet, n_hosts)
        alerts = folder / "alerts.jsonl"
        alerts.write_text("", encoding="utf-8")
        desk_tower, base_tower = start_desk(tower, "--alerts", f"tower={alerts}")
        desk_fleet, base_fleet = start_desk(fleet)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(base_tower + "/host/1")  # warm-up: the first page load of the process
                page.goto(base_fleet + "/")
                for _ in range(runs):
                    page.goto(base_tower + "/host/1")
                    page.wait_for_selector("body[data-building=drawn]", timeout=60_000)
                    lit = page.get_attribute("#building", "data-results")
                    assert lit == "65535", lit
                    drawn = float(page.get_attribute("#building", "data-drawn-at") or 0)
                    results["building"].append(drawn / 1000)
                    parts: Any = page.evaluate(PARTS_BUILDING)
                    for key, value in parts.items():
                        results.setdefault(key, []).append(float(value) / 1000)
                for _ in range(runs):
                    page.goto(base_fleet + "/?all=1", wait_until="load")
                    rows = page.locator("tr.host").count()
                    assert rows == n_hosts, rows
                    timing = page.evaluate(
                        "performance.getEntriesByType('navigation')[0].loadEventEnd"
                    )
                    results.setdefault("fleet all", []).append(float(timing) / 1000)
                    served_all: Any = page.evaluate(
                        "performance.getEntriesByType('navigation')[0].responseEnd"
                    )
                    results.setdefault("fleet all html received", []).append(
                        float(served_all) / 1000
                    )
                for _ in range(runs):
                    page.goto(base_fleet + "/", wait_until="load")
                    rows = page.locator("tr.host").count()
                    assert rows == min(n_hosts, 250), rows
                    timing: Any = page.evaluate(
                        "performance.getEntriesByType('navigation')[0].loadEventEnd"
                    )
                    results["fleet"].append(float(timing) / 1000)
                    served: Any = page.evaluate(
                        "performance.getEntriesByType('navigation')[0].responseEnd"
                    )
                    results.setdefault("fleet html received", []).append(float(served) / 1000)
                page.goto(base_tower + "/live")
                page.wait_for_selector("body[data-live=open]", timeout=10_000)
                for n in range(runs):
                    written = time.time()
                    record = {
                        "type": "alert",
                        "id": f"bench#{n}",
                        "kind": "scan",
                        "severity": "high",
                        "message": f"bench {n}",
                        "ports": [22],
                        "proto": "tcp",
                        "last_seen": written,
                    }
                    with alerts.open("a", encoding="utf-8") as handle:
                        handle.write(json.dumps(record) + "\n")
                    page.wait_for_selector(f"tr.alert >> text=bench {n}", timeout=10_000)
                    shown = float(page.get_attribute("tr.alert", "data-shown-at") or 0)
                    results["live"].append(shown / 1000 - written)
                    time.sleep(0.3)
                browser.close()
        finally:
            stop(desk_tower)
            stop(desk_fleet)
    load = os.getloadavg()[0]
    print(f"pps serve in headless chromium; load average {load:.1f} (shared 2-core machine)")
    print(summary("building", results["building"], 1.0) + "  (65,535 results)")
    print(summary("fleet", results["fleet"], 1.0) + f"  ({n_hosts} hosts, first 250 rows)")
    print(summary("fleet all", results["fleet all"], 1.0) + f"  (all {n_hosts} rows, ?all=1)")
    print(summary("live", results["live"], 2.0) + "  (alert line -> row on screen)")
    for key in (
        "page html received",
        "building.json received",
        "fleet html received",
        "fleet all html received",
    ):
        if results.get(key):
            print(f"  of which: {key} after median {statistics.median(results[key]) * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
