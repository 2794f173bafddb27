"""Container attribution for real: a lab host's listener placed in a docker-shaped cgroup.

The test creates a real cgroup named as docker's systemd driver names a container's scope
(`docker-<64 hex>.scope`, under `system.slice` when the cgroup v2 tree has one, else at its top),
moves the listener's process into it, and checks that `collect(all_netns=True)` and
`pps sockets --all-netns --json` attribute the host's namespace to that "container", with the
record's cgroup and unit read from the same path. The cgroup is removed afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ppsguard.inventory import collect
from ppsguard.inventory.netns import resolve
from ppsguard.model.sockets import ContainerRef
from ppsguard.testing.pytest_plugin import LabFactory

pytestmark = pytest.mark.lab


def _cgroup2_mount() -> Path | None:
    """Where the cgroup v2 tree is mounted (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified`)."""
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        for line in handle:
            fields = line.split()
            if " - cgroup2 " in line and len(fields) > 4 and fields[3] == "/":
                return Path(fields[4])
    return None


@contextlib.contextmanager
def docker_shaped_cgroup(pid: int) -> Iterator[tuple[str, Path]]:
    """Move `pid` into a new cgroup `.../docker-<64 hex>.scope`; yield (id, directory).

    Afterwards, whatever is still in it goes back to the parent and the directory is removed.
    """
    mount = _cgroup2_mount()
    if mount is None:
        pytest.skip("no cgroup v2 tree mounted: container attribution is covered by unit tests")
    parent = mount / "system.slice" if (mount / "system.slice").is_dir() else mount
    hex_id = secrets.token_hex(32)
    directory = parent / f"docker-{hex_id}.scope"
    try:
        directory.mkdir()
    except OSError as error:
        pytest.skip(f"cannot create a cgroup here ({error.strerror}): unit tests cover the parser")
    try:
        (directory / "cgroup.procs").write_text(f"{pid}\n", encoding="ascii")
        yield hex_id, directory
    finally:
        for _ in range(100):  # bounded: ~10 s
            try:
                directory.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:  # still populated: move the remaining processes out, retry
                with contextlib.suppress(OSError):
                    for left in (directory / "cgroup.procs").read_text().split():
                        (parent / "cgroup.procs").write_text(f"{left}\n", encoding="ascii")
                time.sleep(0.1)
        assert not directory.exists(), f"cgroup {directory} left behind"


def test_listener_in_docker_scope_names_the_container(lab_factory: LabFactory) -> None:
    lab = lab_factory(["a", "b"])
    in_a = lab["a"].listen(7301, "tcp", "0.0.0.0")
    lab["b"].listen(7302, "tcp", "0.0.0.0")
    try:
        with docker_shaped_cgroup(in_a.pid) as (hex_id, _directory):
            cgroup_text = Path(f"/proc/{in_a.pid}/cgroup").read_text(encoding="utf-8")
            assert f"docker-{hex_id}.scope" in cgroup_text  # the kernel really moved it
            expected = ContainerRef("docker", hex_id[:12])

            inventory = collect(all_netns=True)
            by_port = {r.local_port: r for r in inventory.records if r.protocol.value == "tcp"}
            rec_a, rec_b = by_port[7301], by_port[7302]
            assert rec_a.netns.container == expected
            assert rec_a.netns.name == lab["a"].netns  # the /run/netns name is kept too
            assert rec_b.netns.container is None
            assert [o.pid for o in rec_a.owners] == [in_a.pid]
            assert rec_a.cgroup is not None
            assert rec_a.cgroup.endswith(f"/docker-{hex_id}.scope")
            assert rec_a.unit == f"docker-{hex_id}.scope"
            assert expected in {ns.container for ns in inventory.namespaces}

            # The label the table shows also picks the namespace.
            assert resolve(f"docker:{hex_id[:12]}").inode == rec_a.netns.inode
            only = collect(netns=f"docker:{hex_id[:12]}")
            assert 7301 in {r.local_port for r in only.records}
            assert 7302 not in {r.local_port for r in only.records}

            result = subprocess.run(
                [sys.executable, "-m", "ppsguard", "sockets", "--all-netns", "--tcp", "--json"],
                capture_output=True,
                text=True,
                timeout=120,
                check=True,
            )
            rows = {r["local_port"]: r for r in json.loads(result.stdout)}
            assert rows[7301]["netns"]["container"] == {
                "runtime": "docker",
                "id": hex_id[:12],
                "name": None,
            }
            assert rows[7301]["unit"] == f"docker-{hex_id}.scope"
            assert rows[7302]["netns"]["container"] is None

            table = subprocess.run(
                [sys.executable, "-m", "ppsguard", "sockets", "--all-netns", "--port", "7301"],
                capture_output=True,
                text=True,
                timeout=120,
                check=True,
                env={**os.environ, "COLUMNS": "200"},
            )
            assert f"(docker:{hex_id[:12]})" in table.stdout
    finally:
        in_a.stop()


def test_host_network_container_does_not_claim_the_callers_namespace() -> None:
    """A "container" process sharing the caller's namespace (docker --network host) does not
    make that namespace the container's."""
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        with docker_shaped_cgroup(sleeper.pid) as (hex_id, _directory):
            own = os.stat("/proc/self/ns/net").st_ino
            namespaces = {ns.inode: ns for ns in collect(all_netns=True).namespaces}
            assert namespaces[own].container is None
            assert all(
                ns.container != ContainerRef("docker", hex_id[:12]) for ns in namespaces.values()
            )
    finally:
        sleeper.kill()
        sleeper.wait(timeout=10)
