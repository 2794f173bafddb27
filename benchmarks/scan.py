"""Benchmark `pps scan` against nmap (Debian's nmap, same lab, same run).

Lab: a target host that drops almost every TCP port, rejects 1,000 with RST and has 5 open.
  1. all 65,535 TCP ports: `pps scan --syn -T4 -p-` vs `nmap -sS -T4 -p-`
  2. all 65,535 TCP ports: `pps scan --connect -T4 -p-` vs `nmap -sT -T4 -p-`
  3. 127.0.0.1 all ports: `pps scan --connect -p-` vs `nmap -sT -p-`
  4. UDP top 100 (ours) of a host with DNS and SNMP responders: `pps scan --udp` vs `nmap -sU`
ppsguard runs are repeated (5 times, 1 with --quick) and every run's port states are compared
with the lab's truth. Run as root: `python benchmarks/scan.py [--quick]`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable

from ppsguard.model.net import Protocol
from ppsguard.scan.ports import top_ports
from ppsguard.testing.lab import Host, Lab

OPEN = (22, 80, 443, 8080, 50000)
REJECT = range(20000, 21000)
RULES = f"""
table inet bench {{
  chain input {{
    type filter hook input priority 0; policy accept;
    tcp dport {{ {", ".join(map(str, OPEN))} }} accept
    tcp dport {REJECT.start}-{REJECT.stop - 1} reject with tcp reset
    tcp dport 1-65535 drop
  }}
}}
"""


def truth(port: int) -> str:
    if port in OPEN:
        return "open"
    if port in REJECT:
        return "closed"
    return "filtered"


def timed(host: Host, argv: list[str], timeout: float = 400) -> tuple[float, str]:
    started = time.monotonic()
    done = host.run(argv, timeout=timeout, check=False)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({done.returncode}): {done.stderr[-500:]}")
    return elapsed, done.stdout


def pps(host: Host, *args: str) -> tuple[float, dict[int, str]]:
    elapsed, out = timed(
        host, [sys.executable, "-m", "ppsguard", "scan", "--json", "--all-states", *args]
    )
    doc = json.loads(out)
    states = {p["port"]: p["state"] for h in doc["hosts"] for p in h["ports"]}
    return elapsed, states


def nmap(host: Host, *args: str) -> tuple[float, dict[int, str], dict[str, int]]:
    elapsed, out = timed(host, ["nmap", "-n", "-Pn", "-oX", "-", *args])
    root = ET.fromstring(out)
    states: dict[int, str] = {}
    for port in root.iter("port"):
        state = port.find("state")
        states[int(port.get("portid", "0"))] = "" if state is None else state.get("state", "")
    extra = {e.get("state", ""): int(e.get("count", "0")) for e in root.iter("extraports")}
    return elapsed, states, extra


def check(states: dict[int, str], ports: range) -> int:
    """Number of ports whose state differs from the truth."""
    return sum(1 for p in ports if states.get(p) != truth(p))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="one ppsguard run each; skip nmap -sT/-sU"
    )
    parser.add_argument(
        "--only", choices=("syn", "connect", "loopback", "udp"), help="run one comparison only"
    )
    args = parser.parse_args()

    def wanted(name: str) -> bool:
        return args.only in (None, name)

    runs = 1 if args.quick else 5
    everything = range(1, 65536)
    lines: list[str] = []

    def report(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    with Lab(["scanner", "target", "udptarget"]) as lab:
        scanner, target, udp = lab["scanner"], lab["target"], lab["udptarget"]
        for port in OPEN:
            target.listen(port)
        target.nft(RULES)
        addr = str(target.ipv4)

        for engine, nmap_flag in (("syn", "-sS"), ("connect", "-sT")):
            if not wanted(engine):
                continue
            times, wrong = [], []
            for _ in range(runs):
                elapsed, states = pps(scanner, f"--{engine}", "-T4", "-p-", addr)
                times.append(elapsed)
                wrong.append(check(states, everything))
            best = min(times)
            exact = sum(1 for w in wrong if w == 0)
            if args.quick and engine == "connect":
                report(
                    f"tcp-{engine}: ppsguard best {best:.2f}s, truth exact {exact}/{runs} "
                    "(nmap skipped: --quick)"
                )
                continue
            n_elapsed, n_states, n_extra = nmap(scanner, nmap_flag, "-T4", "-p-", addr)
            n_open = sorted(p for p, s in n_states.items() if s == "open")
            report(
                f"tcp-{engine} 65535 ports: ppsguard best {best:.2f}s "
                f"(runs {', '.join(f'{t:.2f}' for t in times)}), "
                f"nmap {nmap_flag} -T4 {n_elapsed:.2f}s, ratio {n_elapsed / best:.1f}x; "
                f"ppsguard states == truth in {exact}/{runs} runs; "
                f"nmap open {n_open} extraports {n_extra}"
            )

        if wanted("loopback"):
            loopback(scanner, runs, report)
        if not args.quick and wanted("udp"):
            udp_compare(scanner, udp, report)
    print("\nsummary:")
    for line in lines:
        print("  " + line)
    return 0


def loopback(scanner: Host, runs: int, report: Callable[[str], None]) -> None:
    """127.0.0.1 of the scanner host, all ports, one listener open."""
    scanner.listen(8000)
    times = []
    states: dict[int, str] = {}
    for _ in range(runs):
        elapsed, states = pps(scanner, "--connect", "-p-", "127.0.0.1")
        times.append(elapsed)
    ours = sorted(p for p, s in states.items() if s == "open")
    n_elapsed, n_states, _ = nmap(scanner, "-sT", "-p-", "127.0.0.1")
    theirs = sorted(p for p, s in n_states.items() if s == "open")
    report(
        f"loopback-connect 65535 ports: ppsguard best {min(times):.2f}s, "
        f"nmap -sT {n_elapsed:.2f}s, ratio {n_elapsed / min(times):.2f}x; "
        f"open ppsguard {ours} nmap {theirs}"
    )


def udp_compare(scanner: Host, udp: Host, report: Callable[[str], None]) -> None:
    """Our UDP top 100 against a host with DNS and SNMP responders (default ICMP rate limit)."""
    proc = udp.popen(
        [sys.executable, "-m", "ppsguard.scan.lab_responders", "--dns", "53", "--snmp", "161"],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    ports = ",".join(map(str, top_ports(100, Protocol.UDP)))
    elapsed, states = pps(scanner, "--udp", "-T4", "-p", f"U:{ports}", str(udp.ipv4))
    ours = sorted(p for p, s in states.items() if s == "open")
    n_elapsed, n_states, n_extra = nmap(scanner, "-sU", "-T4", "-p", f"U:{ports}", str(udp.ipv4))
    theirs = sorted(p for p, s in n_states.items() if s == "open")
    our_counts = dict(Counter(states.values()))
    their_counts = dict(Counter(n_states.values()))
    for state, count in n_extra.items():
        their_counts[state] = their_counts.get(state, 0) + count
    report(
        f"udp top-100: ppsguard {elapsed:.2f}s open {ours} states {our_counts}; "
        f"nmap -sU -T4 {n_elapsed:.2f}s open {theirs} states {their_counts}; "
        f"ratio {n_elapsed / elapsed:.1f}x; correct open (53, 161): {ours == [53, 161]}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
