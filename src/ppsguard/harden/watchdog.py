"""The confirm window of `pps harden apply`: a detached process that restores the units.

Started by `apply.apply_units` BEFORE the first unit changes, in a new session (`setsid`, no
controlling terminal, SIGHUP and SIGINT ignored, standard streams on /dev/null), so it outlives
the terminal, the SSH session and the apply itself (even SIGKILL). It re-reads pending.json
until the deadline; unless `pps harden confirm` wrote the confirm marker for its apply id, it
then restores every unit as before.json saved it (`managers.restore_from_state`: unmask, enable,
start), through the service manager named there, and logs what it did. The firewall's watchdog
(`ppsguard.firewall.watchdog`) works the same way on nftables.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from ppsguard.errors import RuntimeFailure
from ppsguard.firewall.statedir import StateDir

_POLL_SECONDS = 0.2
ARMED_TIMEOUT = 20.0
LOCK_PATIENCE = 30.0
_STARTED: list[subprocess.Popen[bytes]] = []


def spawn(state: StateDir, apply_id: str) -> int:
    """Start the detached watchdog and wait until it says it is armed; return its pid."""
    argv = [sys.executable, "-m", "ppsguard.harden.watchdog", str(state.path), apply_id]
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
            cwd="/",
        )
    except OSError as exc:
        raise RuntimeFailure(f"cannot start the rollback watchdog: {exc}") from None
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], ARMED_TIMEOUT)
    line = process.stdout.readline().decode(errors="replace").strip() if ready else ""
    process.stdout.close()
    if line != f"armed {apply_id}":
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
        raise RuntimeFailure("the rollback watchdog did not start: nothing was changed")
    _STARTED[:] = [p for p in _STARTED if p.poll() is None]
    _STARTED.append(process)
    return process.pid


def _ours(state: StateDir, apply_id: str) -> tuple[str | None, float]:
    """('confirmed' | 'superseded' | None, deadline) as the folder says now."""
    marker = state.confirmed.read_text().strip() if state.confirmed.exists() else ""
    if marker == apply_id:
        return "confirmed", 0.0
    pending = state.read_json(state.pending)
    if pending is None or pending.get("apply_id") != apply_id:
        return "superseded", 0.0
    deadline = pending.get("deadline")
    return None, float(deadline) if isinstance(deadline, int | float) else 0.0


def watch(state: StateDir, apply_id: str) -> str:
    """The loop; returns confirmed, superseded, rolled-back or failed."""
    from ppsguard.harden.managers import restore_from_state

    while True:
        outcome, deadline = _ours(state, apply_id)
        if outcome:
            return outcome
        if time.time() < deadline:
            time.sleep(min(_POLL_SECONDS, max(0.0, deadline - time.time())))
            continue
        with state.locked(timeout=LOCK_PATIENCE) as held:
            outcome, deadline = _ours(state, apply_id)
            if outcome:
                return outcome
            if time.time() < deadline:
                continue
            try:
                failures = restore_from_state(state)
            except Exception as exc:  # a watchdog has nobody to raise to: log it
                state.record("harden-watchdog-failed", apply_id=apply_id, error=str(exc)[:500])
                return "failed"
            state.pending.unlink(missing_ok=True)
            state.record(
                "harden-watchdog-rollback",
                apply_id=apply_id,
                reason="not confirmed in time",
                failures=failures,
                lock="held" if held else "holder stuck; restored without it",
            )
            return "failed" if failures else "rolled-back"


def main(argv: list[str]) -> int:
    signal.pthread_sigmask(signal.SIG_SETMASK, set())  # the apply's blocked mask is inherited
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    path, apply_id = argv
    state = StateDir(path=Path(path), netns=None)
    try:
        state.check()
    except RuntimeFailure:
        return 1
    sys.stdout.write(f"armed {apply_id}\n")
    sys.stdout.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    return 0 if watch(state, apply_id) in {"confirmed", "superseded", "rolled-back"} else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
