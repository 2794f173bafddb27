"""The confirm window's watchdog, whatever it rolls back: spawn it detached, arm it, and wait.

One piece serves `pps policy apply` (`firewall.watchdog`: restores ppsguard's firewall rules)
and `pps harden apply` (`harden.watchdog`: restores the units it stopped). A watchdog is
started BEFORE the change, in a new session (`setsid`, no controlling terminal, SIGHUP and SIGINT
ignored, standard streams on /dev/null), so it outlives the terminal, the SSH session and the
apply itself (even SIGKILL). It says "armed APPLY_ID" on its pipe, then re-reads pending.json
until the deadline (the apply may move it); unless the confirm marker names its apply id by
then, it takes the state folder's lock (or, when a holder is stuck, goes on without it) and
calls the rollback it was given.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable

from ppsguard.errors import RuntimeFailure
from ppsguard.firewall.statedir import StateDir

POLL_SECONDS = 0.2
ARMED_TIMEOUT = 20.0
# After the deadline, how long the watchdog waits for a lock holder before restoring anyway.
LOCK_PATIENCE = 30.0

# Watchdogs this process started, kept referenced until they end (see `spawn`).
_STARTED: list[subprocess.Popen[bytes]] = []

# A rollback: given whether the lock is held, restore and log; returns rolled-back or failed.
Rollback = Callable[[bool], str]


def spawn(module: str, state: StateDir, apply_id: str, *extra: str) -> int:
    """Start `python -m module STATE APPLY_ID EXTRA...` detached and wait until it says it is
    armed; return its pid. Raises RuntimeFailure (and stops the process) when it does not arm
    in time: the caller has changed nothing yet and must not."""
    argv = [sys.executable, "-m", module, str(state.path), apply_id, *extra]
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
    _STARTED[:] = [p for p in _STARTED if p.poll() is None]  # reap the ones that ended
    _STARTED.append(process)  # referenced: a library caller gets no "still running" warning
    return process.pid  # it lives on in its own session


def _deadline(pending: dict[str, object]) -> float:
    value = pending.get("deadline")
    return float(value) if isinstance(value, int | float) else 0.0


def ours(state: StateDir, apply_id: str) -> tuple[str | None, float]:
    """('confirmed' | 'superseded' | None, deadline) as the folder says now."""
    marker = state.confirmed.read_text().strip() if state.confirmed.exists() else ""
    if marker == apply_id:
        return "confirmed", 0.0
    pending = state.read_json(state.pending)
    if pending is None or pending.get("apply_id") != apply_id:
        return "superseded", 0.0
    return None, _deadline(pending)


def watch(state: StateDir, apply_id: str, rollback: Rollback, failed_event: str) -> str:
    """The loop; returns confirmed, superseded, or what `rollback` returned (rolled-back or
    failed). A rollback that raises is logged as `failed_event`: a watchdog has nobody to
    raise to."""
    while True:
        outcome, deadline = ours(state, apply_id)
        if outcome:
            return outcome
        if time.time() < deadline:
            time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.time())))
            continue
        with state.locked(timeout=LOCK_PATIENCE) as held:
            outcome, deadline = ours(state, apply_id)
            if outcome:
                return outcome
            if time.time() < deadline:  # the apply moved the deadline while we waited
                continue
            try:
                return rollback(held)
            except Exception as exc:
                state.record(failed_event, apply_id=apply_id, error=str(exc)[:500])
                return "failed"


def arm(apply_id: str) -> None:
    """In the watchdog process: undo the apply's blocked signal mask (inherited), ignore hang-up
    and interrupt, say "armed" on the pipe and put standard output on /dev/null."""
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.stdout.write(f"armed {apply_id}\n")
    sys.stdout.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)


def open_window(
    state: StateDir,
    apply_id: str,
    seconds: float,
    spawn_watchdog: Callable[[StateDir, str], int],
    clock: Callable[[], float],
    **record: object,
) -> int:
    """Arm a confirm window before the change: clear an old confirm marker, write pending.json
    (apply id, deadline, `record`'s fields), start the watchdog, then write it again with the
    watchdog's pid and a deadline counted from now. Returns the pid."""
    state.confirmed.unlink(missing_ok=True)
    pending = {"apply_id": apply_id, "deadline": clock() + seconds, **record}
    state.write_atomic(state.pending, json.dumps(pending, sort_keys=True, indent=1) + "\n")
    pid = spawn_watchdog(state, apply_id)
    pending.update(deadline=clock() + seconds, watchdog_pid=pid)
    state.write_atomic(state.pending, json.dumps(pending, sort_keys=True, indent=1) + "\n")
    return pid
