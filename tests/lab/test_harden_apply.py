"""`pps harden apply`'s confirm-or-roll-back, on real listener processes the test supervises.

No systemd runs here, so the apply is handed `ppsguard.testing.services.LabServiceManager`: its
"units" are real listeners (`ppsguard.testing.listener`) in a lab host, started and stopped by
pid. Each test reads the kernel's socket table of the lab host (netlink, `collect`) to see
whether the doors are open: gone after the apply; back after the watchdog restores them when no
confirm came; still gone when confirmed; back when the apply itself was SIGKILLed mid-way.
The watchdog is the real detached process; the tests wait for it to end (bounded), never for
a time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ppsguard.errors import UsageError
from ppsguard.firewall.statedir import StateDir
from ppsguard.harden.apply import apply_units, confirm, harden_state, rollback
from ppsguard.inventory import collect
from ppsguard.lab.hosts import Host
from ppsguard.testing.pytest_plugin import LabFactory
from ppsguard.testing.services import LabServiceManager

pytestmark = pytest.mark.lab

WINDOW = 10  # the shortest window apply accepts
PORTS = {"ppsh-alpha.service": 7501, "ppsh-beta.service": 7502}


class Rig:
    def __init__(self, host: Host, manager: LabServiceManager, state: StateDir) -> None:
        self.host = host
        self.manager = manager
        self.state = state

    def open_ports(self) -> set[int]:
        records = collect(listening=True, active=False, netns=self.host.netns, owners=False)
        return {r.local_port for r in records.records} & set(PORTS.values())


@pytest.fixture
def rig(lab_factory: LabFactory, tmp_path: Path) -> Iterator[Rig]:
    host = lab_factory(["svc"])["svc"]
    units = {
        unit: host.command(
            [
                sys.executable,
                "-m",
                "ppsguard.testing.listener",
                "--address",
                "0.0.0.0",
                "--port",
                str(port),
            ]
        )
        for unit, port in PORTS.items()
    }
    manager = LabServiceManager(tmp_path / "units", units)
    state = harden_state(tmp_path / "state")
    try:
        for unit in PORTS:
            manager.start(unit)
        yield Rig(host, manager, state)
    finally:
        pending = state.read_json(state.pending) or {}
        watchdog = pending.get("watchdog_pid")
        if isinstance(watchdog, int):
            _end_watchdog(watchdog)
        manager.stop_all()


def _end_watchdog(pid: int) -> None:
    from ppsguard.lab.namespaces import kill_pids

    kill_pids([pid])


def wait_gone(pid: int, limit_s: float = 120.0) -> None:
    """Wait (bounded) until process `pid` has ended."""
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return
        if stat[stat.rfind(")") + 2 :][:1] in {"Z", "X"}:
            return
        time.sleep(0.2)
    raise AssertionError(f"process {pid} still running after {limit_s} s")


def log_actions(state: StateDir) -> list[str]:
    return [json.loads(line)["action"] for line in state.log.read_text().splitlines()]


def test_not_confirmed_the_watchdog_restores_the_units(rig: Rig) -> None:
    assert rig.open_ports() == {7501, 7502}
    outcome = apply_units(
        list(PORTS), manager=rig.manager, state=rig.state, window=WINDOW, mask=True
    )
    assert outcome.changed == (
        "stop ppsh-alpha.service", "disable ppsh-alpha.service", "mask ppsh-alpha.service",
        "stop ppsh-beta.service", "disable ppsh-beta.service", "mask ppsh-beta.service",
    )  # fmt: skip
    assert rig.open_ports() == set()  # the doors are really closed
    assert rig.manager.status("ppsh-alpha.service").enabled == "masked"
    assert outcome.watchdog_pid is not None
    wait_gone(outcome.watchdog_pid)
    assert rig.open_ports() == {7501, 7502}  # reopened by the watchdog
    for unit in PORTS:
        status = rig.manager.status(unit)
        assert status.active and status.enabled == "enabled"
    assert log_actions(rig.state)[-2:] == ["harden-apply", "harden-watchdog-rollback"]
    assert not rig.state.pending.exists()


def test_confirmed_the_units_stay_stopped(rig: Rig) -> None:
    outcome = apply_units(list(PORTS), manager=rig.manager, state=rig.state, window=WINDOW)
    assert rig.open_ports() == set()
    assert confirm(rig.state) == outcome.apply_id
    assert outcome.watchdog_pid is not None
    wait_gone(outcome.watchdog_pid)
    assert rig.open_ports() == set()
    assert rig.manager.status("ppsh-beta.service").enabled == "disabled"
    assert log_actions(rig.state)[-2:] == ["harden-apply", "harden-confirm"]
    # a rollback by hand afterwards still puts them back
    rollback(rig.state)
    assert rig.open_ports() == {7501, 7502}


KILLED_APPLY = """
import json, os, signal, sys
from pathlib import Path
from ppsguard.firewall.statedir import StateDir
from ppsguard.harden.apply import apply_units
from ppsguard.harden.managers import load_manager

spec, state_path, units = json.loads(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])

def die(unit, action):
    if action == "disable":  # the first unit is stopped and disabled, the second untouched
        os.kill(os.getpid(), signal.SIGKILL)

apply_units(units, manager=load_manager(spec), state=StateDir(state_path, None), window=10,
            after_step=die)
print("not reached", flush=True)
"""


def test_a_killed_apply_still_rolls_back(rig: Rig) -> None:
    done = subprocess.run(
        [sys.executable, "-c", KILLED_APPLY, json.dumps(rig.manager.spec()),
         str(rig.state.path), json.dumps(list(PORTS))],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert "not reached" not in done.stdout
    assert rig.open_ports() == {7502}  # killed after closing the first door only
    pending = rig.state.read_json(rig.state.pending)
    assert pending is not None  # the watchdog was armed before the first change
    wait_gone(int(pending["watchdog_pid"]))
    assert rig.open_ports() == {7501, 7502}
    assert rig.manager.status("ppsh-alpha.service").enabled == "enabled"
    assert log_actions(rig.state)[-1] == "harden-watchdog-rollback"


def test_documented_units_are_refused_and_nothing_changes(rig: Rig) -> None:
    with pytest.raises(UsageError, match="documents"):
        apply_units(
            list(PORTS),
            manager=rig.manager,
            state=rig.state,
            window=WINDOW,
            protected=["ppsh-beta.service"],
        )
    assert rig.open_ports() == {7501, 7502}
    assert not rig.state.pending.exists()


def test_a_second_apply_waits_for_the_first_window(rig: Rig) -> None:
    first = apply_units(["ppsh-alpha.service"], manager=rig.manager, state=rig.state, window=60)
    with pytest.raises(UsageError, match="waiting for confirmation"):
        apply_units(["ppsh-beta.service"], manager=rig.manager, state=rig.state, window=60)
    assert rig.open_ports() == {7502}
    rollback(rig.state)  # cancels the window: the watchdog stands down
    assert first.watchdog_pid is not None
    wait_gone(first.watchdog_pid)
    assert rig.open_ports() == {7501, 7502}
    assert os.path.exists(rig.state.log)
