"""The confirm window: the detached watchdog process and the restore of ppsguard's own table.

`pps policy apply` starts the watchdog BEFORE it loads the new rule set (see `apply.py`): the
snapshot of ppsguard's table and pending.json are on disk (fsynced) and the watchdog has said
"armed" on its pipe before `nft -f` runs, so no moment exists in which the new rules are live
without a rollback owner. The watchdog is started in a new session (`setsid`, no controlling
terminal, SIGHUP and SIGINT ignored), with its standard streams on /dev/null, so it survives the
loss of the terminal or SSH session and the death of the apply process (even SIGKILL) and its
process group (`window.py` holds that part, shared with `pps harden apply`). It restores the
snapshot unless `pps policy confirm` writes the confirm marker
before the deadline, which it re-reads from pending.json (the apply moves it once the load is
done, so the operator gets the whole window).

The rollback restores ppsguard's table alone (`table inet ppsguard {}` + `delete table inet
ppsguard` + the saved listing, one transaction): tables that other software (Docker, libvirt,
iptables-nft) holds — also those added during the window — are never touched; `flush ruleset` is
never used. The state folder's files and rules are in `statedir.py`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ppsguard.errors import RuntimeFailure
from ppsguard.firewall import window
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


def spawn(state: StateDir, apply_id: str) -> int:
    """Start this module as the detached watchdog (`window.spawn`); return its pid."""
    return window.spawn("ppsguard.firewall.watchdog", state, apply_id, state.netns or "")


def watch(state: StateDir, apply_id: str) -> str:
    """The watchdog's loop; returns what it did: confirmed, superseded, rolled-back or failed."""

    def rollback(held: bool) -> str:
        how = restore_snapshot(state, Runner(netns=state.netns))
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

    return window.watch(state, apply_id, rollback, "watchdog-rollback-failed")


def main(argv: list[str]) -> int:
    path, apply_id, netns = argv
    state = StateDir(path=Path(path), netns=netns or None)
    try:
        state.check()
    except RuntimeFailure:
        return 1
    window.arm(apply_id)
    outcome = watch(state, apply_id)
    return 0 if outcome in {"confirmed", "superseded", "rolled-back"} else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
