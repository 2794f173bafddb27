"""Helpers of the `pps harden` lab tests: cgroups shaped like systemd's, shared sockets.

`systemd_cgroup(pid, "system.slice/foo.service")` makes that cgroup in the real cgroup v2 tree
(as systemd would for a unit), moves `pid` into it, and removes it afterwards (the slices it had
to create too, when they are empty). `shared_listener` starts a process that binds a real
socket and hands it to a child, as systemd hands a socket unit's socket to the service it
activates: both then hold the same listening socket.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ppsguard.lab.hosts import Host
from ppsguard.lab.namespaces import kill_pids
from ppsguard.testing.pytest_plugin import lab_required


def cgroup2_mount() -> Path | None:
    """Where the cgroup v2 tree is mounted (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified`)."""
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        for line in handle:
            fields = line.split()
            if " - cgroup2 " in line and len(fields) > 4 and fields[3] == "/":
                return Path(fields[4])
    return None


def _unavailable(reason: str) -> None:
    if lab_required():
        pytest.fail(f"PPSGUARD_REQUIRE_LAB=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@contextlib.contextmanager
def systemd_cgroup(pids: list[int], relative: str) -> Iterator[Path]:
    """Move `pids` into the cgroup `/<relative>` (e.g. `system.slice/foo.service`)."""
    mount = cgroup2_mount()
    if mount is None:
        _unavailable("no cgroup v2 tree is mounted")
    assert mount is not None
    made: list[Path] = []
    directory = mount
    for part in relative.strip("/").split("/"):
        directory = directory / part
        if not directory.exists():
            try:
                directory.mkdir()
            except OSError as error:
                _unavailable(f"cannot create cgroup {directory}: {error.strerror}")
            made.append(directory)
    try:
        for pid in pids:
            (directory / "cgroup.procs").write_text(f"{pid}\n", encoding="ascii")
        yield directory
    finally:
        for folder in reversed(made):
            for _ in range(100):  # bounded: ~10 s
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # still populated: move what is left to the root, retry
                    with contextlib.suppress(OSError):
                        for left in (folder / "cgroup.procs").read_text().split():
                            (mount / "cgroup.procs").write_text(f"{left}\n", encoding="ascii")
                    if folder != directory:  # a slice another test may be using: leave it
                        break
                    time.sleep(0.1)


SHARED = """
import socket, subprocess, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(16)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                         pass_fds=[s.fileno()])
print("READY", child.pid, flush=True)
child.wait()
"""


def shared_listener(host: Host, port: int) -> tuple[subprocess.Popen[str], int]:
    """A parent ("init") and a child both holding one listening socket; (parent, child pid)."""
    process = host.popen(
        [sys.executable, "-c", SHARED, str(port)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    line = process.stdout.readline().split()
    if len(line) != 2 or line[0] != "READY":
        kill_pids([process.pid])
        raise RuntimeError(f"shared listener on {port} did not start: {line}")
    return process, int(line[1])  # the lab's teardown ends both (everything in its netns)


def wait_listening(host: Host, port: int, timeout_s: float = 20.0) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        out = host.run(["ss", "-Hltn", f"sport = :{port}"], check=False, timeout=10).stdout
        if out.strip():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{host.name}: nothing listening on tcp/{port} after {timeout_s} s")
