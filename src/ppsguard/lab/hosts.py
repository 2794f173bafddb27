"""The network lab: real hosts made of Linux network namespaces joined by a bridge.

Every later feature is tested here for real rather than mocked, and users practise here safely.

    with Lab(["scanner", "target"]) as lab:
        target = lab["target"]
        target.listen(80)                        # a real TCP listener inside the namespace
        target.nft("table inet t { ... }")       # a real nftables ruleset inside the namespace
        lab["scanner"].run(["nc", "-z", str(target.ipv4), "80"])

Topology: one "switch" namespace holds a bridge; each host namespace has `eth0`, a veth whose peer
is a bridge port. Nothing is created in the root namespace, so deleting the lab's namespaces
removes every interface with them. Addresses come only from 198.18.0.0/24 and 2001:db8::/64
(the benchmarking and documentation ranges); hosts are numbered from .1 unless given an address.

Every namespace is named `ppsl-<owner pid>-<lab id>-<host>` (namespaces.py: naming, housekeeping,
the can-the-lab-run-here probe). Teardown kills the processes the lab started (by pid), then every
process left inside its namespaces, then deletes the namespaces — also when the body of the `with`
raised. `clean_leftovers()` removes the labs of owners that no longer run (after a crash);
persistent labs made by `pps lab up` use owner 0 and go with `pps lab down`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ppsguard.errors import KernelFeatureMissing, RuntimeFailure, UsageError
from ppsguard.inventory.netns import resolve, run_in_netns
from ppsguard.lab.namespaces import (
    NETNS_DIR,
    PERSISTENT_OWNER,
    PREFIX,
    clean_leftovers,
    delete_namespace,
    inside_namespace,
    kill_pids,
    lab_unavailable_reason,
    list_lab_namespaces,
    persistent_labs,
    run_ip,
)

SUBNET4 = ipaddress.IPv4Network("198.18.0.0/24")
SUBNET6 = ipaddress.IPv6Network("2001:db8::/64")
RANGE4, RANGE6 = ipaddress.IPv4Network("198.18.0.0/15"), ipaddress.IPv6Network("2001:db8::/32")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class HostSpec:
    """A host to create: its short name and, optionally, fixed addresses."""

    name: str
    ipv4: str | None = None
    ipv6: str | None = None


class Listener:
    """A listener process inside a host (see `Host.listen`)."""

    def __init__(self, process: subprocess.Popen[str], port: int, protocol: str) -> None:
        self.process = process
        self.port = port
        self.protocol = protocol

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            kill_pids([self.process.pid])
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=2)


class Host:
    """One lab host: a network namespace with `eth0` on the lab's bridge."""

    def __init__(self, lab: Lab, name: str, netns: str, ipv4: str, ipv6: str) -> None:
        self.lab = lab
        self.name = name
        self.netns = netns
        self.ipv4 = ipaddress.IPv4Address(ipv4)
        self.ipv6 = ipaddress.IPv6Address(ipv6)

    def __repr__(self) -> str:
        return f"Host({self.name!r}, {self.ipv4}, {self.ipv6})"

    @property
    def netns_path(self) -> Path:
        return NETNS_DIR / self.netns

    def command(self, argv: Sequence[str]) -> list[str]:
        """The argv that runs `argv` inside this host."""
        return ["ip", "netns", "exec", self.netns, *argv]

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float = 120,
        input: str | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside this host and wait for it (output captured as text)."""
        result = subprocess.run(
            self.command(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            env=env,
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeFailure(
                f"{self.name}: {' '.join(argv)} exited {result.returncode}: "
                f"{(result.stderr or result.stdout).strip()[:2000]}"
            )
        return result

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[str]:
        """Start a command inside this host; the lab kills it (by pid) at teardown."""
        kwargs.setdefault("stdout", subprocess.DEVNULL)
        kwargs.setdefault("stderr", subprocess.DEVNULL)
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        kwargs.setdefault("text", True)
        process: subprocess.Popen[str] = subprocess.Popen(
            self.command(argv), start_new_session=True, **kwargs
        )
        self.lab.track(process)
        return process

    def listen(
        self,
        port: int,
        protocol: str = "tcp",
        address: str | None = None,
        *,
        banner: str | None = None,
        v6only: bool = False,
        ready_timeout: float = 10,
    ) -> Listener:
        """Start a real listener (ppsguard.testing.listener) and wait until it is bound.

        TCP listeners accept, send `banner` if given, echo what they read and close; UDP
        listeners echo each datagram. `address` defaults to `::` (dual-stack), or
        `0.0.0.0` when the namespace has no IPv6.
        """
        argv = [
            sys.executable,
            "-m",
            "ppsguard.testing.listener",
            "--protocol",
            protocol,
            "--address",
            address or "::",
            "--port",
            str(port),
        ]
        if banner is not None:
            argv += ["--banner", banner]
        if v6only:
            argv.append("--v6only")
        process = self.popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert process.stdout is not None
        ready = _read_line_with_timeout(process.stdout, ready_timeout)
        if not ready.startswith("READY"):
            err = process.stderr.read() if process.poll() is not None and process.stderr else ""
            kill_pids([process.pid])
            raise RuntimeFailure(
                f"{self.name}: listener {protocol}/{port} did not start: {ready!r} {err[:500]}"
            )
        return Listener(process, port, protocol)

    def nft(self, ruleset: str) -> None:
        """Load an nftables ruleset (text, as for `nft -f`) into this host."""
        self.run(["nft", "-f", "-"], input=ruleset)

    def add_address(self, address: str) -> None:
        """Add another address (with prefix length) to eth0, e.g. `198.18.0.50/24`."""
        extra = ["nodad"] if ":" in address else []
        self.run(["ip", "addr", "add", address, "dev", "eth0", *extra])

    def state(self) -> dict[str, str]:
        """This host's addresses, sockets and nftables ruleset, as the tools print them."""
        return {
            "addresses": self.run(["ip", "-brief", "addr"]).stdout,
            "sockets": self.run(["ss", "-tuanH"]).stdout,
            "nftables": self.run(["nft", "list", "ruleset"], check=False).stdout,
        }

    @contextlib.contextmanager
    def enter(self) -> Iterator[None]:
        """Run the current thread inside this host (see `inside_namespace`)."""
        with inside_namespace(self.netns_path):
            yield

    def call(self, function: Callable[..., T], *args: Any, timeout: float = 600) -> T:
        """Run `function(*args)` in a fresh thread inside this host and return its result."""
        return run_in_netns(resolve(self.netns), lambda: function(*args), timeout=timeout)


def _read_line_with_timeout(stream: Any, timeout: float) -> str:
    box: list[str] = []
    thread = threading.Thread(target=lambda: box.append(stream.readline()), daemon=True)
    thread.start()
    thread.join(timeout)
    return box[0] if box else ""


class Lab:
    """A set of hosts on one bridge, created on enter and removed on exit (also on error)."""

    def __init__(
        self,
        hosts: Sequence[str | HostSpec],
        *,
        owner: int | None = None,
        lab_id: str | None = None,
        subnet4: str | None = None,
        subnet6: str | None = None,
    ) -> None:
        specs = [h if isinstance(h, HostSpec) else HostSpec(h) for h in hosts]
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise UsageError("duplicate host name in lab", token=",".join(names))
        for name in names:
            if not name.isalnum() or len(name) > 20:
                raise UsageError("lab host names are letters and digits, at most 20", token=name)
        self.specs = specs
        # another subnet per lab (inside the lab ranges), e.g. 198.18.4.0/22 for sweeps
        self.subnet4 = ipaddress.IPv4Network(subnet4) if subnet4 else SUBNET4
        self.subnet6 = ipaddress.IPv6Network(subnet6) if subnet6 else SUBNET6
        if not (self.subnet4.subnet_of(RANGE4) and self.subnet6.subnet_of(RANGE6)):
            raise UsageError(f"lab subnets must be inside {RANGE4} and {RANGE6}")
        self.owner = os.getpid() if owner is None else owner
        self.lab_id = lab_id or secrets.token_hex(3)
        self.hosts: dict[str, Host] = {}
        self._processes: list[subprocess.Popen[str]] = []
        self._lock = threading.Lock()
        self.switch = f"{PREFIX}-{self.owner}-{self.lab_id}-sw"

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    @property
    def namespaces(self) -> list[str]:
        return [self.switch, *(h.netns for h in self.hosts.values())]

    def track(self, process: subprocess.Popen[str]) -> None:
        with self._lock:
            self._processes.append(process)

    def unused_ipv4(self) -> ipaddress.IPv4Address:
        """An address on the lab subnet that no host has (a dead host)."""
        used = {h.ipv4 for h in self.hosts.values()}
        for candidate in reversed(list(self.subnet4.hosts())):
            if candidate not in used:
                return candidate
        raise RuntimeFailure("lab subnet is full")

    def _addresses(self) -> list[tuple[str, str]]:
        taken4 = {s.ipv4 for s in self.specs if s.ipv4}
        taken6 = {s.ipv6 for s in self.specs if s.ipv6}
        numbers = iter(range(1, 250))
        result = []
        for spec in self.specs:
            v4, v6 = spec.ipv4, spec.ipv6
            while v4 is None:
                n = next(numbers)
                if str(self.subnet4[n]) not in taken4 and str(self.subnet6[n]) not in taken6:
                    v4 = str(self.subnet4[n])
                    v6 = v6 or str(self.subnet6[n])
            if v6 is None:
                v6 = str(self.subnet6[int(ipaddress.IPv4Address(v4)) & 0xFFFF])
            for value, net in ((v4, self.subnet4), (v6, self.subnet6)):
                if ipaddress.ip_address(value) not in net:
                    raise UsageError(f"lab addresses must be inside {net}", token=value)
            result.append((v4, v6))
        return result

    def start(self) -> Lab:
        reason = lab_unavailable_reason()
        if reason:
            raise KernelFeatureMissing(reason)
        try:
            self._build()
        except BaseException:
            self.stop()
            raise
        return self

    def _build(self) -> None:
        run_ip("netns", "add", self.switch)
        sw = ["-n", self.switch]
        run_ip(*sw, "link", "set", "lo", "up")
        run_ip(*sw, "link", "add", "br0", "type", "bridge")
        run_ip(*sw, "link", "set", "br0", "up")
        for index, (spec, (v4, v6)) in enumerate(zip(self.specs, self._addresses(), strict=True)):
            netns = f"{PREFIX}-{self.owner}-{self.lab_id}-{spec.name}"
            run_ip("netns", "add", netns)
            self.hosts[spec.name] = Host(self, spec.name, netns, v4, v6)
            port = f"p{index}"
            run_ip("-n", netns, "link", "add", "eth0", "type", "veth", "peer", "name", port,
                "netns", self.switch)  # fmt: skip
            run_ip(*sw, "link", "set", port, "master", "br0")
            run_ip(*sw, "link", "set", port, "up")
            h = ["-n", netns]
            run_ip(*h, "link", "set", "lo", "up")
            run_ip(*h, "addr", "add", f"{v4}/{self.subnet4.prefixlen}", "dev", "eth0")
            run_ip(*h, "addr", "add", f"{v6}/{self.subnet6.prefixlen}", "dev", "eth0", "nodad")
            run_ip(*h, "link", "set", "eth0", "up")

    def stop(self) -> None:
        """Kill what the lab started, then everything in its namespaces; delete them."""
        with self._lock:
            processes, self._processes = self._processes, []
        kill_pids([p.pid for p in processes if p.poll() is None])
        for process in processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=1)
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()
        for name in list_lab_namespaces():
            if name.startswith(f"{PREFIX}-{self.owner}-{self.lab_id}-"):
                delete_namespace(name)

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# The lab's public face: hosts and labs from here, the namespace housekeeping re-exported from
# namespaces.py (`from ppsguard.lab.hosts import Lab, lab_unavailable_reason`, `pps lab down`).
__all__ = [
    "PERSISTENT_OWNER",
    "SUBNET4",
    "SUBNET6",
    "Host",
    "HostSpec",
    "Lab",
    "Listener",
    "clean_leftovers",
    "delete_namespace",
    "lab_unavailable_reason",
    "list_lab_namespaces",
    "persistent_labs",
]
