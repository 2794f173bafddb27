"""Benchmark: `ppsguard.inventory.collect` against `ss` and psutil, at 1k, 10k and 50k sockets.

For each size a fresh lab namespace is created (nothing on the host is disturbed), several worker
processes open loopback TCP connections inside it (both ends count: 50k sockets = 25k
connections), and then, in the same run:

  listeners, no owners   collect(listening)            vs `ss -tln`
  listeners + owners     collect(listening, owners)    vs `ss -tlnp`
  full table + owners    collect(all states, owners)   vs `ss -tanp` and psutil.net_connections

`ss` runs as `ip netns exec NS ss ...` (wall time, output to /dev/null); psutil runs in a Python
process inside the namespace and times only the call. ppsguard is timed in-process (library API,
warm). Medians of several runs; the machine is shared, so compare ratios, not absolute times.
Targets (issue 3): full table with owners at 50k <= 0.5x `ss -tanp` and >= 5x faster than
psutil; listeners without owners at 50k under 5 ms.

Usage: python benchmarks/inventory.py [--quick]     (root; --quick: 1k and 10k only)
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from ppsguard.inventory import collect
from ppsguard.model.net import Protocol
from ppsguard.testing.lab import Lab, lab_unavailable_reason

WORKERS = 4
BASE_PORT = 7600
WORKER = r"""
import resource, socket, sys
port, pairs = int(sys.argv[1]), int(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
listener = socket.socket()
listener.bind(("127.0.0.1", port))
listener.listen(4096)
kept = []
for _ in range(pairs):
    client = socket.create_connection(("127.0.0.1", port), timeout=10)
    server, _ = listener.accept()
    kept += [client, server]
print("READY", flush=True)
sys.stdin.read()  # hold the sockets until the benchmark closes our stdin (or kills us)
"""
PSUTIL = r"""
import statistics, sys, time, psutil
runs = []
for _ in range(int(sys.argv[1])):
    start = time.perf_counter()
    rows = psutil.net_connections("tcp")
    runs.append(time.perf_counter() - start)
print(statistics.median(runs), len(rows))
"""


def median_time(function: Callable[[], object], repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def time_command(argv: list[str], repeat: int) -> float:
    def run() -> None:
        subprocess.run(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120, check=False
        )

    return median_time(run, repeat)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def bench(size: int, repeat: int) -> None:
    with Lab(["bench"]) as lab:
        host = lab["bench"]
        pairs = size // 2 // WORKERS
        workers = []
        for index in range(WORKERS):
            process = host.popen(
                [sys.executable, "-c", WORKER, str(BASE_PORT + index), str(pairs)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            workers.append(process)
        for process in workers:
            assert process.stdout is not None
            line = process.stdout.readline()
            if not line.startswith("READY"):
                raise SystemExit(f"worker failed to open its sockets: {line!r}")
        ns = host.netns
        tcp = [Protocol.TCP]

        def listeners() -> object:
            return collect(netns=ns, protocols=tcp, owners=False)

        def listeners_owned() -> object:
            return collect(netns=ns, protocols=tcp, owners=True)

        def full_owned() -> object:
            return collect(netns=ns, protocols=tcp, listening=True, active=True, owners=True)

        rows = len(collect(netns=ns, protocols=tcp, active=True, owners=False).records)
        full_owned()  # warm-up: imports, knowledge base, page cache
        ours_l = median_time(listeners, repeat * 4)
        ours_lo = median_time(listeners_owned, repeat)
        ours_full = median_time(full_owned, repeat)
        ss_l = time_command(host.command(["ss", "-tln"]), repeat)
        ss_lp = time_command(host.command(["ss", "-tlnp"]), repeat)
        ss_full = time_command(host.command(["ss", "-tanp"]), repeat)
        result = host.run([sys.executable, "-c", PSUTIL, str(max(1, repeat // 2))], timeout=300)
        ps_full = float(result.stdout.split()[0])
        for process in workers:
            assert process.stdin is not None
            process.stdin.close()
    print(f"sockets={size} rows={rows} workers={WORKERS}")
    print(
        f"  listeners, no owners : ppsguard {ms(ours_l)} | ss -tln {ms(ss_l)} "
        f"(ppsguard/ss = {ours_l / ss_l:.3f}; target < 5 ms at 50k: "
        f"{'met' if ours_l < 0.005 else 'NOT met'})"
    )
    print(
        f"  listeners + owners   : ppsguard {ms(ours_lo)} | ss -tlnp {ms(ss_lp)} "
        f"(ppsguard/ss = {ours_lo / ss_lp:.2f})"
    )
    print(
        f"  full table + owners  : ppsguard {ms(ours_full)} | ss -tanp {ms(ss_full)} "
        f"(ppsguard/ss = {ours_full / ss_full:.2f}, target <= 0.5) | psutil {ms(ps_full)} "
        f"(psutil/ppsguard = {ps_full / ours_full:.1f}x, target >= 5x)"
    )
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1k and 10k sockets only")
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement (median)")
    args = parser.parse_args()
    reason = lab_unavailable_reason()
    if reason:
        print(f"skipped: {reason}")
        return 0
    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 50_000]
    started = time.monotonic()
    for size in sizes:
        bench(size, max(1, args.repeat))
        if time.monotonic() - started > 600:
            print("stopping: time budget of 10 minutes used")
            break
    print(f"cpus={os.cpu_count()} total {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
