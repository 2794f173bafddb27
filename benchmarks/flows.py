"""Benchmark: `pps flows read` against a dpkt flow loop and `tshark -z conv,tcp` on one capture.

The script writes its own capture (Ethernet, IPv4, TCP handshakes with data and closes) of
1,000,000 packets (`--quick`: 100,000) in two variants: 10,000 flows and 200,000 flows. Each tool
turns it into per-connection packet and byte counts: `pps flows read` (the whole command, JSON
lines to a file), a dpkt loop (dpkt's reader and Ethernet/IP/TCP objects, a dict of flows: the
usual Python way), tshark's conversation table, and pps's own per-packet reference path
(`read_flows(..., chunked=False)`, what `pps flows read` did before the chunked path). Printed:
packets/s of each by wall clock and by CPU time (user + system of the child: steadier than the
wall clock on a shared machine), the ratios, and pps's peak RSS. Python children run from
compiled bytecode, as an installed package does (`support/bytecode.py`). Targets (issue #14):
>= 1,000,000 packets/s, >= 10x the dpkt loop, >= 50x tshark; peak RSS bounded by the live
flows. (The issue's `pps flows audit` target, >= 2,000,000 flows/s against a 1,000-entry
registry, is not measured by this script.)

    .venv/bin/python benchmarks/flows.py [--quick] [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ppsguard.testing.packets import ACK, FIN, PSH, SYN, ethernet, ipv4, tcp, write_pcap
from support.bytecode import installed_env

DPKT_LOOP = r"""
import sys, dpkt
flows = {}
with open(sys.argv[1], "rb") as f:
    for ts, buf in dpkt.pcap.Reader(f):
        eth = dpkt.ethernet.Ethernet(buf)
        ip = eth.data
        if not isinstance(ip, dpkt.ip.IP):
            continue
        seg = ip.data
        key = tuple(sorted(((ip.src, seg.sport), (ip.dst, seg.dport))))
        entry = flows.setdefault(key, [ts, ts, 0, 0])
        entry[1] = ts
        entry[2] += 1
        entry[3] += ip.len
print(len(flows))
"""


def capture(path: Path, packets: int, flows: int) -> None:
    rng = random.Random(7)
    per_flow = max(packets // flows, 6)
    frames = []
    t = 1_000.0
    live: list[tuple[str, int, int]] = []
    made = 0
    while made < packets:
        n = len(live)
        client = f"198.18.{(n >> 8) % 256}.{n % 256}"
        live.append((client, 20000 + (made // per_flow) % 40000, rng.choice((80, 443, 22, 25))))
        c, cp, sp = live[-1]
        server = "198.19.0.1"
        seq = [
            ethernet(ipv4(tcp(cp, sp, SYN, seq=1), c, server)),
            ethernet(ipv4(tcp(sp, cp, SYN | ACK, seq=100, ack=2), server, c)),
            ethernet(ipv4(tcp(cp, sp, ACK, seq=2, ack=101), c, server)),
        ]
        sent = 2
        for _ in range(per_flow - 5):
            seq.append(
                ethernet(ipv4(tcp(cp, sp, PSH | ACK, seq=sent, ack=101, data=b"x" * 64), c, server))
            )
            sent += 64
        seq += [
            ethernet(ipv4(tcp(cp, sp, FIN | ACK, seq=sent, ack=101), c, server)),
            ethernet(ipv4(tcp(sp, cp, FIN | ACK, seq=101, ack=sent + 1), server, c)),
        ]
        for frame in seq:
            t += 0.0001
            frames.append((t, frame))
        made += len(seq)
    write_pcap(path, frames[:packets])


REFERENCE_LOOP = r"""
import sys
from pathlib import Path
from ppsguard.flows.inputs import read_flows
from ppsguard.flows.records import flow_record
import orjson
with open("/dev/null", "wb") as out:
    for flow in read_flows(Path(sys.argv[1]), chunked=False):
        out.write(orjson.dumps(flow_record(flow)) + b"\n")
"""


def timed(argv: list[str], env: dict[str, str], repeat: int = 1) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak RSS in MB) of a child process, each the best of
    `repeat` runs, from the child's own rusage (the benchmark itself stays small: captures are
    written by a child of their own)."""
    runs = [_once(argv, env) for _ in range(repeat)]
    return min(r[0] for r in runs), min(r[1] for r in runs), max(r[2] for r in runs)


def _once(argv: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    started = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{argv[0]} failed with {child.returncode}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--repeat", type=int, default=1, help="best of this many runs of each tool (a shared "
        "machine's noise: the README's figures are best of 3)"
    )  # fmt: skip
    parser.add_argument(
        "--write", nargs=3, metavar=("PATH", "PACKETS", "FLOWS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.write:
        capture(Path(args.write[0]), int(args.write[1]), int(args.write[2]))
        return
    packets = 100_000 if args.quick else 1_000_000
    with tempfile.TemporaryDirectory() as tmp, installed_env() as env:
        warm = Path(tmp) / "warm-up.pcap"  # a first run writes the bytecode
        subprocess.run([sys.executable, __file__, "--write", str(warm), "60", "10"], check=True)
        for script in (["-m", "ppsguard", "flows", "read"], ["-c", REFERENCE_LOOP]):
            _once([sys.executable, *script, str(warm)], env)
        for wanted in (10_000, 200_000):
            flows = min(wanted, packets // 6)
            path = Path(tmp) / f"bench-{flows}.pcap"
            subprocess.run(
                [sys.executable, __file__, "--write", str(path), str(packets), str(flows)],
                check=True,
            )
            n = args.repeat
            ours, ours_cpu, peak = timed(
                [sys.executable, "-m", "ppsguard", "flows", "read", str(path)], env, n
            )
            dpkt, dpkt_cpu, _ = timed([sys.executable, "-c", DPKT_LOOP, str(path)], env, n)
            shark, shark_cpu, _ = timed(["tshark", "-r", str(path), "-q", "-z", "conv,tcp"], env, n)
            reference, reference_cpu, _ = timed(
                [sys.executable, "-c", REFERENCE_LOOP, str(path)], env, n
            )
            rate, cpu_rate = packets / ours, packets / ours_cpu
            print(
                f"{packets:,} packets, {flows:,} flows: pps flows read {ours:.2f} s wall, "
                f"{ours_cpu:.2f} s CPU ({rate:,.0f} packets/s wall, {cpu_rate:,.0f}/s CPU; "
                f"peak RSS {peak:.0f} MB)"
            )
            for name, wall, cpu in (
                ("dpkt loop", dpkt, dpkt_cpu),
                ("tshark -z conv,tcp", shark, shark_cpu),
                ("pps per-packet path", reference, reference_cpu),
            ):
                print(
                    f"  {name}: {wall:.2f} s wall, {cpu:.2f} s CPU "
                    f"({packets / cpu:,.0f} packets/s CPU): pps is {wall / ours:.2f}x by wall "
                    f"clock, {cpu / ours_cpu:.2f}x by CPU time"
                )
            print(
                f"  targets: >= 10x the dpkt loop, >= 50x tshark; >= 1,000,000 packets/s: "
                f"{'met' if cpu_rate >= 1_000_000 else 'NOT met'} by CPU time, "
                f"{'met' if rate >= 1_000_000 else 'NOT met'} by wall clock"
            )


if __name__ == "__main__":
    main()
