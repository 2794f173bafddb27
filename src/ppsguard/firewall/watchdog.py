"""The confirm window: state files, the detached watchdog process, and snapshot restore.

After `pps policy apply`, a watchdog process restores the saved snapshot unless `pps policy
confirm` writes the confirm marker before the deadline. The watchdog is started in a new session
(`setsid`, no controlling terminal, SIGHUP ignored), with its standard streams on /dev/null, so
it survives the loss of the terminal or SSH session and the death of the apply process and its
process group. It holds all it needs in the state directory (per network namespace):

    $PPSGUARD_STATE_DIR (default /var/lib/ppsguard)/<root | netns-NAME>/
        snapshot.nft     the whole rule set before the apply (may be empty: restore = flush)
        snapshot-owned.nft   ppsguard's table alone before the apply (fallback restore)
        pending.json     apply id, deadline, watchdog pid, while a window is open
        confirmed        marker: contains the apply id that was confirmed
        applied.json     fingerprint and text of the last applied table
        apply-log.jsonl  one line per apply / confirm / rollback, with what changed
        lock             flock serialising apply, confirm, rollback and the watchdog

Unlike iptables-apply, the rollback never depends on the session that started it, and an empty
previous rule set is restored as an empty rule set (`flush ruleset`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ppsguard.firewall.nft import Runner

DEFAULT_STATE_DIR = "/var/lib/ppsguard"
_POLL_SECONDS = 0.2


@dataclass(frozen=True, slots=True)
class StateDir:
    """The state files of one network namespace."""

    path: Path
    netns: str | None

    @classmethod
    def for_netns(cls, netns: str | None, base: str | Path | None = None) -> StateDir:
        root = Path(base or os.environ.get("PPSGUARD_STATE_DIR") or DEFAULT_STATE_DIR)
        return cls(path=root / (f"netns-{netns}" if netns else "root"), netns=netns)

    @property
    def snapshot(self) -> Path:
        return self.path / "snapshot.nft"

    @property
    def owned_snapshot(self) -> Path:
        return self.path / "snapshot-owned.nft"

    @property
    def pending(self) -> Path:
        return self.path / "pending.json"

    @property
    def confirmed(self) -> Path:
        return self.path / "confirmed"

    @property
    def applied(self) -> Path:
        return self.path / "applied.json"

    @property
    def log(self) -> Path:
        return self.path / "apply-log.jsonl"

    def ensure(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.ensure()
        with (self.path / "lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def write_atomic(self, target: Path, text: str) -> None:
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        temporary.write_text(text)
        temporary.replace(target)

    def read_json(self, target: Path) -> dict[str, Any] | None:
        try:
            value = json.loads(target.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        return value if isinstance(value, dict) else None

    def record(self, action: str, **fields: Any) -> None:
        """Append one line to the apply log."""
        self.ensure()
        row: dict[str, Any] = {
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "action": action,
        }
        row["netns"] = self.netns
        row.update(fields)
        with self.log.open("a") as handle:
            handle.write(json.dumps(row, sort_keys=True) + "\n")


def restore_text(snapshot: str) -> str:
    """The nft input that puts back a snapshot: flush everything, then the saved rule set."""
    return "flush ruleset\n" + snapshot


def owned_restore_text(owned: str) -> str:
    """The nft input that puts back only ppsguard's own table as it was (absent = deleted)."""
    return "table inet ppsguard {}\ndelete table inet ppsguard\n" + owned


def restore_snapshot(state: StateDir, runner: Runner) -> str:
    """Put the snapshot back; returns how: `full` or `owned-table`.

    First the whole rule set (`flush ruleset` + snapshot). Tables written by iptables-nft with
    matches nft cannot express (shown as `# xt_...`) do not reload from their listing; then only
    ppsguard's table — the one thing an apply changes — is put back as it was, and the other
    tables, untouched by the apply, stay as they are.
    """
    from ppsguard.firewall.nft import RulesetRejected

    snapshot = state.snapshot.read_text() if state.snapshot.exists() else ""
    try:
        runner.nft_apply(restore_text(snapshot))
        return "full"
    except RulesetRejected:
        owned = state.owned_snapshot.read_text() if state.owned_snapshot.exists() else ""
        runner.nft_apply(owned_restore_text(owned))
        return "owned-table"


def spawn(state: StateDir, apply_id: str, deadline: float) -> int:
    """Start the detached watchdog; return its pid."""
    argv = [
        sys.executable,
        "-m",
        "ppsguard.firewall.watchdog",
        str(state.path),
        apply_id,
        repr(deadline),
        state.netns or "",
    ]
    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
        cwd="/",
    )
    return process.pid


def watch(state: StateDir, apply_id: str, deadline: float) -> str:
    """The watchdog's loop; returns what it did: confirmed, superseded or rolled-back."""
    while True:
        marker = state.confirmed.read_text().strip() if state.confirmed.exists() else ""
        if marker == apply_id:
            return "confirmed"
        pending = state.read_json(state.pending)
        if pending is None or pending.get("apply_id") != apply_id:
            return "superseded"
        if time.time() >= deadline:
            break
        time.sleep(min(_POLL_SECONDS, max(0.0, deadline - time.time())))
    with state.locked():
        marker = state.confirmed.read_text().strip() if state.confirmed.exists() else ""
        pending = state.read_json(state.pending)
        if marker == apply_id:
            return "confirmed"
        if pending is None or pending.get("apply_id") != apply_id:
            return "superseded"
        try:
            how = restore_snapshot(state, Runner(netns=state.netns))
        except Exception as exc:  # a watchdog has nobody to raise to: log it
            state.record("watchdog-rollback-failed", apply_id=apply_id, error=str(exc)[:500])
            return "failed"
        state.pending.unlink(missing_ok=True)
        state.applied.unlink(missing_ok=True)
        state.record(
            "watchdog-rollback", apply_id=apply_id, reason="not confirmed in time", restored=how
        )
        return "rolled-back"


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    path, apply_id, deadline, netns = argv
    state = StateDir(path=Path(path), netns=netns or None)
    outcome = watch(state, apply_id, float(deadline))
    return 0 if outcome in {"confirmed", "superseded", "rolled-back"} else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
