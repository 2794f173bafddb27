"""`pps harden plan` on real processes placed in cgroups shaped like systemd's.

One lab host runs: a real redis-server and a real memcached (Debian's), each in
/system.slice/<unit>.service, bound to every address and documented nowhere; two listeners of a
unit the registry documents (one on its documented port, one on an undocumented one); a unit
that serves a documented door and an undocumented one; a socket that a stand-in "init" process
holds and hands to a child in /system.slice/<name>.service (socket activation); and a listener
started by hand in a login session's scope. The plan must find each unit from the cgroup the
kernel reports, stop only what nobody documented, name the bind to narrow from the daemons'
config files (under a test folder), and name the Debian package as dpkg does.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from harden_helpers import shared_listener, systemd_cgroup, wait_listening

from ppsguard.harden.plan import NARROW, NONE, STOP, Plan
from ppsguard.harden.survey import survey
from ppsguard.lab.hosts import Host
from ppsguard.report import documents
from ppsguard.report.harden_document import load_plan, plan_document
from ppsguard.testing.pytest_plugin import LabFactory

pytestmark = pytest.mark.lab

REGISTRY = """\
version: 1
default: deny
hosts:
  lab:
    provides:
      - id: doc
        port: 7401/tcp
        from: anywhere
        unit: {doc}
        purpose: the documented service
      - id: web
        port: 7403/tcp
        from: anywhere
        purpose: documented by port only
"""


# A listener that names itself with a terminal escape, as a hostile process could.
HOSTILE_NAME = """
import socket, time
with open("/proc/self/comm", "w") as comm:
    comm.write("\\x1b[31mevil")
s = socket.socket()
s.bind(("0.0.0.0", 7406))
s.listen()
time.sleep(600)
"""


class Setup:
    def __init__(self, host: Host, tag: str, root: Path) -> None:
        self.host = host
        self.tag = tag
        self.root = root
        self.redis = f"ppsh-{tag}-redis.service"
        self.memcached = f"ppsh-{tag}-memcached.service"
        self.doc = f"ppsh-{tag}-doc.service"
        self.web = f"ppsh-{tag}-web.service"
        self.act = f"ppsh-{tag}-act.service"
        self.init_pid = 0
        self.by_hand = 0
        self.registry = root.parent / "registry.yaml"


@pytest.fixture
def setup(lab_factory: LabFactory, tmp_path: Path) -> Iterator[Setup]:
    for tool in ("redis-server", "memcached"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: `make system-deps` installs it", pytrace=False)
    lab = lab_factory(["lab"])
    host = lab["lab"]
    tag = secrets.token_hex(3)
    root = tmp_path / "root"
    (root / "etc/redis").mkdir(parents=True)
    (root / "etc/redis/redis.conf").write_text("# bind 192.0.2.1\nbind * -::*\nport 6379\n")
    (root / "etc/memcached.conf").write_text("-m 64\n-p 11211\n")  # -l not set
    work = tmp_path / "redis"
    work.mkdir()
    s = Setup(host, tag, root)
    redis = host.popen(
        ["redis-server", "--port", "6379", "--bind", "0.0.0.0", "--save", "",
         "--appendonly", "no", "--dir", str(work), "--protected-mode", "no"]
    )  # fmt: skip
    memcached = host.popen(["memcached", "-u", "nobody", "-l", "0.0.0.0", "-p", "11211"])
    wait_listening(host, 6379)
    wait_listening(host, 11211)
    doc_a = host.listen(7401, "tcp", "0.0.0.0")
    doc_b = host.listen(7402, "tcp", "0.0.0.0")
    web_a = host.listen(7403, "tcp", "0.0.0.0")
    web_b = host.listen(7404, "tcp", "0.0.0.0")
    init, child = shared_listener(host, 7405)
    by_hand = host.popen([sys.executable, "-c", HOSTILE_NAME])  # comm "\x1b[31mevil"
    wait_listening(host, 7406)
    s.init_pid = init.pid
    s.by_hand = by_hand.pid
    with ExitStack() as stack:
        stack.enter_context(systemd_cgroup([redis.pid], f"system.slice/{s.redis}"))
        stack.enter_context(systemd_cgroup([memcached.pid], f"system.slice/{s.memcached}"))
        stack.enter_context(systemd_cgroup([doc_a.pid, doc_b.pid], f"system.slice/{s.doc}"))
        stack.enter_context(systemd_cgroup([web_a.pid, web_b.pid], f"system.slice/{s.web}"))
        stack.enter_context(systemd_cgroup([child], f"system.slice/{s.act}"))
        stack.enter_context(
            systemd_cgroup([by_hand.pid], f"user.slice/user-0.slice/session-ppsh{tag}.scope")
        )
        s.registry.write_text(REGISTRY.format(doc=s.doc))
        yield s


def _by_port(plan: Plan) -> dict[int, object]:
    return {c.port: c for c in plan.changes}


def test_plan_finds_units_from_cgroups_and_spares_documented_ones(setup: Setup) -> None:
    s = setup
    assert f"/system.slice/{s.redis}" in Path(f"/proc/{_pid(s, 6379)}/cgroup").read_text()
    plan = survey(
        s.registry,
        host="lab",
        netns=s.host.netns,
        config_root=s.root,
        init_pid=s.init_pid,
    )
    changes = {c.port: c for c in plan.changes}
    # documented door: no change at all
    assert 7401 not in changes

    redis = changes[6379]
    assert redis.action == STOP
    assert redis.service_unit == s.redis and redis.socket_unit is None
    assert redis.cgroup == f"/system.slice/{s.redis}"
    assert {"unregistered-listener", "risky-service"} <= {f.type for f in redis.findings}
    assert redis.bind is not None
    assert redis.bind.file == str(s.root / "etc/redis/redis.conf")
    assert (redis.bind.line, redis.bind.current) == (2, "* -::*")
    # Debian's /usr/bin/redis-server is a link to redis-check-rdb (package redis-tools): the
    # package named is the one of the name the daemon was started by, as dpkg -S says
    assert redis.exe is not None and redis.exe != shutil.which("redis-server")
    assert redis.package == _dpkg_package("/usr/bin/redis-server") == "redis-server"

    memcached = changes[11211]
    assert memcached.action == STOP and memcached.service_unit == s.memcached
    assert memcached.bind is not None and memcached.bind.line is None  # -l not set
    assert memcached.bind.file == str(s.root / "etc/memcached.conf")
    assert memcached.package == _dpkg_package(memcached.exe)

    # the registry documents this unit: never stopped, even for its undocumented port
    doc = changes[7402]
    assert doc.action == NONE and doc.service_unit == s.doc
    assert "documented by the registry (entry doc)" in doc.why

    # this unit also serves a documented door: stopping it would close that door
    web = changes[7404]
    assert web.action == NONE and web.service_unit == s.web
    assert "7403" in web.why and "entry web" in web.why

    # socket activation: the "init" holds the socket, the service holds it too
    act = changes[7405]
    assert act.kind == "socket-activated" and act.action == STOP
    assert (act.socket_unit, act.service_unit) == (f"ppsh-{s.tag}-act.socket", s.act)

    # started by hand in a session scope: nothing to stop, and the plan says why
    manual = changes[7406]
    assert manual.kind == "scope" and manual.action == NONE
    assert f"session-ppsh{s.tag}.scope" in manual.why

    names = [u.name for u in plan.units]
    assert set(names) == {s.redis, s.memcached, f"ppsh-{s.tag}-act.socket", s.act}
    assert names.index(f"ppsh-{s.tag}-act.socket") < names.index(s.act)  # socket first
    assert s.doc in plan.protected and f"ppsh-{s.tag}-doc.socket" in plan.protected
    assert not set(names) & set(plan.protected)

    # the document validates against the shipped schema and reads back to the same plan
    document = json.loads(json.dumps(plan_document(plan)))
    assert documents.validate(document) == "ppsguard.harden-plan"
    seconds = dataclasses.replace(plan, created_at=plan.created_at.replace(microsecond=0))
    assert load_plan(document) == seconds  # the document keeps whole seconds


def test_cli_plan_writes_a_valid_document_and_a_table(setup: Setup, tmp_path: Path) -> None:
    s = setup
    out = tmp_path / "plan.json"
    argv = [sys.executable, "-m", "ppsguard", "harden", "plan", str(s.registry)]
    argv += ["--host", "lab", "--netns", s.host.netns, "--config-root", str(s.root)]
    done = subprocess.run(
        [*argv, "--json", "-o", str(out)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 1, done.stderr  # the plan lists changes
    document = json.loads(done.stdout)
    assert documents.validate(document) == "ppsguard.harden-plan"
    assert json.loads(out.read_text()) == document
    units = [u["name"] for u in document["units"]]
    assert s.redis in units and s.doc not in units
    # PID 1 is not systemd here: without a socket unit, the activated child's unit is named
    act = next(c for c in document["changes"] if c["port"] == 7405)
    assert act["service_unit"] == s.act

    table = subprocess.run(
        argv, capture_output=True, text=True, timeout=120, check=False, env={**os.environ}
    )
    assert table.returncode == 1
    lines = table.stdout.splitlines()
    assert lines[0].split()[:3] == ["door", "finding", "process"]
    row = next(line for line in lines if line.startswith("tcp/0.0.0.0:6379 "))
    assert STOP in row and s.redis in row and "redis.conf:2" in row
    assert any(line.strip().startswith(s.redis) for line in lines)  # the units to stop
    assert "\x1b" not in table.stdout and "\\x1b[31mevil" in table.stdout  # shown, not obeyed
    assert NARROW not in {c["action"] for c in document["changes"] if c["port"] == 6379}


def _pid(s: Setup, port: int) -> int:
    out = s.host.run(["ss", "-Hltnp", f"sport = :{port}"]).stdout
    return int(out.split("pid=")[1].split(",")[0])


def _dpkg_package(exe: str | None) -> str:
    """What `dpkg -S` says of the executable (the reference our reader must agree with)."""
    assert exe is not None
    from ppsguard.harden.packages import spellings

    for path in spellings(exe):
        done = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True, check=False)
        if done.returncode == 0:
            return done.stdout.split(":")[0]
    raise AssertionError(f"dpkg -S knows no package for {exe}")
