"""Owners for real: a pre-fork server's 51 holders; an unprivileged run lists what it can."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from ppsguard.inventory import collect
from ppsguard.testing.pytest_plugin import LabFactory

pytestmark = pytest.mark.lab

PREFORK = r"""
import ctypes, os, signal, socket, sys, time
port, workers = int(sys.argv[1]), int(sys.argv[2])
libc = ctypes.CDLL(None)
sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("0.0.0.0", port))
sock.listen()
children = []
for _ in range(workers):
    pid = os.fork()
    if pid == 0:
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the parent
        time.sleep(120)
        os._exit(0)
    children.append(pid)
print("READY " + " ".join(map(str, children)), flush=True)
time.sleep(120)
"""


def test_prefork_listener_lists_every_holder(lab_factory: LabFactory) -> None:
    lab = lab_factory(["a"])
    server = lab["a"].popen(
        [sys.executable, "-c", PREFORK, "7301", "50"], stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    line = server.stdout.readline()
    assert line.startswith("READY"), line
    children = [int(word) for word in line.split()[1:]]
    assert len(children) == 50
    (record,) = collect(netns=lab["a"].netns, port=7301, protocols=["tcp"]).records  # type: ignore[list-item]
    assert sorted(o.pid for o in record.owners) == sorted([server.pid, *children])
    assert len(record.owners) == 51
    first = collect(netns=lab["a"].netns, port=7301, owners="first").records[0]
    assert len(first.owners) >= 1


NOBODY_LISTENER = (
    "import socket,time; s=socket.socket(); s.bind(('127.0.0.1', 7312)); s.listen(); "
    "print('READY', flush=True); time.sleep(120)"
)


def test_not_root_lists_sockets_and_own_owners(lab_factory: LabFactory) -> None:
    lab = lab_factory(["a"])
    host = lab["a"]
    root_listener = host.listen(7311, "tcp", "0.0.0.0")
    drop = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    mine = host.popen([*drop, sys.executable, "-c", NOBODY_LISTENER], stdout=subprocess.PIPE)
    assert mine.stdout is not None
    assert mine.stdout.readline().startswith("READY")
    env = {**os.environ, "NO_COLOR": "1"}
    result = host.run(
        [*drop, sys.executable, "-m", "ppsguard", "sockets", "--tcp", "--json"], env=env
    )
    rows = {r["local_port"]: r for r in json.loads(result.stdout)}
    assert {7311, 7312} <= rows.keys()
    assert [o["pid"] for o in rows[7312]["owners"]] == [mine.pid]
    assert rows[7312]["owners"][0]["user"] == "nobody"
    assert rows[7311]["owners"] == []  # root's process: not readable by nobody
    assert rows[7311]["kernel_owned"] is False
    assert "could not be read (run as root)" in " ".join(result.stderr.split())
    assert root_listener.pid > 0
    # --all-netns as nobody still works and says what it could not see.
    deadline = time.monotonic() + 60
    result = host.run(
        [*drop, sys.executable, "-m", "ppsguard", "sockets", "--all-netns", "--json"],
        env=env,
        timeout=max(1.0, deadline - time.monotonic()),
    )
    warnings = " ".join(result.stderr.split())
    assert "not inspected" in warnings or "could not be read" in warnings
    assert 7312 in {r["local_port"] for r in json.loads(result.stdout)}


def test_processes_exiting_mid_walk_do_not_crash(lab_factory: LabFactory) -> None:
    from ppsguard.inventory.owners import list_pids, walk

    lab = lab_factory(["a"])
    listeners = [lab["a"].listen(7320 + i, "tcp", "0.0.0.0") for i in range(5)]
    doomed = {listener.pid: listener for listener in listeners[:3]}
    survivors = listeners[3:]
    inodes = {r.inode for r in collect(netns=lab["a"].netns, owners=False).records}

    def stop_some(pid: int) -> None:
        listener = doomed.pop(pid, None)
        if listener is not None:
            listener.stop()  # the process (and its fds) vanish just before we read them

    pids = sorted({*list_pids(), *(listener.pid for listener in listeners)})
    found = walk(inodes, pids=pids, before_pid=stop_some)
    assert not doomed
    assert found.vanished >= 3
    holders = {pid for pids_ in found.holders.values() for pid in pids_}
    assert {s.pid for s in survivors} <= holders
    assert not holders & {listener.pid for listener in listeners[:3]}
    after = collect(netns=lab["a"].netns)
    assert {r.local_port for r in after.records} >= {7323, 7324}
