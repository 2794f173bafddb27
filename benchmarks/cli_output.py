"""Benchmark: whole `pps` processes as a user runs them, output included, against the anchors.

Everything runs in a fresh lab namespace (its own loopback, so nothing on the host is touched;
removed at the end, workers killed): 4 worker processes open 20,000 loopback TCP connections
(40,000 sockets; --quick: 4,000), then, in one run, interleaved, each command is started as a
process (start-up included) with stdout to a file and to a pipe (read and discarded):

  pps sockets --all            table, --json, --jsonl, --csv       vs `ss -tanp`
  pps scan 127.0.0.1 -p- --all-states   table, --json, -oX FILE   vs the same scan without
                                        --all-states (2 lines of output: the scan's own time)
  pps port 22                                                      vs `getent services 22`

Each case runs `--repeat` times (default 5), medians are printed with the ratio to the anchor and
the peak RSS of the process (GNU time's %M). Targets (issue 12): every sockets format
<= 1.0x ss (moonshot <= 0.5x) and <= 100 MB peak RSS; scan output adds <= 10% to the scan;
`pps port 22` <= 0.15 s. The machine is shared: compare ratios measured in one run.

Usage: python benchmarks/cli_output.py [--quick] [--repeat N] [--only sockets|scan|port]
       (root: network namespaces)
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ppsguard.lab.hosts import Lab, lab_unavailable_reason
from ppsguard.testing.busy import hold_socket_pairs, release

PPS = [sys.executable, "-m", "ppsguard"]


def run(argv: list[str], sink: str, scratch: Path) -> tuple[float, int, bytes]:
    """Wall time, peak RSS (KiB) and the last 64 KiB of stdout of one process, stdout to a
    file or to a pipe.

    The peak RSS comes from GNU time (`/usr/bin/time -f %M`), which forks the command from its
    own small process: a child forked from this Python process would count our pages too.
    """
    rss_file = scratch / "rss"
    argv = ["/usr/bin/time", "-f", "%M", "-o", str(rss_file), *argv]
    start = time.perf_counter()
    tail = b""
    if sink == "file":
        with (scratch / "out").open("wb") as handle:
            done = subprocess.run(argv, check=False, stdout=handle, stderr=subprocess.DEVNULL)
            code = done.returncode
    else:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert process.stdout is not None
        while chunk := process.stdout.read(1 << 16):
            tail = (tail + chunk)[-(1 << 16) :]
        process.stdout.close()
        code = process.wait()
    elapsed = time.perf_counter() - start
    if code not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} exited {code}")
    if sink == "file":
        with (scratch / "out").open("rb") as handle:
            handle.seek(max(0, handle.seek(0, os.SEEK_END) - (1 << 16)))
            tail = handle.read()
    return elapsed, int(rss_file.read_text().split()[-1]), tail


Case = tuple[str, list[str]]


OWN_TIME = re.compile(rb'(?: in |"elapsed_s":)([0-9.]+)')  # "... 1 up in 1.27s, ..."


def scan_time(tail: bytes) -> float:
    """The scan's own time as it reports it (the table's last line, or the JSON stats)."""
    found = OWN_TIME.findall(tail)
    return float(found[-1]) if found else 0.0


def measure(cases: list[Case], repeat: int, scratch: Path) -> dict[str, list[tuple[float, int]]]:
    """Every case through both sinks, interleaved, `repeat` rounds (after one warm-up round).
    The scan's own time of each run is kept under `NAME > SINK own` (seconds, 0 RSS)."""
    runs: dict[str, list[tuple[float, int]]] = {}
    for round_index in range(repeat + 1):
        for name, argv in cases:
            for sink in ("file", "pipe"):
                seconds, rss, tail = run(argv, sink, scratch)
                if round_index:
                    runs.setdefault(f"{name} > {sink}", []).append((seconds, rss))
                    runs.setdefault(f"{name} > {sink} own", []).append((scan_time(tail), 0))
    return runs


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def median(values: list[tuple[float, int]]) -> tuple[float, int]:
    return statistics.median(v[0] for v in values), max(v[1] for v in values)


def report(
    title: str,
    runs: dict[str, list[tuple[float, int]]],
    anchor: str,
    check: Callable[[float, int], str],
) -> None:
    print(title)
    for sink in ("file", "pipe"):
        base, base_rss = median(runs[f"{anchor} > {sink}"])
        print(f"  stdout to a {sink}: {anchor} {base:.3f} s, {base_rss / 1024:.0f} MB")
        for key, values in runs.items():
            name, _, where = key.rpartition(" > ")
            if where != sink or name == anchor:  # (also skips the "SINK own" keys)
                continue
            seconds, rss = median(values)
            ratio = seconds / base
            print(
                f"    {name:<34} {seconds:7.3f} s  {ratio:5.2f}x  peak RSS {rss / 1024:5.0f} MB  "
                f"{check(ratio, rss)}"
            )
    sys.stdout.flush()


def _outside(runs: dict[str, list[tuple[float, int]]], name: str, sink: str) -> tuple[float, float]:
    """Median time outside the scan (wall minus its own time) and median own time."""
    walls = runs[f"{name} > {sink}"]
    owns = runs[f"{name} > {sink} own"]
    rest = statistics.median(w[0] - o[0] for w, o in zip(walls, owns, strict=True))
    return rest, statistics.median(o[0] for o in owns)


def report_scan(runs: dict[str, list[tuple[float, int]]], anchor: str) -> None:
    """Per run, the time outside the scan (wall minus the scan's own reported time: start-up,
    result handling, output); output's share = the case's outside time minus the anchor's
    (which prints two lines), over the scan's own time. The scan's own time swings from run to
    run (a loaded machine: 4-9 s), which a ratio of walls would charge to the output."""
    for sink in ("file", "pipe"):
        base_rest, base_own = _outside(runs, anchor, sink)
        print(
            f"  stdout to a {sink}: {anchor}: scan's own time {base_own:.3f} s, "
            f"outside it {base_rest:.3f} s"
        )
        for key in runs:
            name, _, where = key.rpartition(" > ")
            if where != sink or name == anchor:
                continue
            rest, own = _outside(runs, name, sink)
            share = (rest - base_rest) / own if own else float("nan")
            print(
                f"    {name:<34} own {own:6.3f} s, outside {rest:6.3f} s: output adds "
                f"{share * 100:5.1f}% (<= 10%: {verdict(share <= 0.10)})"
            )
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4,000 sockets, 3 rounds")
    parser.add_argument("--repeat", type=int, default=None, help="rounds (default 5; quick 3)")
    parser.add_argument(
        "--only", choices=("sockets", "scan", "port"), default=None, help="one group of cases"
    )
    args = parser.parse_args()
    reason = lab_unavailable_reason()
    if reason:
        print(f"skipped: {reason}")
        return 0
    sockets = 4_000 if args.quick else 40_000
    repeat = args.repeat or (3 if args.quick else 5)
    ports = "1-10000" if args.quick else "-"
    with tempfile.TemporaryDirectory(prefix="pps-bench-") as folder, Lab(["bench"]) as lab:
        scratch = Path(folder)
        host = lab["bench"]
        workers = hold_socket_pairs(host, sockets)
        try:
            inside = host.command
            print(
                f"cli_output: {sockets} sockets in netns {host.netns}, {repeat} rounds, "
                f"interleaved, medians; {time.strftime('%Y-%m-%d')} on {os.uname().nodename} "
                f"({os.cpu_count()} cores)"
            )
            sockets_cases: list[Case] = [
                ("ss -tanp", inside(["ss", "-tanp"])),
                ("pps sockets --all (table)", inside([*PPS, "sockets", "--all"])),
                ("pps sockets --all --json", inside([*PPS, "sockets", "--all", "--json"])),
                ("pps sockets --all --jsonl", inside([*PPS, "sockets", "--all", "--jsonl"])),
                ("pps sockets --all --csv", inside([*PPS, "sockets", "--all", "--csv"])),
            ]

            def sockets_check(ratio: float, rss: int) -> str:
                target = "met" if ratio <= 1.0 and rss <= 100 * 1024 else "NOT met"
                moon = ", moonshot met" if ratio <= 0.5 else ""
                return f"(<= 1.0x ss and <= 100 MB: {target}{moon})"

            if args.only in (None, "sockets"):
                report(
                    "pps sockets --all against ss -tanp",
                    measure(sockets_cases, repeat, scratch),
                    "ss -tanp",
                    sockets_check,
                )
            scan = [*PPS, "scan", "127.0.0.1", "-p", ports]
            xml = str(scratch / "scan.xml")
            scan_cases: list[Case] = [
                ("scan alone", inside(scan)),
                ("--all-states (table)", inside([*scan, "--all-states"])),
                ("--all-states --json", inside([*scan, "--all-states", "--json"])),
                ("--all-states -oX FILE", inside([*scan, "--all-states", "-oX", xml])),
            ]
            if args.only in (None, "scan"):
                scan_runs = measure(scan_cases, repeat, scratch)
                report(
                    f"pps scan 127.0.0.1 -p {ports}: whole processes against the scan alone",
                    scan_runs,
                    "scan alone",
                    lambda ratio, _: "",
                )
                print("  the output's share of the scan's own time:")
                report_scan(scan_runs, "scan alone")
            if args.only not in (None, "port"):
                return 0
            port_cases: list[Case] = [
                ("getent services 22", ["getent", "services", "22"]),
                ("pps port 22", [*PPS, "port", "22"]),
            ]
            port_runs = measure(port_cases, repeat, scratch)
            report(
                "pps port 22 against getent services 22",
                port_runs,
                "getent services 22",
                lambda ratio, _: "",
            )
            seconds = median(port_runs["pps port 22 > pipe"])[0]
            print(f"  pps port 22 <= 0.15 s: {'met' if seconds <= 0.15 else 'NOT met'}")
        finally:
            release(workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
