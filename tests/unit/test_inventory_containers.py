"""Container attribution from /proc/<pid>/cgroup text (pure parser), and how it is shown."""

# ruff: noqa: E501 -- the table keeps each real-shaped cgroup line on one row

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ppsguard.cli.sockets import netns_label
from ppsguard.inventory.containers import container_of_path, parse_container
from ppsguard.inventory.netns import container_of_pid
from ppsguard.inventory.procfs import parse_cgroup, unit_of
from ppsguard.model.sockets import ContainerRef, NetnsInfo

ID = "3f2a1b9c0d4e" + "5a6b7c8d9e0f" * 4 + "0123"  # 64 hex
SHORT = ID[:12]
POD_UID = "7c1d6e4b-1e2f-4a5b-8c9d-0e1f2a3b4c5d"

# v1 hybrid layout as docker's cgroupfs driver writes it (trimmed to a few controllers).
DOCKER_V1 = f"""\
12:pids:/docker/{ID}
11:memory:/docker/{ID}
4:cpu,cpuacct:/docker/{ID}
1:name=systemd:/docker/{ID}
0::/system.slice/containerd.service
"""

CASES = [
    pytest.param(f"0::/system.slice/docker-{ID}.scope\n", ContainerRef("docker", SHORT), id="docker-v2-systemd"),
    pytest.param(f"0::/docker/{ID}\n", ContainerRef("docker", SHORT), id="docker-v2-cgroupfs"),
    pytest.param(DOCKER_V1, ContainerRef("docker", SHORT), id="docker-v1-cgroupfs"),
    pytest.param(
        f"1:name=systemd:/system.slice/docker-{ID}.scope\n0::/system.slice/docker-{ID}.scope\n",
        ContainerRef("docker", SHORT),
        id="docker-hybrid",
    ),
    pytest.param(f"0::/system.slice/docker-{ID}.scope/init.scope\n", ContainerRef("docker", SHORT), id="docker-nested-init"),
    pytest.param(
        "0::/kubepods.slice/kubepods-burstable.slice/"
        f"kubepods-burstable-pod{POD_UID.replace('-', '_')}.slice/cri-containerd-{ID}.scope\n",
        ContainerRef("containerd", SHORT),
        id="k8s-containerd-systemd",
    ),
    pytest.param(
        f"0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{POD_UID.replace('-', '_')}.slice/crio-{ID}.scope\n",
        ContainerRef("cri-o", SHORT),
        id="k8s-crio",
    ),
    pytest.param(
        f"11:memory:/kubepods/burstable/pod{POD_UID}/{ID}\n1:name=systemd:/kubepods/burstable/pod{POD_UID}/{ID}\n",
        ContainerRef("kubernetes", SHORT),
        id="k8s-cgroupfs-v1",
    ),
    pytest.param(
        f"0::/kubepods.slice/kubepods-pod{POD_UID.replace('-', '_')}.slice\n",
        ContainerRef("kubernetes", f"pod{POD_UID}"),
        id="k8s-pod-only",
    ),
    pytest.param(f"0::/machine.slice/libpod-{ID}.scope/container\n", ContainerRef("podman", SHORT), id="podman-v2"),
    pytest.param(f"0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope\n", ContainerRef("podman", SHORT), id="podman-rootless"),
    pytest.param(f"3:cpu:/libpod_parent/libpod-{ID}\n", ContainerRef("podman", SHORT), id="podman-cgroupfs"),
    pytest.param(f"0::/machine.slice/libpod-conmon-{ID}.scope\n", None, id="podman-conmon-not-container"),
    pytest.param("0::/lxc.payload.web1\n", ContainerRef("lxc", "web1", "web1"), id="lxc4-v2"),
    pytest.param("0::/lxc.payload.web1/system.slice/nginx.service\n", ContainerRef("lxc", "web1", "web1"), id="lxc4-inner-unit"),
    pytest.param("0::/lxc.monitor.web1\n", None, id="lxc-monitor-not-container"),
    pytest.param("5:memory:/lxc/db\n1:name=systemd:/lxc/db\n", ContainerRef("lxc", "db", "db"), id="lxc-v1"),
    pytest.param(
        "0::/machine.slice/machine-build\\x2dbox.scope/payload\n",
        ContainerRef("nspawn", "build-box", "build-box"),
        id="nspawn-escaped",
    ),
    pytest.param("0::/system.slice/ssh.service\n", None, id="plain-service"),
    pytest.param("0::/system.slice/docker.service\n", None, id="docker-daemon-not-container"),
    pytest.param("0::/user.slice/user-1000.slice/session-2.scope\n", None, id="session"),
    pytest.param("0::/\n", None, id="root"),
    pytest.param("0::/docker/not-an-id\n", None, id="docker-bad-id"),
    pytest.param(f"0::/system.slice/docker-{ID[:63]}.scope\n", None, id="docker-short-id"),
    pytest.param("", None, id="empty"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_parse_container(text: str, expected: ContainerRef | None) -> None:
    assert parse_container(text) == expected


def test_docker_in_docker_reports_the_inner_container() -> None:
    inner = "ab" * 32
    assert container_of_path(f"/docker/{ID}/docker/{inner}") == ContainerRef("docker", inner[:12])


def test_v2_line_wins_over_v1() -> None:
    other = "cd" * 32
    text = f"1:name=systemd:/docker/{other}\n0::/system.slice/docker-{ID}.scope\n"
    assert parse_container(text) == ContainerRef("docker", SHORT)


@pytest.mark.parametrize(
    ("text", "cgroup", "unit"),
    [
        ("0::/system.slice/nginx.service\n", "/system.slice/nginx.service", "nginx.service"),
        (f"0::/system.slice/docker-{ID}.scope\n", f"/system.slice/docker-{ID}.scope", f"docker-{ID}.scope"),
        ("1:name=systemd:/system.slice/cron.service\n0::/\n", "/", None),
        ("1:name=systemd:/system.slice/cron.service\n", "/system.slice/cron.service", "cron.service"),
    ],
)  # fmt: skip
def test_cgroup_and_unit_of_the_same_text(text: str, cgroup: str, unit: str | None) -> None:
    assert parse_cgroup(text) == cgroup
    assert unit_of(parse_cgroup(text)) == unit


@given(st.text(max_size=400))
def test_never_crashes_on_arbitrary_text(text: str) -> None:
    found = parse_container(text)
    assert found is None or (isinstance(found, ContainerRef) and found.runtime and found.id)


@given(
    st.lists(
        st.sampled_from(["docker", "lxc", "lxc.payload.", "machine-", ".scope", "kubepods", "pod",
                         "libpod-", "crio-", "/", ":", "\n", "0", "name=systemd", ID, "\\x2d"]),
        max_size=40,
    )
)  # fmt: skip
def test_never_crashes_on_cgroup_shaped_text(pieces: list[str]) -> None:
    found = parse_container("".join(pieces))
    assert found is None or str(found).startswith(f"{found.runtime}:")


@given(st.text(alphabet="0123456789abcdef", min_size=64, max_size=64))
def test_any_docker_id_is_shortened_to_12(hex_id: str) -> None:
    assert parse_container(f"0::/system.slice/docker-{hex_id}.scope\n") == ContainerRef(
        "docker", hex_id[:12]
    )


def test_own_process_cgroup_is_read_and_parsed() -> None:
    """A real /proc/<pid>/cgroup: the same answer as the parser on the text read directly."""
    with open(f"/proc/{os.getpid()}/cgroup", encoding="utf-8") as handle:
        text = handle.read()
    assert container_of_pid(os.getpid()) == parse_container(text)
    assert container_of_pid(2**22 + 12345) is None  # no such process


@pytest.mark.parametrize(
    ("netns", "label"),
    [
        (NetnsInfo(7), "net:[7]"),
        (NetnsInfo(7, "lab"), "lab"),
        (NetnsInfo(7, None, 9, ContainerRef("docker", SHORT)), f"docker:{SHORT}"),
        (NetnsInfo(7, "lab", 9, ContainerRef("lxc", "web1", "web1")), "lab (lxc:web1)"),
    ],
)
def test_netns_labels(netns: NetnsInfo, label: str) -> None:
    assert netns_label(netns) == label
    assert str(netns) == label.split(" (", maxsplit=1)[0]
