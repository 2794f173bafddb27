"""Which container a process belongs to, recognised from its /proc/<pid>/cgroup text (pure).

Container runtimes put each container's processes in a cgroup whose path names the runtime and
the container. Recognised (cgroup v2 `0::PATH` lines and v1 `N:controllers:PATH` lines alike):

    docker (systemd driver)     /system.slice/docker-<64 hex>.scope
    docker (cgroupfs driver)    /docker/<64 hex>
    containerd (CRI)            .../cri-containerd-<64 hex>.scope
    CRI-O                       .../crio-<64 hex>.scope
    podman (libpod)             .../libpod-<64 hex>.scope, /libpod_parent/libpod-<64 hex>
    Kubernetes (cgroupfs)       /kubepods/<qos>/pod<uid>/<64 hex>
    Kubernetes (pod only)       /kubepods.slice/.../kubepods-<qos>-pod<uid>.slice
    LXC                         /lxc.payload.<name>, /lxc/<name>
    systemd-nspawn (machined)   /machine.slice/machine-<name>.scope

Container ids are shortened to 12 hex digits, as `docker ps` prints them. The deepest match on a
path wins (docker-in-docker reports the inner container); the v2 line is preferred over
`name=systemd`, which is preferred over the other v1 controllers. Monitor processes (`conmon`,
`lxc.monitor.*`) are not containers and are not matched.
"""

from __future__ import annotations

import re

from ppsguard.model.sockets import ContainerRef

_HEX64 = re.compile(r"[0-9a-f]{64}")
_SCOPED = re.compile(r"(docker|cri-containerd|crio|libpod)-([0-9a-f]{64})(?:\.scope)?")
_RUNTIMES = {
    "docker": "docker",
    "cri-containerd": "containerd",
    "crio": "cri-o",
    "libpod": "podman",
}
_POD_SLICE = re.compile(r"kubepods(?:-[a-z]+)?-pod([0-9a-fA-F_-]{1,64})\.slice")
_POD_DIR = re.compile(r"pod([0-9a-fA-F-]{1,64})")
_MACHINE = re.compile(r"machine-(.+)\.scope")
_ESCAPE = re.compile(r"\\x([0-9a-fA-F]{2})")
_MAX_LINES = 64  # a real /proc/<pid>/cgroup has at most ~15 lines
_MAX_PARTS = 64


def short_id(hex_id: str) -> str:
    """The 12-digit short form of a 64-hex container id (as `docker ps` prints it)."""
    return hex_id[:12]


def _unescape(name: str) -> str:
    """systemd unit-name escaping: `\\x2d` -> `-`."""
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), name)


def _component(part: str, parent: str | None) -> ContainerRef | None:
    """The container named by one path component (with its parent component), if any."""
    scoped = _SCOPED.fullmatch(part)
    if scoped:
        return ContainerRef(_RUNTIMES[scoped.group(1)], short_id(scoped.group(2)))
    if _HEX64.fullmatch(part) and parent is not None:
        if parent == "docker":
            return ContainerRef("docker", short_id(part))
        if _POD_DIR.fullmatch(parent):
            return ContainerRef("kubernetes", short_id(part))
    if part.startswith("lxc.payload.") and len(part) > len("lxc.payload."):
        name = part[len("lxc.payload.") :]
        return ContainerRef("lxc", name, name)
    if parent == "lxc" and not part.startswith("lxc.monitor"):
        return ContainerRef("lxc", part, part)
    machine = _MACHINE.fullmatch(part)
    if machine:
        name = _unescape(machine.group(1))
        return ContainerRef("nspawn", name, name)
    return None


def container_of_path(path: str) -> ContainerRef | None:
    """The container a cgroup path belongs to (deepest match), or None.

    >>> container_of_path("/system.slice/docker-" + "3f2a1b9c0d4e" + "0" * 52 + ".scope")
    ContainerRef(runtime='docker', id='3f2a1b9c0d4e', name=None)
    """
    parts = [p for p in path.split("/") if p][:_MAX_PARTS]
    for index in range(len(parts) - 1, -1, -1):
        found = _component(parts[index], parts[index - 1] if index else None)
        if found is not None:
            return found
    for part in reversed(parts):  # a pod cgroup with no container under it
        pod = _POD_SLICE.fullmatch(part)
        if pod:
            return ContainerRef("kubernetes", "pod" + pod.group(1).replace("_", "-"))
    return None


def _ordered_paths(text: str) -> list[str]:
    v2: list[str] = []
    systemd: list[str] = []
    other: list[str] = []
    for line in text.splitlines()[:_MAX_LINES]:
        hierarchy, sep, rest = line.partition(":")
        controllers, sep2, path = rest.partition(":")
        if not sep or not sep2:
            continue
        if hierarchy == "0" and controllers == "":
            v2.append(path)
        elif "name=systemd" in controllers.split(","):
            systemd.append(path)
        else:
            other.append(path)
    return v2 + systemd + other


def parse_container(text: str) -> ContainerRef | None:
    """The container of a process, from its /proc/<pid>/cgroup text; None when not recognised.

    >>> parse_container("0::/system.slice/docker-" + "ab" * 32 + ".scope\\n")
    ContainerRef(runtime='docker', id='abababababab', name=None)
    """
    for path in _ordered_paths(text):
        found = container_of_path(path)
        if found is not None:
            return found
    return None


__all__ = ["container_of_path", "parse_container", "short_id"]
