"""The service-manager seam: what `pps harden apply` and its watchdog ask of an init system.

    class ServiceManager(Protocol):
        spec()            how a detached watchdog rebuilds this manager (JSON, in the state folder)
        status(unit)      UnitStatus(active, enabled)  -- before the change, to restore it
        stop, start, disable, enable, mask, unmask (unit)

Two kinds exist, named by `spec()["kind"]` and rebuilt by `load_manager`:

    systemd   `systemctl` on this machine (`SystemdManager`); only where systemd is the init
              system (/run/systemd/system exists and PID 1 is systemd: `systemd_problem`)
    lab       `ppsguard.testing.services.LabServiceManager`: "units" that are real listener
              processes in lab network namespaces, which the tests supervise

The confirm-or-roll-back logic (apply.py, watchdog.py) sees only this protocol, so it is tested
on real processes where no systemd runs. A failing manager call is a RuntimeFailure naming the
unit and what the manager said.
"""

from __future__ import annotations

import importlib
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ppsguard.errors import RuntimeFailure
from ppsguard.firewall.statedir import StateDir
from ppsguard.harden.units import parse_systemctl_show

_KINDS = {
    "systemd": "ppsguard.harden.managers:SystemdManager",
    "lab": "ppsguard.testing.services:LabServiceManager",
}
SYSTEMCTL_TIMEOUT = 120.0
# The one enablement state apply undoes with `disable` and restore puts back with `enable`.
# Others (enabled-runtime, linked, alias, indirect, static, generated, transient) are left as
# they are: the unit is stopped, and apply warns that it may start again at boot.
DISABLED_BY_APPLY = "enabled"


@dataclass(frozen=True, slots=True)
class UnitStatus:
    """A unit as it was: running or not, and its enablement (`enabled`, `disabled`, `masked`,
    `static`, ... as `systemctl is-enabled` says; `not-found` when the manager does not know it)."""

    active: bool
    enabled: str


class ServiceManager(Protocol):
    """What apply and the watchdog need from an init system (see the module docstring)."""

    def spec(self) -> dict[str, Any]: ...
    def status(self, unit: str) -> UnitStatus: ...
    def stop(self, unit: str) -> None: ...
    def start(self, unit: str) -> None: ...
    def disable(self, unit: str) -> None: ...
    def enable(self, unit: str) -> None: ...
    def mask(self, unit: str) -> None: ...
    def unmask(self, unit: str) -> None: ...


def systemd_problem(
    run_dir: Path = Path("/run/systemd/system"), comm: Path = Path("/proc/1/comm")
) -> str | None:
    """Why systemd is not this machine's init system (None when it is), as sd_booted() decides
    it plus a look at PID 1's name."""
    try:
        init = comm.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        init = "unknown"
    if not run_dir.is_dir():
        return f"{run_dir} does not exist and PID 1 is {init!r}"
    if init != "systemd":
        return f"PID 1 is {init!r}, not systemd"
    return None


class SystemdManager:
    """`systemctl` on this machine (never tested here: this project's machine has no systemd)."""

    def spec(self) -> dict[str, Any]:
        return {"kind": "systemd"}

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> SystemdManager:
        return cls()

    def _run(self, *args: str, check: bool = True) -> str:
        argv = ["systemctl", "--no-pager", "--no-ask-password", *args]
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=SYSTEMCTL_TIMEOUT, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RuntimeFailure(f"{' '.join(argv)}: {exc}") from None
        if check and done.returncode != 0:
            said = (done.stderr or done.stdout).strip().splitlines()
            raise RuntimeFailure(f"{' '.join(argv)} failed: {said[0] if said else done.returncode}")
        return done.stdout

    def status(self, unit: str) -> UnitStatus:
        shown = parse_systemctl_show(
            self._run("show", "-p", "ActiveState,UnitFileState,LoadState", "--", unit)
        )
        if shown.get("LoadState") == "not-found":
            return UnitStatus(False, "not-found")
        active = shown.get("ActiveState", "") in {"active", "activating", "reloading"}
        return UnitStatus(active, shown.get("UnitFileState") or "static")

    def stop(self, unit: str) -> None:
        self._run("stop", "--", unit)

    def start(self, unit: str) -> None:
        self._run("start", "--", unit)

    def disable(self, unit: str) -> None:
        self._run("disable", "--", unit)

    def enable(self, unit: str) -> None:
        self._run("enable", "--", unit)

    def mask(self, unit: str) -> None:
        self._run("mask", "--", unit)

    def unmask(self, unit: str) -> None:
        self._run("unmask", "--", unit)


def restore(manager: ServiceManager, statuses: dict[str, UnitStatus], mask: bool) -> list[str]:
    """Put every unit back as `statuses` says (last changed first); returns what failed."""
    failures: list[str] = []
    for unit, status in reversed(list(statuses.items())):
        if status.enabled == "not-found":
            continue
        steps = []
        if mask and status.enabled != "masked":
            steps.append("unmask")
        if status.enabled == DISABLED_BY_APPLY:
            steps.append("enable")
        if status.active:
            steps.append("start")
        for step in steps:
            try:
                getattr(manager, step)(unit)
            except RuntimeFailure as exc:
                failures.append(f"{step} {unit}: {str(exc)[:200]}")
    return failures


def restore_from_state(state: StateDir) -> list[str]:
    """Restore the units saved in before.json by the manager named there; returns failures."""
    before = state.read_json(state.path / "before.json")
    if before is None:
        raise RuntimeFailure(f"no before.json in {state.path}: nothing to roll back to")
    manager = load_manager(before.get("manager") or {})
    statuses = {
        str(u["name"]): UnitStatus(bool(u["active"]), str(u["enabled"]))
        for u in before.get("units", [])
    }
    return restore(manager, statuses, bool(before.get("mask")))


def load_manager(spec: Mapping[str, Any]) -> ServiceManager:
    """Rebuild the manager a `spec()` describes (only the kinds in the table above)."""
    kind = spec.get("kind")
    target = _KINDS.get(str(kind))
    if target is None:
        raise RuntimeFailure(f"unknown service manager kind {kind!r}")
    module_name, _, attribute = target.partition(":")
    factory = getattr(importlib.import_module(module_name), attribute)
    manager: ServiceManager = factory.from_spec(spec)
    return manager


__all__ = [
    "DISABLED_BY_APPLY",
    "ServiceManager",
    "SystemdManager",
    "UnitStatus",
    "load_manager",
    "restore",
    "restore_from_state",
    "systemd_problem",
]
