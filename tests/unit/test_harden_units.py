"""The unit behind a listener, from its holders' cgroup paths; the texts systemd prints; dpkg."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ppsguard.harden.managers import systemd_problem
from ppsguard.harden.packages import owners_in_list, package_name, packages_of, spellings
from ppsguard.harden.units import (
    Holder,
    UnitKind,
    parse_list_sockets,
    parse_systemctl_show,
    protected_names,
    touches_protected,
    unit_target,
)

HEX = "ab" * 32


@pytest.mark.parametrize(
    ("cgroups", "kind", "service", "socket"),
    [
        (["/system.slice/redis-server.service"], UnitKind.SERVICE, "redis-server.service", None),
        (
            ["/system.slice/system-getty.slice/getty@tty1.service"],
            UnitKind.SERVICE,
            "getty@tty1.service",
            None,
        ),
        (
            ["/user.slice/user-1000.slice/user@1000.service/app.slice/syncthing.service"],
            UnitKind.USER_SERVICE,
            "syncthing.service",
            None,
        ),
        (["/user.slice/user-1000.slice/session-3.scope"], UnitKind.SCOPE, None, None),
        ([f"/system.slice/docker-{HEX}.scope"], UnitKind.CONTAINER, None, None),
        (["/"], UnitKind.UNKNOWN, None, None),
        ([None], UnitKind.UNKNOWN, None, None),
    ],
)
def test_unit_from_cgroup_shapes(
    cgroups: list[str | None], kind: UnitKind, service: str | None, socket: str | None
) -> None:
    holders = [Holder(100 + i, "daemon", "/usr/sbin/daemon", c) for i, c in enumerate(cgroups)]
    target = unit_target(holders)
    assert (target.kind, target.service, target.socket) == (kind, service, socket)
    if kind is not UnitKind.SERVICE:
        assert target.note  # every case without a unit to stop says why


def test_socket_activation_names_the_socket_unit() -> None:
    init = Holder(1, "systemd", "/usr/lib/systemd/systemd", "/init.scope")
    accepted = "sshd@0-198.18.0.1:22-198.18.0.50:40000.service"  # Accept=yes instance
    service = Holder(812, "sshd", "/usr/sbin/sshd", f"/system.slice/system-sshd.slice/{accepted}")
    target = unit_target([init, service])
    assert target.kind is UnitKind.SOCKET_ACTIVATED
    assert target.socket == "sshd.socket"
    assert target.units == ("sshd.socket", target.service)  # socket first
    # not yet activated: only systemd holds it; the listing names the unit, else the note says
    assert unit_target([init]).kind is UnitKind.INIT
    listed = unit_target([init], listed_socket="cups.socket")
    assert (listed.kind, listed.socket) == (UnitKind.SOCKET_ACTIVATED, "cups.socket")


def test_protected_units_cover_their_twins() -> None:
    protected = protected_names(["ssh", "nginx.service"])
    assert {"ssh.service", "ssh.socket", "nginx.service", "nginx.socket"} <= protected
    target = unit_target([Holder(9, "sshd", None, "/system.slice/ssh.service")])
    assert touches_protected(target, protected) == "ssh.service"
    other = unit_target([Holder(9, "redis", None, "/system.slice/redis.service")])
    assert touches_protected(other, protected) is None


def test_list_sockets_and_show_parsers() -> None:
    listing = (
        "[::]:22                    ssh.socket        ssh.service\n"
        "0.0.0.0:631                cups.socket       cups.service\n"
        "/run/dbus/system_bus_socket dbus.socket      dbus.service\n"
        "*:5355                     llmnr.socket      resolved.service\n"
    )
    assert parse_list_sockets(listing) == {
        ("::", 22): "ssh.socket",
        ("0.0.0.0", 631): "cups.socket",
        ("*", 5355): "llmnr.socket",
    }
    shown = parse_systemctl_show("ActiveState=inactive\nUnitFileState=\nLoadState=loaded\n")
    assert shown == {"ActiveState": "inactive", "UnitFileState": "", "LoadState": "loaded"}


@given(st.text(max_size=300))
def test_parsers_take_any_text(text: str) -> None:
    parse_list_sockets(text)
    parse_systemctl_show(text)
    unit_target([Holder(5, text[:15], text, text)])


def test_dpkg_lists() -> None:
    assert spellings("/usr/sbin/sshd") == ("/usr/sbin/sshd", "/sbin/sshd")
    assert spellings("/bin/ip") == ("/bin/ip", "/usr/bin/ip")
    assert spellings("/opt/x") == ("/opt/x",)
    assert owners_in_list("/.\n/usr/bin/x\n", ["/usr/bin/x", "/usr/bin"]) == {"/usr/bin/x"}
    assert package_name("libc6:amd64.list") == "libc6"
    assert packages_of(["/usr/bin/x"], Path("/nonexistent")) == {}


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="not a Debian machine")
def test_packages_agree_with_dpkg() -> None:
    """The real dpkg lists, against `dpkg -S` itself, for files this machine has."""
    paths = [p for p in ("/usr/sbin/nft", os.path.realpath("/usr/bin/python3")) if Path(p).exists()]
    found = packages_of(paths)
    for path in paths:
        done = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True, check=False)
        assert done.returncode == 0
        assert found[path] == done.stdout.split(":")[0]


def test_systemd_problem(tmp_path: Path) -> None:
    comm = tmp_path / "comm"
    comm.write_text("systemd\n")
    run = tmp_path / "run"
    assert "does not exist" in (systemd_problem(run, comm) or "")
    run.mkdir()
    assert systemd_problem(run, comm) is None
    comm.write_text("tini\n")
    assert systemd_problem(run, comm) == "PID 1 is 'tini', not systemd"


def test_invoked_paths_prefer_the_name_the_program_was_started_by(tmp_path: Path) -> None:
    from ppsguard.harden.survey import invoked_paths

    real = tmp_path / "check-rdb"
    real.write_text("")
    link = tmp_path / "server"
    link.symlink_to(real.name)
    assert invoked_paths(str(real), f"{link} 0.0.0.0:6379") == (str(link), str(real))
    assert invoked_paths(str(real), "/elsewhere/server") == (str(real),)
    assert invoked_paths(str(real), None) == (str(real),)
    assert invoked_paths(None, str(link)) == ()


@pytest.mark.parametrize(
    ("active", "enabled", "mask", "steps", "warned"),
    [
        (True, "enabled", False, ["stop", "disable"], False),
        (False, "enabled", False, ["disable"], False),
        (True, "static", False, ["stop"], True),
        (True, "enabled-runtime", False, ["stop"], True),
        (True, "enabled-runtime", True, ["stop", "mask"], False),
        (True, "disabled", False, ["stop"], False),
        (True, "enabled", True, ["stop", "disable", "mask"], False),
        (False, "masked", True, [], False),
    ],
)
def test_turn_off_steps(
    active: bool, enabled: str, mask: bool, steps: list[str], warned: bool
) -> None:
    from ppsguard.harden.apply import turn_off_steps
    from ppsguard.harden.managers import UnitStatus

    found, warning = turn_off_steps(UnitStatus(active, enabled), mask)
    assert found == steps
    assert (warning is not None) == warned


@pytest.mark.parametrize("module", ["units", "binds", "packages", "apply"])
def test_docstring_examples(module: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(f"ppsguard.harden.{module}"))
    assert result.attempted and not result.failed
