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

Every namespace is named `ppsl-<owner pid>-<lab id>-<host>`. Teardown kills the processes the lab
started (by pid), then every process left inside its namespaces, then deletes the namespaces — also
when the body of the `with` raised. `clean_leftovers()` removes the labs of owners that no longer
run (after a crash); persistent labs made by `pps lab up` use owner 0 and go with `pps lab down`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ppsguard.errors import KernelFeatureMissing, PermissionDenied, RuntimeFailure, UsageError
from ppsguard.inventory.netns import resolve, run_in_netns, setns_current_thread

PREFIX = "ppsl"
SUBNET4 = ipaddress.IPv4Network("198.18.0.0/24")
SUBNET6 = ipaddress.IPv6Network("2001:db8::/64")
PERSISTENT_OWNER = 0
NETNS_DIR = Path("/run/netns")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class HostSpec:
    """A host to create: its short name and, optionally, fixed addresses."""

    name: str
    ipv4: str | None = None
    ipv6: str | None = None


def _ip(*args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", *args], capture_output=True, text=True, check=check, timeout=timeout
    )


def list_lab_namespaces() -> list[str]:
    """Names of the namespaces that belong to any lab (the common prefix)."""
    if not NETNS_DIR.is_dir():
        return []
    return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(PREFIX + "-"))


def _namespace_owner(name: str) -> int | None:
    parts = name.split("-")
    if len(parts) < 4 or not parts[1].isdigit():
        return None
    return int(parts[1])


def _pid_alive(pid: int) -> bool:
    if pid == PERSISTENT_OWNER:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _pids_in_namespace(name: str) -> list[int]:
    result = _ip("netns", "pids", name, check=False)
    return [int(word) for word in result.stdout.split() if word.isdigit()]


def _kill_pids(pids: Sequence[int], grace_s: float = 2.0) -> None:
    """SIGTERM, wait up to `grace_s`, then SIGKILL what is left. Only pids the lab owns."""
    alive = [pid for pid in pids if pid != os.getpid()]
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in alive if _reap_or_alive(pid)]
        if alive:
            time.sleep(0.05)
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for pid in alive:
        _reap_or_alive(pid)


def _reap_or_alive(pid: int) -> bool:
    try:
        done, _status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return _pid_alive(pid) and not _is_zombie(pid)
    return done == 0


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def delete_namespace(name: str) -> None:
    """Kill every process inside a lab namespace, then delete it (idempotent)."""
    if not name.startswith(PREFIX + "-"):
        raise UsageError("refusing to delete a namespace outside the lab", token=name)
    for _ in range(3):
        pids = _pids_in_namespace(name)
        if not pids:
            break
        _kill_pids(pids)
    _ip("netns", "del", name, check=False)


def clean_leftovers(*, include_live: bool = False) -> list[str]:
    """Delete lab namespaces whose owner process is gone (all of them with `include_live`).

    Persistent labs (owner 0, from `pps lab up`) count as live. Returns the names removed.
    """
    removed = []
    for name in list_lab_namespaces():
        owner = _namespace_owner(name)
        if include_live or owner is None or not _pid_alive(owner):
            delete_namespace(name)
            removed.append(name)
    return removed


_probe_cache: dict[str, str | None] = {}


def lab_unavailable_reason() -> str | None:
    """Why the lab cannot run here (None when it can): needs root, iproute2 and netns support."""
    if "reason" in _probe_cache:
        return _probe_cache["reason"]
    reason: str | None = None
    if os.geteuid() != 0:
        reason = "the network lab needs root (network namespaces)"
    elif shutil.which("ip") is None:
        reason = "the network lab needs iproute2's `ip` (apt-get install iproute2)"
    else:
        probe = f"{PREFIX}-{os.getpid()}-probe-x"
        result = _ip("netns", "add", probe, check=False)
        if result.returncode != 0:
            reason = f"cannot create a network namespace: {result.stderr.strip()}"
        else:
            _ip("netns", "del", probe, check=False)
    _probe_cache["reason"] = reason
    return reason


@contextlib.contextmanager
def inside_namespace(path: Path) -> Iterator[None]:
    """Run the current THREAD inside the network namespace at `path`, and return it afterwards.

    setns(CLONE_NEWNET) is per thread; sockets created inside keep their namespace after the
    thread returns. Use from a dedicated thread (see `Host.call`) so no other code of the
    process ever runs in the wrong namespace; if switching back fails the process aborts
    rather than continue in a namespace it did not ask for.
    """
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(path, os.O_RDONLY)
        try:
            setns_current_thread(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            try:
                setns_current_thread(own)
            except PermissionDenied:  # pragma: no cover - cannot happen as root
                os.abort()
    finally:
        os.close(own)


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
            _kill_pids([self.process.pid])
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
            _kill_pids([process.pid])
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
    ) -> None:
        specs = [h if isinstance(h, HostSpec) else HostSpec(h) for h in hosts]
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise UsageError("duplicate host name in lab", token=",".join(names))
        for name in names:
            if not name.isalnum() or len(name) > 20:
                raise UsageError("lab host names are letters and digits, at most 20", token=name)
        self.specs = specs
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
        for candidate in reversed(list(SUBNET4.hosts())):
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
                if str(SUBNET4[n]) not in taken4 and str(SUBNET6[n]) not in taken6:
                    v4 = str(SUBNET4[n])
                    v6 = v6 or str(SUBNET6[n])
            if v6 is None:
                v6 = str(SUBNET6[int(ipaddress.IPv4Address(v4)) & 0xFFFF])
            for value, net in ((v4, SUBNET4), (v6, SUBNET6)):
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
        _ip("netns", "add", self.switch)
        sw = ["-n", self.switch]
        _ip(*sw, "link", "set", "lo", "up")
        _ip(*sw, "link", "add", "br0", "type", "bridge")
        _ip(*sw, "link", "set", "br0", "up")
        for index, (spec, (v4, v6)) in enumerate(zip(self.specs, self._addresses(), strict=True)):
            netns = f"{PREFIX}-{self.owner}-{self.lab_id}-{spec.name}"
            _ip("netns", "add", netns)
            self.hosts[spec.name] = Host(self, spec.name, netns, v4, v6)
            port = f"p{index}"
            _ip("-n", netns, "link", "add", "eth0", "type", "veth", "peer", "name", port,
                "netns", self.switch)  # fmt: skip
            _ip(*sw, "link", "set", port, "master", "br0")
            _ip(*sw, "link", "set", port, "up")
            h = ["-n", netns]
            _ip(*h, "link", "set", "lo", "up")
            _ip(*h, "addr", "add", f"{v4}/{SUBNET4.prefixlen}", "dev", "eth0")
            _ip(*h, "addr", "add", f"{v6}/{SUBNET6.prefixlen}", "dev", "eth0", "nodad")
            _ip(*h, "link", "set", "eth0", "up")

    def stop(self) -> None:
        """Kill what the lab started, then everything in its namespaces; delete them."""
        with self._lock:
            processes, self._processes = self._processes, []
        _kill_pids([p.pid for p in processes if p.poll() is None])
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


def persistent_labs() -> dict[str, list[str]]:
    """Labs made by `pps lab up` (owner 0): lab id -> namespace names."""
    labs: dict[str, list[str]] = {}
    for name in list_lab_namespaces():
        parts = name.split("-")
        if _namespace_owner(name) == PERSISTENT_OWNER:
            labs.setdefault(parts[2], []).append(name)
    return labs
