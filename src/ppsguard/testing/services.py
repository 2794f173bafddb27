"""A service manager for tests: "units" that are real listener processes in lab namespaces.

`pps harden apply` changes units through `ppsguard.harden.managers.ServiceManager`; on a machine
without systemd the tests hand it this manager instead, so the confirm-or-roll-back logic runs
against real processes holding real sockets. A unit is a name and the argv that starts it (for
instance `ip netns exec <lab host> python -m ppsguard.testing.listener --port 7401`, which prints
`READY` once bound); the folder keeps one file per unit and state:

    <unit>.pid        the running process (stop kills it by this pid, and only it)
    <unit>.disabled   marker: the unit is disabled
    <unit>.masked     marker: the unit is masked (start refuses, as systemd's does)

`spec()` carries the folder and the argvs, so the detached watchdog rebuilds the same manager.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ppsguard.errors import RuntimeFailure
from ppsguard.harden.managers import UnitStatus
from ppsguard.lab.namespaces import kill_pids

READY_TIMEOUT = 20.0
# Units this process started, kept referenced while they run (no "still running" warning when a
# Popen is collected); `stop` drops them once ended.
_STARTED: dict[int, subprocess.Popen[bytes]] = {}


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :][:1] not in {"Z", "X"}


class LabServiceManager:
    """Real listener processes standing in for systemd units (see the module docstring)."""

    def __init__(self, folder: Path, units: Mapping[str, Sequence[str]]) -> None:
        self.folder = folder
        self.units = {name: list(argv) for name, argv in units.items()}
        folder.mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> LabServiceManager:
        return cls(Path(spec["folder"]), spec["units"])

    def spec(self) -> dict[str, Any]:
        return {"kind": "lab", "folder": str(self.folder), "units": self.units}

    def _file(self, unit: str, suffix: str) -> Path:
        if unit not in self.units:
            raise RuntimeFailure(f"Unit {unit} not found.")
        return self.folder / f"{unit}.{suffix}"

    def pid(self, unit: str) -> int | None:
        """The running process of `unit` (None when it is not running)."""
        try:
            pid = int(self._file(unit, "pid").read_text())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def status(self, unit: str) -> UnitStatus:
        if unit not in self.units:
            return UnitStatus(False, "not-found")
        if self._file(unit, "masked").exists():
            enabled = "masked"
        elif self._file(unit, "disabled").exists():
            enabled = "disabled"
        else:
            enabled = "enabled"
        return UnitStatus(self.pid(unit) is not None, enabled)

    def start(self, unit: str) -> None:
        if self._file(unit, "masked").exists():
            raise RuntimeFailure(f"Failed to start {unit}: Unit {unit} is masked.")
        if self.pid(unit) is not None:
            return
        process = subprocess.Popen(
            self.units[unit],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], READY_TIMEOUT)
        line = process.stdout.readline().decode(errors="replace") if ready else ""
        process.stdout.close()
        if not line.startswith("READY"):
            kill_pids([process.pid])
            raise RuntimeFailure(f"Failed to start {unit}: it did not say READY")
        _STARTED[process.pid] = process
        self._write(unit, "pid", str(process.pid))

    def stop(self, unit: str) -> None:
        pid = self.pid(unit)
        if pid is not None:
            kill_pids([pid])
            started = _STARTED.pop(pid, None)
            if started is not None:
                started.wait(10)
        self._file(unit, "pid").unlink(missing_ok=True)

    def disable(self, unit: str) -> None:
        self._write(unit, "disabled", "")

    def enable(self, unit: str) -> None:
        self._file(unit, "disabled").unlink(missing_ok=True)

    def mask(self, unit: str) -> None:
        self._write(unit, "masked", "")

    def unmask(self, unit: str) -> None:
        self._file(unit, "masked").unlink(missing_ok=True)

    def _write(self, unit: str, suffix: str, text: str) -> None:
        target = self._file(unit, suffix)
        temporary = target.with_name(f".{target.name}.{os.getpid()}")
        temporary.write_text(text)
        temporary.replace(target)

    def stop_all(self) -> None:
        """Teardown: end every unit's process (by its pid) whatever state the test left."""
        for unit in self.units:
            self.stop(unit)

    def __repr__(self) -> str:
        return f"LabServiceManager({json.dumps(self.spec())})"
