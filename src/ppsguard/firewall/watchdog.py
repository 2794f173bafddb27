"""The confirm window: the detached watchdog process and the restore of ppsguard's own table.

`pps policy apply` starts the watchdog BEFORE it loads the new rule set (see `apply.py`): the
snapshot of ppsguard's table and pending.json are on disk (fsynced) and the watchdog has said
"armed" on its pipe before `nft -f` runs, so no moment exists in which the new rules are live
without a rollback owner. The watchdog is started in a new session (`setsid`, no controlling
terminal, SIGHUP and SIGINT ignored), with its standard streams on /dev/null, so it survives the
loss of the terminal or SSH session and the death of the apply process (even SIGKILL) and its
process group. It restores the snapshot unless `pps policy confirm` writes the confirm marker
before the deadline, which it re-reads from pending.json (the apply moves it once the load is
done, so the operator gets the whole window).

The rollback restores ppsguard's table alone (`table inet ppsguard {}` + `delete table inet
ppsguard` + the saved listing, one transaction): tables that other software (Docker, libvirt,
iptables-nft) holds — also those added during the window — are never touched; `flush ruleset` is
never used. The state folder's files and rules are in `statedir.py`.
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
from ppsguard.firewall.nft import RulesetRejected, Runner
from ppsguard.firewall.statedir import DEFAULT_STATE_DIR, StateDir

__all__ = [
    "DEFAULT_STATE_DIR",
    "StateDir",
    "owned_restore_text",
    "restore_snapshot",
    "spawn",
    "watch",
]

_POLL_SECONDS = 0.2
ARMED_TIMEOUT = 20.0
# After the deadline, how long the watchdog waits for a lock holder before restoring anyway.
LOCK_PATIENCE = 30.0


def owned_restore_text(owned: str) -> str:
    """The nft input that puts back only ppsguard's own table as it was (empty = absent)."""
    return "table inet ppsguard {}\ndelete table inet ppsguard\n" + owned


def restore_snapshot(state: StateDir, runner: Runner) -> str:
    """Put ppsguard's table back as it was before the apply; returns how.

    `owned-table`: the saved listing was loaded; `last-applied`: the listing did not reload (a
    hand edit nft cannot read back) and the text ppsguard applied before was loaded instead;
    `owned-chains (BACKEND)`: the last apply was of the iptables target (`iptables.py`), and
    PPSGUARD-INPUT and its jump were put back.
    """
    from ppsguard.firewall.ipsave import restore_owned

    if state.target()[0] == "iptables":
        return restore_owned(state, runner)
    owned = state.read_text(state.owned_snapshot)
    try:
        runner.nft_apply(owned_restore_text(owned))
        return "owned-table"
    except RulesetRejected:
        previous = state.read_json(state.path / "applied-before.json") or {}
        text = previous.get("text")
        if not isinstance(text, str):
            raise
        runner.nft_apply(owned_restore_text(text))
        return "last-applied"


# Watchdogs this process started, kept referenced until they end (see `spawn`).
_STARTED: list[subprocess.Popen[bytes]] = []


def spawn(state: StateDir, apply_id: str) -> int:
    """Start the detached watchdog and wait until it says it is armed; return its pid.

    Raises RuntimeFailure (and stops the process) when it does not arm in time: the caller has
    not changed the rule set yet and must not.
    """
    argv = [sys.executable, "-m", "ppsguard.firewall.watchdog", str(state.path), apply_id]
    argv.append(state.netns or "")
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
        raise RuntimeFailure("the rollback watchdog did not start: nothing was applied")
    _STARTED[:] = [p for p in _STARTED if p.poll() is None]  # reap the ones that ended
    _STARTED.append(process)  # referenced: a library caller gets no "still running" warning
    return process.pid  # it lives on in its own session


def _deadline(pending: dict[str, object]) -> float:
    value = pending.get("deadline")
    return float(value) if isinstance(value, int | float) else 0.0


def _ours(state: StateDir, apply_id: str) -> tuple[str | None, float]:
    """('confirmed' | 'superseded' | None, deadline) as the folder says now."""
    marker = state.confirmed.read_text().strip() if state.confirmed.exists() else ""
    if marker == apply_id:
        return "confirmed", 0.0
    pending = state.read_json(state.pending)
    if pending is None or pending.get("apply_id") != apply_id:
        return "superseded", 0.0
    return None, _deadline(pending)


def watch(state: StateDir, apply_id: str) -> str:
    """The watchdog's loop; returns what it did: confirmed, superseded, rolled-back or failed."""
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
            if time.time() < deadline:  # the apply moved the deadline while we waited
                continue
            try:
                how = restore_snapshot(state, Runner(netns=state.netns))
            except Exception as exc:  # a watchdog has nobody to raise to: log it
                state.record("watchdog-rollback-failed", apply_id=apply_id, error=str(exc)[:500])
                return "failed"
            state.pending.unlink(missing_ok=True)
            state.applied_record().unlink(missing_ok=True)
            state.record(
                "watchdog-rollback",
                apply_id=apply_id,
                reason="not confirmed in time",
                restored=how,
                lock="held" if held else "holder stuck; restored without it",
            )
            return "rolled-back"


def main(argv: list[str]) -> int:
    # The apply blocks these around its critical section and the mask is inherited: undo that.
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    path, apply_id, netns = argv
    state = StateDir(path=Path(path), netns=netns or None)
    try:
        state.check()
    except RuntimeFailure:
        return 1
    sys.stdout.write(f"armed {apply_id}\n")
    sys.stdout.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    outcome = watch(state, apply_id)
    return 0 if outcome in {"confirmed", "superseded", "rolled-back"} else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
