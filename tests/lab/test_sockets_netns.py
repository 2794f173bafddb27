"""Listeners in two lab hosts show up in the right namespace, via the API and `pps sockets`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

from ppsguard.inventory import collect
from ppsguard.inventory.netns import resolve, run_in_netns
from ppsguard.testing.pytest_plugin import LabFactory

pytestmark = pytest.mark.lab


def _ns_inode(path: object) -> int:
    return os.stat(str(path)).st_ino


def test_all_netns_attributes_each_listener_to_its_namespace(lab_factory: LabFactory) -> None:
    lab = lab_factory(["a", "b"])
    a, b = lab["a"], lab["b"]
    in_a = a.listen(7101, "tcp", "0.0.0.0")
    in_b = b.listen(7102, "udp", "::")
    inventory = collect(all_netns=True, port=None)
    by_port = {(r.protocol.value, r.local_port): r for r in inventory.records}
    tcp_a = by_port[("tcp", 7101)]
    udp_b = by_port[("udp", 7102)]
    assert tcp_a.netns.inode == _ns_inode(a.netns_path)
    assert tcp_a.netns.name == a.netns
    assert udp_b.netns.inode == _ns_inode(b.netns_path)
    assert udp_b.netns.name == b.netns
    assert [o.pid for o in tcp_a.owners] == [in_a.pid]
    assert [o.pid for o in udp_b.owners] == [in_b.pid]
    assert {a.netns, b.netns} <= {ns.name for ns in inventory.namespaces}
    # The caller's thread never left its namespace.
    assert os.stat("/proc/thread-self/ns/net").st_ino == os.stat("/proc/self/ns/net").st_ino


def test_netns_option_picks_one_namespace(lab_factory: LabFactory) -> None:
    lab = lab_factory(["a", "b"])
    lab["a"].listen(7111, "tcp", "0.0.0.0")
    lab["b"].listen(7112, "tcp", "0.0.0.0")
    ports = {r.local_port for r in collect(netns=lab["a"].netns).records}
    assert 7111 in ports
    assert 7112 not in ports


def test_cli_all_netns_json(lab_factory: LabFactory) -> None:
    lab = lab_factory(["a", "b"])
    listener = lab["b"].listen(7121, "tcp", str(lab["b"].ipv4))
    result = subprocess.run(
        [sys.executable, "-m", "ppsguard", "sockets", "--all-netns", "--tcp", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    rows = json.loads(result.stdout)
    (row,) = [r for r in rows if r["local_port"] == 7121]
    required = {
        "protocol", "family", "state", "role", "local_address", "local_port", "remote_address",
        "remote_port", "exposure", "netns", "inode", "uid", "user", "owners", "unit",
        "port_range", "service",
    }  # fmt: skip
    assert required <= row.keys()
    assert row["netns"]["name"] == lab["b"].netns
    assert row["exposure"] == "specific"
    assert row["local_address"] == str(lab["b"].ipv4)
    assert (row["state"], row["role"]) == ("LISTEN", "passive")
    assert [o["pid"] for o in row["owners"]] == [listener.pid]
    assert set(row["owners"][0]) == {"pid", "comm", "exe", "cmdline", "user", "uid"}


def test_run_in_netns_leaves_caller_thread_alone(lab_factory: LabFactory) -> None:
    lab = lab_factory(["a"])
    target = resolve(lab["a"].netns)
    before = os.stat("/proc/thread-self/ns/net").st_ino
    seen = run_in_netns(target, lambda: os.stat("/proc/thread-self/ns/net").st_ino)
    assert seen == target.inode != before
    with pytest.raises(ZeroDivisionError):
        run_in_netns(target, lambda: 1 // 0)
    assert os.stat("/proc/thread-self/ns/net").st_ino == before
    worker_ns: list[int] = []
    thread = threading.Thread(
        target=lambda: worker_ns.append(os.stat("/proc/thread-self/ns/net").st_ino)
    )
    thread.start()
    thread.join(10)
    assert worker_ns == [before]
