"""Benchmark: `pps watch` against `conntrack -E` on a flood of short connections, scan detection
latency, and the detectors' memory with a million distinct sources.

In the lab (network namespaces only):
1. A load generator in one lab host opens and closes TCP connections to a listener in the
   watched host as fast as it can for 30 s (`--quick`: 5 s). `pps watch --jsonl` (stdout to a
   file) and `conntrack -E` (stdout to /dev/null; the anchor) watch the same namespace at once.
   Printed: the generator's rate; connections seen by pps watch (OPENED events) and lost (its
   LOST reports); events shown by conntrack -E (its own exit summary: every event the kernel
   emitted); CPU seconds of each and CPU per kernel event (both divided by that count: pps
   watch has the kernel drop the updates it never uses, so it reads fewer messages); pps
   watch's peak RSS. Targets: 0 events lost at the generator's full rate with the default
   buffer; CPU per kernel event <= 2x conntrack -E's.
2. `nmap -sS -p-` (`--quick`: -p 1-2000) from a third host: seconds from the 5th probe seen by
   the watch (its event time stamps) to the scan alert's arrival. Target: <= 1 s.
3. One million distinct remote sources (`--quick`: 100,000), each making one refused attempt,
   fed through the detectors in process (synthetic): events per second and peak RSS of that
   process. Target: peak RSS <= 250 MB.

    .venv/bin/python benchmarks/watch.py [--quick]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from ppsguard.lab.hosts import HostSpec, Lab, lab_unavailable_reason

LOAD = r"""
import socket, sys, time
address, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
end = time.monotonic() + seconds
made = 0
while time.monotonic() < end:
    for _ in range(100):
        s = socket.socket()
        try:
            s.connect((address, port))
            made += 1
        except OSError:
            pass
        finally:
            s.close()
print(made)
"""

MEMORY = r"""
import ipaddress, resource, sys, time
from ppsguard.model.events import Direction, Event, EventKind, EvidenceSource
from ppsguard.monitor.detectors import Detectors
count = int(sys.argv[1])
target = ipaddress.ip_address("198.18.0.2")
base = int(ipaddress.IPv4Address("198.18.0.0"))
detectors = Detectors()
started = time.perf_counter()
for n in range(count):
    source = ipaddress.IPv4Address(base + (n % 131072))
    if n >= 131072:
        source = ipaddress.IPv6Address((0x20010DB8 << 96) + n)
    opened = Event(n * 1e-4, EventKind.OPENED, EvidenceSource.SYNTHETIC, "tcp", source, 40000,
                   target, 22, Direction.INBOUND)
    detectors.feed(opened)
    detectors.feed(Event(n * 1e-4, EventKind.REFUSED, EvidenceSource.SYNTHETIC, "tcp", source,
                         40000, target, 22, Direction.INBOUND))
elapsed = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{count} {elapsed:.2f} {peak:.0f} {detectors.trw.evicted_sources}")
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start_watch(lab: Lab, out: Path) -> tuple[subprocess.Popen[bytes], object]:
    handle = out.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "ppsguard", "watch", "--netns", lab["target"].netns, "--jsonl"],
        stdout=handle,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 15
    while "ppsguard_watch" not in lab["target"].run(["nft", "list", "tables"]).stdout:
        if time.monotonic() > deadline:
            raise SystemExit("pps watch did not start")
        time.sleep(0.1)
    time.sleep(0.5)
    return process, handle


def stop(process: subprocess.Popen[bytes]) -> str:
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    return (err or b"").decode(errors="replace")


def flood(lab: Lab, seconds: float, workdir: Path) -> None:
    target = lab["target"]
    listener = target.listen(80)
    out = workdir / "flood.jsonl"
    watch, handle = start_watch(lab, out)
    anchor = subprocess.Popen(
        ["ip", "netns", "exec", target.netns, "conntrack", "-E"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(0.5)
    watch_cpu0, anchor_cpu0 = cpu_seconds(watch.pid), cpu_seconds(anchor.pid)
    made = int(
        lab["load"].run([sys.executable, "-c", LOAD, str(target.ipv4), "80", str(seconds)]).stdout
    )
    time.sleep(2.0)
    watch_cpu = cpu_seconds(watch.pid) - watch_cpu0
    anchor_cpu = cpu_seconds(anchor.pid) - anchor_cpu0
    rss = peak_rss_mb(watch.pid)
    anchor.send_signal(signal.SIGINT)
    _, anchor_err = anchor.communicate(timeout=30)
    watch_err = stop(watch)
    handle.close()  # type: ignore[attr-defined]
    listener.stop()
    read = re.search(r"(\d+) conntrack messages read", watch_err)
    messages = int(read.group(1)) if read else 0
    opened = lost = events = 0
    for line in out.read_text().splitlines():
        record = json.loads(line)
        if record["type"] != "event":
            continue
        events += 1
        if record["kind"] == "opened" and record.get("id.resp_p") == 80:
            opened += 1
        elif record["kind"] == "lost":
            lost += record.get("count", 0)
    match = re.search(r"(\d+) flow events", anchor_err.decode(errors="replace"))
    anchor_events = int(match.group(1)) if match else 0
    rate = made / seconds
    print(f"load: {made:,} connections in {seconds:g} s ({rate:,.0f}/s)")
    kernel_events = max(anchor_events, 1)  # what the kernel emitted: conntrack -E shows all
    print(
        f"pps watch: {opened:,} connections seen ({messages:,} conntrack messages read, the "
        f"rest dropped in the kernel; {events:,} events written), {lost:,} lost, CPU "
        f"{watch_cpu:.2f} s ({1e6 * watch_cpu / kernel_events:.1f} us per kernel event, "
        f"{1e6 * watch_cpu / max(messages, 1):.1f} us per message read), peak RSS {rss:.0f} MB"
    )
    print(
        f"conntrack -E: {anchor_events:,} events, CPU {anchor_cpu:.2f} s "
        f"({1e6 * anchor_cpu / kernel_events:.1f} us/event)"
    )
    ratio = watch_cpu / max(anchor_cpu, 1e-9)  # the same kernel events, watched by both
    missed = made - opened
    print(
        f"events lost: {max(missed, 0) if lost == 0 else lost:,} "
        f"-> {'met' if missed <= 0 and lost == 0 else 'NOT met'} (target 0)"
    )
    print(
        f"CPU per kernel event: {ratio:.2f}x conntrack -E's -> {'met' if ratio <= 2 else 'NOT met'}"
    )


def detection(lab: Lab, ports: str, workdir: Path) -> None:
    out = workdir / "scan.jsonl"
    watch, handle = start_watch(lab, out)
    arrivals: dict[str, float] = {}
    stop_reading = threading.Event()

    def follow() -> None:
        with out.open() as stream:
            while not stop_reading.is_set():
                line = stream.readline()
                if not line:
                    time.sleep(0.005)
                    continue
                record = json.loads(line)
                if record["type"] == "alert" and record["kind"] == "scan":
                    arrivals.setdefault("alert", time.time())
                    stop_reading.set()

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    scanner = lab["scanner"]
    nmap = scanner.popen(
        ["nmap", "-sS", "-n", "-Pn", "-T4", "-p", ports, str(lab["target"].ipv4)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    reader.join(30)
    nmap.wait(timeout=600)
    stop(watch)
    handle.close()  # type: ignore[attr-defined]
    opened = [
        json.loads(line)
        for line in out.read_text().splitlines()
        if '"opened"' in line and str(scanner.ipv4) in line
    ]
    seen: dict[int, float] = {}
    for record in opened:
        seen.setdefault(record["id.resp_p"], record["ts"])
    fifth = sorted(seen.values())[4] if len(seen) >= 5 else None
    if fifth is None or "alert" not in arrivals:
        print("detection: NOT met (no alert)")
        return
    latency = arrivals["alert"] - fifth
    print(
        f"detection of nmap -sS -p {ports}: alert {latency * 1000:.0f} ms after the 5th probe "
        f"-> {'met' if latency <= 1.0 else 'NOT met'} (target <= 1 s)"
    )


def memory(count: int) -> None:
    result = subprocess.run(
        [sys.executable, "-c", MEMORY, str(count)], capture_output=True, text=True, check=True
    )
    total, elapsed, peak, evicted = result.stdout.split()
    rate = int(total) * 2 / float(elapsed)
    print(
        f"detectors: {int(total):,} distinct sources ({2 * int(total):,} events) in {elapsed} s "
        f"({rate:,.0f} events/s), peak RSS {peak} MB, {int(evicted):,} walks evicted "
        f"-> {'met' if float(peak) <= 250 else 'NOT met'} (target <= 250 MB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 s of load, fewer ports/sources")
    args = parser.parse_args()
    reason = lab_unavailable_reason()
    if reason:
        raise SystemExit(f"benchmark needs the lab: {reason}")
    hosts = [
        HostSpec("target", ipv4="198.18.0.2"),
        HostSpec("load", ipv4="198.18.0.3"),
        HostSpec("scanner", ipv4="198.18.0.66"),
    ]
    with tempfile.TemporaryDirectory() as tmp, Lab(hosts) as lab:
        workdir = Path(tmp)
        flood(lab, 5.0 if args.quick else 30.0, workdir)
        lab["target"].listen(22)
        detection(lab, "1-2000" if args.quick else "-", workdir)
    memory(100_000 if args.quick else 1_000_000)
    print(f"(addresses: {ipaddress.ip_network('198.18.0.0/24')} lab only)")


if __name__ == "__main__":
    main()
