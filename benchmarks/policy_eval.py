"""Bulk policy evaluation: ppsguard's vectorised evaluator vs a straightforward first-match loop.

For registries of 10, 1,000 and 10,000 entries (random denies and provides over lab addresses in
198.18.0.0/15, ports and port ranges, tcp/udp), evaluate 10 million random IPv4 tuples with
`BulkEvaluator` and a sample with the first-match loop (`policy.evaluate.evaluate`, one tuple at a
time, extrapolated to a rate), check both agree on the sample, and print tuples/s and the ratio.
Target: >= 2 million tuples/s on one core at 1,000 entries. `--quick` uses 1 million tuples.
Bounded: the loop runs at most ~3 s per size.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import random
import time

import numpy as np

from ppsguard.model.net import Protocol
from ppsguard.policy.bulk import BulkEvaluator
from ppsguard.policy.compile import compile_host_policy
from ppsguard.policy.evaluate import evaluate
from ppsguard.registry.load import parse_registry

BASE = int(ipaddress.IPv4Address("198.18.0.0"))


def make_registry(entries: int, rng: random.Random) -> str:
    lines = ["version: 1", "default: deny", "hosts:", "  h:"]
    for kind in ("denies", "provides"):
        lines.append(f"    {kind}:")
        for i in range(entries // 2):
            lo = rng.randrange(1, 65000)
            hi = lo if rng.random() < 0.7 else min(65535, lo + rng.randrange(1, 200))
            proto = rng.choice(["tcp", "udp", "tcp+udp"])
            if rng.random() < 0.1:
                source = "anywhere"
            else:
                prefix = rng.choice([16, 20, 24, 28, 32])
                net = ipaddress.ip_network((BASE + rng.randrange(0, 1 << 17), prefix), strict=False)
                source = str(net)
            log = "true" if rng.random() < 0.3 else "false"
            spec = f"port: {lo}-{hi}/{proto}, from: [{source}], log: {log}"
            lines.append(f"      - {{id: {kind[0]}{i}, {spec}}}")
    return "\n".join(lines) + "\n"


def make_tuples(n: int, policy_ports: list[int], seed: int) -> tuple[np.ndarray, ...]:
    gen = np.random.default_rng(seed)
    src = (BASE + gen.integers(0, 1 << 17, n)).astype(np.uint32)
    hot = np.array(policy_ports, dtype=np.int64)
    ports = np.where(
        gen.random(n) < 0.7, hot[gen.integers(0, hot.size, n)], gen.integers(0, 65536, n)
    )
    protos = gen.integers(0, 2, n).astype(np.int8)  # PROTOCOL_CODES: tcp=0, udp=1
    return src, ports.astype(np.uint16), protos


def run(entries: int, tuples: int, loop_seconds: float) -> None:
    rng = random.Random(entries)
    t0 = time.perf_counter()
    registry = parse_registry(make_registry(entries, rng), f"bench-{entries}.yaml")
    policy = compile_host_policy(registry)
    t1 = time.perf_counter()
    bulk = BulkEvaluator(policy)
    t2 = time.perf_counter()
    ports = [r.ports[0].first for r in policy.rules] or [80]
    src, port, proto = make_tuples(tuples, ports, entries)
    t3 = time.perf_counter()
    result = bulk.evaluate_v4(src, port, proto)
    t4 = time.perf_counter()
    bulk_rate = tuples / (t4 - t3)

    protocols = [Protocol.TCP, Protocol.UDP]
    done = 0
    mismatches = 0
    start = time.perf_counter()
    while done < tuples and time.perf_counter() - start < loop_seconds:
        for i in range(done, min(done + 200, tuples)):
            d = evaluate(
                policy, ipaddress.IPv4Address(int(src[i])), int(port[i]), protocols[proto[i]]
            )
            mismatches += int(d.index != result.rule[i])
        done = min(done + 200, tuples)
    loop_rate = done / (time.perf_counter() - start)

    n6 = max(1, tuples // 10)
    gen = np.random.default_rng(entries + 1)
    hi = np.full(n6, 0x20010DB8 << 32, dtype=np.uint64)
    lo = gen.integers(0, 1 << 16, n6).astype(np.uint64)
    t5 = time.perf_counter()
    bulk.evaluate_v6(hi, lo, port[:n6], proto[:n6])
    v6_rate = n6 / (time.perf_counter() - t5)
    print(
        f"entries={entries:>6} rules={len(policy.rules):>6}  load+compile {t1 - t0:6.2f}s  "
        f"bulk build {t2 - t1:6.2f}s  bulk {tuples:,} tuples in {t4 - t3:6.2f}s = "
        f"{bulk_rate / 1e6:7.2f} M tuples/s  |  first-match loop {loop_rate:>10,.0f} tuples/s "
        f"(sample {done:,})  ratio {bulk_rate / loop_rate:8.0f}x  mismatches {mismatches}  "
        f"|  IPv6 bulk {v6_rate / 1e6:5.2f} M tuples/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 million tuples instead of 10")
    parser.add_argument("--sizes", default="10,1000,10000", help="comma-separated entry counts")
    args = parser.parse_args()
    tuples = 1_000_000 if args.quick else 10_000_000
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    print(f"policy_eval: {tuples:,} IPv4 tuples per size, one core, numpy {np.__version__}")
    for size in (int(s) for s in args.sizes.split(",")):
        run(size, tuples, loop_seconds=1.0 if args.quick else 3.0)


if __name__ == "__main__":
    main()
