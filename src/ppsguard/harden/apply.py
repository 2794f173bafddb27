"""Safe apply of a hardening plan's unit changes: a rollback that cannot be lost.

The firewall's sequence (`ppsguard.firewall.apply`), with units in place of rules:
1. the window is validated (0 = none, else MIN_WINDOW..MAX_WINDOW seconds); a unit the plan
   marks as documented by the registry is refused; the state folder (`<state>/harden`, the
   firewall's folder rules: root-owned, 0700, no links) is checked; an open window refuses;
2. under the state lock, with SIGINT, SIGHUP, SIGTERM, SIGQUIT and SIGTSTP blocked: each unit's
   status (running? enabled?) and the manager's spec are written to before.json (fsynced),
   pending.json holds the deadline, and the detached watchdog (`watchdog.py`) has said it is
   armed — all BEFORE the first unit changes;
3. each unit is stopped, disabled (when it was enabled) and, on request, masked;
4. the deadline is moved to now + window, the apply log gets a line, the signals are let through.
From step 2 on, a killed apply (even SIGKILL) leaves the watchdog to restore every unit at the
deadline unless `confirm` writes the marker first. A manager call that fails in step 3 restores
the units at once and says so. `restore` puts back enablement (unmask, enable) and then starts
what was running. The service manager is a parameter (`managers.ServiceManager`): systemd on a
real machine, real listener processes in the tests.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ppsguard.errors import RuntimeFailure, UsageError
from ppsguard.firewall.apply import signals_blocked, validate_window
from ppsguard.firewall.statedir import DEFAULT_STATE_DIR, StateDir
from ppsguard.harden.managers import (
    DISABLED_BY_APPLY,
    ServiceManager,
    UnitStatus,
    restore,
    restore_from_state,
)

__all__ = [
    "HardenOutcome",
    "apply_units",
    "confirm",
    "harden_state",
    "restore",
    "rollback",
]

Step = Callable[[str, str], None]  # (unit, "stop" | "disable" | "mask") after each change


def harden_state(base: str | Path | None = None) -> StateDir:
    """The state folder of `pps harden apply`: `$PPSGUARD_STATE_DIR/harden`."""
    import os

    root = Path(base or os.environ.get("PPSGUARD_STATE_DIR") or DEFAULT_STATE_DIR)
    return StateDir(path=root / "harden", netns=None)


@dataclass(frozen=True, slots=True)
class HardenOutcome:
    apply_id: str
    changed: tuple[str, ...]  # "stop x.service", "disable x.service", ...
    deadline: float | None
    watchdog_pid: int | None
    warnings: tuple[str, ...] = ()


def _json(value: object) -> str:
    return json.dumps(value, sort_keys=True, indent=1) + "\n"


def _before(
    apply_id: str, spec: dict[str, object], statuses: dict[str, UnitStatus], mask: bool
) -> str:
    units = [{"name": u, "active": s.active, "enabled": s.enabled} for u, s in statuses.items()]
    return _json({"apply_id": apply_id, "manager": spec, "mask": mask, "units": units})


def apply_units(
    units: Sequence[str],
    *,
    manager: ServiceManager,
    state: StateDir,
    window: float | str | None,
    protected: Iterable[str] = (),
    mask: bool = False,
    after_step: Step | None = None,
    clock: Callable[[], float] = time.time,
) -> HardenOutcome:
    """Stop and disable `units` in order, with the rollback armed first (module docstring)."""
    from ppsguard.firewall.window import open_window
    from ppsguard.harden.watchdog import spawn

    seconds = validate_window(window)
    refused = sorted(set(units) & set(protected))
    if refused:
        raise UsageError(
            "refusing to apply: the plan lists units the registry documents", token=refused[0]
        )
    if not units:
        raise UsageError("the plan stops no unit: nothing to apply")
    state.check()
    apply_id = uuid.uuid4().hex[:12]
    changed: list[str] = []
    warnings: list[str] = []
    with state.locked(), signals_blocked():
        waiting = state.read_json(state.pending)
        if waiting is not None:
            raise UsageError(
                "a harden apply is waiting for confirmation: confirm or roll it back first",
                token=str(waiting.get("apply_id")),
            )
        statuses = {u: manager.status(u) for u in units}
        state.write_atomic(
            state.path / "before.json", _before(apply_id, manager.spec(), statuses, mask)
        )
        pid: int | None = None
        if seconds is not None:
            pid = open_window(state, apply_id, seconds, spawn, clock)
        try:
            for unit in units:
                if statuses[unit].enabled == "not-found":
                    warnings.append(f"{unit}: the service manager does not know it; left alone")
                    continue
                actions, warning = turn_off_steps(statuses[unit], mask)
                if warning is not None:
                    warnings.append(f"{unit} {warning}")
                for action in actions:
                    getattr(manager, action)(unit)
                    changed.append(f"{action} {unit}")
                    if after_step is not None:
                        after_step(unit, action)
        except RuntimeFailure as exc:
            failures = restore(manager, statuses, mask)
            state.pending.unlink(missing_ok=True)
            state.record(
                "harden-apply-failed",
                apply_id=apply_id,
                error=str(exc)[:500],
                changed=changed,
                restore_failures=failures,
            )
            then = (
                "every unit was restored"
                if not failures
                else "restoring failed: " + "; ".join(failures)
            )
            raise RuntimeFailure(f"{exc}; {then}") from None
        deadline: float | None = None
        if seconds is not None:
            deadline = clock() + seconds
            state.write_atomic(
                state.pending,
                _json({"apply_id": apply_id, "deadline": deadline, "watchdog_pid": pid}),
            )
        state.record(
            "harden-apply", apply_id=apply_id, changed=changed, window=seconds, warnings=warnings
        )
    return HardenOutcome(apply_id, tuple(changed), deadline, pid, tuple(warnings))


def turn_off_steps(status: UnitStatus, mask: bool) -> tuple[list[str], str | None]:
    """The manager calls that turn one unit off, and a warning when it may come back at boot.

    >>> turn_off_steps(UnitStatus(True, "enabled"), mask=False)
    (['stop', 'disable'], None)
    """
    out = ["stop"] if status.active else []
    warning = None
    if status.enabled == DISABLED_BY_APPLY:
        out.append("disable")
    elif status.enabled not in {"disabled", "masked"} and not mask:
        warning = (
            f"is {status.enabled}: stopped, not disabled (it may start again; --mask stops that)"
        )
    if mask and status.enabled != "masked":
        out.append("mask")
    return out, warning


def confirm(state: StateDir) -> str:
    """Keep the applied changes: write the confirm marker the watchdog looks for."""
    nothing = UsageError("nothing to confirm: no harden apply is waiting for confirmation")
    state.check()
    if not state.pending.exists():
        raise nothing
    with state.locked():
        pending = state.read_json(state.pending)
        if pending is None:
            raise nothing
        apply_id = str(pending.get("apply_id"))
        state.write_atomic(state.confirmed, apply_id + "\n")
        state.pending.unlink(missing_ok=True)
        state.record("harden-confirm", apply_id=apply_id)
        return apply_id


def rollback(state: StateDir) -> tuple[str, list[str]]:
    """Restore the units of the last apply now (also cancels an open window)."""
    state.check()
    with state.locked(), signals_blocked():
        before = state.read_json(state.path / "before.json") or {}
        failures = restore_from_state(state)
        state.pending.unlink(missing_ok=True)
        (state.path / "before.json").unlink(missing_ok=True)
        apply_id = str(before.get("apply_id"))
        state.record("harden-rollback", apply_id=apply_id, reason="by hand", failures=failures)
        return apply_id, failures
