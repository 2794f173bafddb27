"""The proof of equivalence: the original rule set and the compiled draft, each in its own lab
host, answer the same real probes (`pps registry import --verify`).

    client (198.19.255.252 + every probe source) ──bridge── original  (198.19.255.253)
                                                   └──────── draft     (198.19.255.254)

The original is loaded as its own tool loads it (`Loader`: ipset restore + iptables-restore,
`nft -j -f`, real ufw or firewalld output); the draft is compiled to nftables and loaded with
`nft -f`. Both hosts run one responder (TCP accept, UDP echo) on every probed port, so each probe
ends accepted, rejected (RST or ICMP error) or dropped (silence). Bounded: at most `limit`
probes, 64 in flight, `timeout` seconds each, and a differing pair where one side was silent
probed again with 2.5 s (at most 200 pairs); the lab is removed afterwards, also on error.
"""

from __future__ import annotations

import errno
import ipaddress
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ppsguard.errors import RuntimeFailure
from ppsguard.importers.probes import Probe, ProbePlan, explain, plan_probes
from ppsguard.importers.rules import Imported
from ppsguard.lab.hosts import Host, HostSpec, Lab
from ppsguard.model.net import IPAddress

ORIGINAL, DRAFT, CLIENT = "198.19.255.253", "198.19.255.254", "198.19.255.252"
ORIGINAL6, DRAFT6, CLIENT6 = "2001:db8:ffff::fd", "2001:db8:ffff::fe", "2001:db8:ffff::fc"
WINDOW = 64
CONFIRM_TIMEOUT = 2.5
MAX_CONFIRM = 200
CONFIRM_ROUNDS = 3
REJECTED = {errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EACCES, errno.EPERM}

# A loader puts the original rule set into a host: (argv, stdin text) run in order, or a
# callable that does it (real ufw needs a private mount namespace).
Step = tuple[Sequence[str], str | None]
Loader = Sequence[Step] | Callable[[Host], None]


@dataclass(frozen=True, slots=True)
class Outcome:
    probe: Probe
    original: str
    draft: str
    explained: str | None


@dataclass(slots=True)
class VerifyReport:
    outcomes: list[Outcome] = field(default_factory=list)
    plan: ProbePlan = field(default_factory=ProbePlan)
    seconds: float = 0.0

    @property
    def differing(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.original != o.draft]

    @property
    def unexplained(self) -> list[Outcome]:
        return [o for o in self.differing if o.explained is None]


def _classify_tcp(sock: socket.socket) -> str:
    code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    return "accepted" if code == 0 else "rejected" if code in REJECTED else f"error {code}"


def run_probes(targets: Sequence[tuple[str, str, str, int]], timeout: float) -> list[str]:
    """(source, destination, protocol, port) attempts, `WINDOW` at a time; runs in the client."""
    results: list[str] = ["dropped"] * len(targets)
    for start in range(0, len(targets), WINDOW):
        selector = selectors.DefaultSelector()
        opened: list[socket.socket] = []
        try:
            for index in range(start, min(start + WINDOW, len(targets))):
                source, destination, protocol, port = targets[index]
                family = socket.AF_INET6 if ":" in destination else socket.AF_INET
                kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
                sock = socket.socket(family, kind)
                opened.append(sock)
                sock.setblocking(False)
                sock.bind((source, 0))
                if protocol == "tcp":
                    sock.connect_ex((destination, port))
                    selector.register(sock, selectors.EVENT_WRITE, index)
                else:
                    sock.connect((destination, port))
                    sock.send(b"pps-verify")
                    selector.register(sock, selectors.EVENT_READ, index)
            deadline = time.monotonic() + timeout
            while selector.get_map() and (left := deadline - time.monotonic()) > 0:
                for key, _ in selector.select(left):
                    ready = key.fileobj
                    if not isinstance(ready, socket.socket):
                        continue
                    sock = ready
                    if sock.type == socket.SOCK_STREAM:
                        results[key.data] = _classify_tcp(sock)
                    else:
                        try:
                            sock.recv(64)
                            results[key.data] = "accepted"
                        except OSError as exc:
                            rejected = exc.errno in REJECTED
                            results[key.data] = "rejected" if rejected else f"error {exc.errno}"
                    selector.unregister(sock)
        finally:
            selector.close()
            for sock in opened:
                sock.close()
    return results


def _responder(host: Host, plan: ProbePlan) -> None:
    tcp = sorted({p.port for p in plan.probes if p.protocol == "tcp"})
    udp = sorted({p.port for p in plan.probes if p.protocol == "udp"})
    argv = [sys.executable, "-m", "ppsguard.importers.responder",
            "--tcp", ",".join(map(str, tcp)), "--udp", ",".join(map(str, udp))]  # fmt: skip
    process = host.popen(argv, stdout=subprocess.PIPE)
    assert process.stdout is not None
    if not process.stdout.readline().startswith("READY"):
        raise RuntimeFailure(f"{host.name}: the probe responder did not start")


def _confirm(client: Host, targets: list[tuple[str, str, str, int]], fates: list[str]) -> list[str]:
    """Probe again, with CONFIRM_TIMEOUT, each pair whose fates differ and one is "dropped": a
    slow answer (Linux reports an ICMPv6 error to a TCP connect only after the SYN is resent,
    about 1 s) or a lost packet (an ICMP error the kernel did not send) must not read as a
    difference. Up to CONFIRM_ROUNDS rounds, half a second apart, each of the pairs that still
    differ; at most MAX_CONFIRM pairs."""
    fixed = list(fates)
    for round_number in range(CONFIRM_ROUNDS):
        pairs = [i for i in range(0, len(fixed), 2) if fixed[i] != fixed[i + 1]]
        pairs = [i for i in pairs if "dropped" in (fixed[i], fixed[i + 1])][:MAX_CONFIRM]
        if not pairs:
            break
        if round_number:
            time.sleep(0.5)
        again = [target for i in pairs for target in (targets[i], targets[i + 1])]
        answers = client.call(run_probes, again, CONFIRM_TIMEOUT, timeout=60 + len(again))
        for n, i in enumerate(pairs):
            fixed[i], fixed[i + 1] = answers[2 * n], answers[2 * n + 1]
    return fixed


def load_steps(host: Host, steps: Sequence[Step]) -> None:
    for argv, text in steps:
        host.run(list(argv), input=text)


def verify(
    imported: Imported,
    original: Loader,
    draft_nft: str,
    *,
    limit: int = 600,
    timeout: float = 0.4,
) -> VerifyReport:
    """Build the lab, load both rule sets, probe both, and compare every fate."""
    started = time.monotonic()
    outsiders: dict[int, IPAddress] = {
        4: ipaddress.ip_address(CLIENT),
        6: ipaddress.ip_address(CLIENT6),
    }
    avoid = {ipaddress.ip_address(a) for a in (ORIGINAL, DRAFT, ORIGINAL6, DRAFT6)}
    plan = plan_probes(imported, outsiders, avoid, limit=limit)
    specs = [
        HostSpec("original", ORIGINAL, ORIGINAL6),
        HostSpec("draft", DRAFT, DRAFT6),
        HostSpec("client", CLIENT, CLIENT6),
    ]
    report = VerifyReport(plan=plan)
    with Lab(specs, subnet4="198.18.0.0/15", subnet6="2001:db8::/32") as lab:
        client = lab["client"]
        for address in plan.sources:
            if str(address) not in (CLIENT, CLIENT6):
                client.add_address(f"{address}/{32 if address.version == 4 else 128}")
        for name in ("original", "draft"):
            host = lab[name]
            host.run(["sysctl", "-q", "-w", "net.ipv4.icmp_ratelimit=0"])
            host.run(["sysctl", "-q", "-w", "net.ipv6.icmp.ratelimit=0"])
            _responder(host, plan)
        if callable(original):
            original(lab["original"])
        else:
            load_steps(lab["original"], original)
        lab["draft"].nft(draft_nft)
        time.sleep(0.5)  # IPv6 neighbours of freshly added addresses settle
        targets: list[tuple[str, str, str, int]] = []
        for probe in plan.probes:
            six = ":" in probe.source
            for destination in (ORIGINAL6, DRAFT6) if six else (ORIGINAL, DRAFT):
                targets.append((probe.source, destination, probe.protocol, probe.port))
        fates = client.call(run_probes, targets, timeout, timeout=60 + len(targets) * timeout)
        fates = _confirm(client, targets, fates)
        for index, probe in enumerate(plan.probes):
            first, second = fates[2 * index], fates[2 * index + 1]
            why = explain(imported, probe) if first != second else None
            report.outcomes.append(Outcome(probe, first, second, why))
    report.seconds = time.monotonic() - started
    return report
