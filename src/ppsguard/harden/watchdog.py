"""The confirm window of `pps harden apply`: a detached process that restores the units.

Started by `apply.apply_units` BEFORE the first unit changes, in a new session (`setsid`, no
controlling terminal, SIGHUP and SIGINT ignored, standard streams on /dev/null), so it outlives
the terminal, the SSH session and the apply itself (even SIGKILL). It re-reads pending.json
until the deadline; unless `pps harden confirm` wrote the confirm marker for its apply id, it
then restores every unit as before.json saved it (`managers.restore_from_state`: unmask, enable,
start), through the service manager named there, and logs what it did. The detached process, its
arming and its loop are the firewall's (`ppsguard.firewall.window`); only the rollback is ours.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ppsguard.errors import RuntimeFailure
from ppsguard.firewall import window
from ppsguard.firewall.statedir import StateDir


def spawn(state: StateDir, apply_id: str) -> int:
    """Start this module as the detached watchdog (`window.spawn`); return its pid."""
    return window.spawn("ppsguard.harden.watchdog", state, apply_id)


def watch(state: StateDir, apply_id: str) -> str:
    """The loop; returns confirmed, superseded, rolled-back or failed."""
    from ppsguard.harden.managers import restore_from_state

    def rollback(held: bool) -> str:
        failures = restore_from_state(state)
        state.pending.unlink(missing_ok=True)
        state.record(
            "harden-watchdog-rollback",
            apply_id=apply_id,
            reason="not confirmed in time",
            failures=failures,
            lock="held" if held else "holder stuck; restored without it",
        )
        return "failed" if failures else "rolled-back"

    return window.watch(state, apply_id, rollback, "harden-watchdog-failed")


def main(argv: list[str]) -> int:
    path, apply_id = argv
    state = StateDir(path=Path(path), netns=None)
    try:
        state.check()
    except RuntimeFailure:
        return 1
    window.arm(apply_id)
    return 0 if watch(state, apply_id) in {"confirmed", "superseded", "rolled-back"} else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
