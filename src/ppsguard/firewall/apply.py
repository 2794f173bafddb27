"""Safe apply of ppsguard's nftables table: check, snapshot, atomic replace, confirm window.

The sequence (`apply_table`):
1. `nft -c` on the whole replacement batch; a rejected batch stops here, nothing changes;
2. snapshot of the whole current rule set (`nft list ruleset`) into the state directory, unless
   an unconfirmed window is still open, in which case the older, known-good snapshot is kept;
3. one `nft -f` transaction: `table inet ppsguard {}` + `delete table inet ppsguard` + the new
   table, so applying twice leaves one copy and other tables are never touched;
4. with a window, a detached watchdog (see `watchdog.py`) restores the snapshot unless
   `confirm` runs before the deadline.
Every apply, confirm and rollback appends a line to the apply log saying what changed.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ppsguard.errors import RuntimeFailure, UsageError
from ppsguard.firewall.live import TABLE_FAMILY, TABLE_NAME, fingerprint_owned
from ppsguard.firewall.nft import RulesetRejected, Runner
from ppsguard.firewall.watchdog import StateDir, restore_snapshot, spawn
from ppsguard.model.net import IPAddress

DEFAULT_WINDOW = 120.0
_COMMENT = re.compile(r'comment "([^"]*)"')


def replacement_batch(table_text: str) -> str:
    """The idempotent replacement of our table, as one nft transaction."""
    return (
        f"table {TABLE_FAMILY} {TABLE_NAME} {{}}\n"
        f"delete table {TABLE_FAMILY} {TABLE_NAME}\n"
        f"{table_text.rstrip()}\n"
    )


def entry_ids(table_text: str) -> frozenset[str]:
    """Entry ids named in rule comments of a rendered or listed table."""
    return frozenset(_COMMENT.findall(table_text))


@dataclass(frozen=True, slots=True)
class Change:
    """What an apply changes in ppsguard's table."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    diff: str
    previous_known: bool

    @property
    def unchanged(self) -> bool:
        return self.previous_known and not self.diff


def describe_change(previous_text: str | None, new_text: str) -> Change:
    """Compare the last applied table text with the new one (entries and a unified diff)."""
    before = previous_text or ""
    old_ids, new_ids = entry_ids(before), entry_ids(new_text)
    diff = "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            new_text.splitlines(keepends=True),
            fromfile="applied",
            tofile="new",
        )
    )
    return Change(
        added=tuple(sorted(new_ids - old_ids)),
        removed=tuple(sorted(old_ids - new_ids)),
        diff=diff,
        previous_known=previous_text is not None,
    )


@dataclass(frozen=True, slots=True)
class SshSession:
    """The SSH connection this command runs over, from $SSH_CONNECTION."""

    client: IPAddress
    client_port: int
    server: IPAddress
    server_port: int


def ssh_session(environ: Mapping[str, str] | None = None) -> SshSession | None:
    """Parse SSH_CONNECTION ("client_ip client_port server_ip server_port"); None if absent."""
    value = (environ if environ is not None else os.environ).get("SSH_CONNECTION", "")
    parts = value.split()
    if len(parts) != 4:
        return None
    try:
        return SshSession(
            client=ipaddress.ip_address(parts[0].split("%")[0]),
            client_port=int(parts[1]),
            server=ipaddress.ip_address(parts[2].split("%")[0]),
            server_port=int(parts[3]),
        )
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class ApplyOutcome:
    apply_id: str
    change: Change
    deadline: float | None
    watchdog_pid: int | None
    fingerprint: str | None


def previous_applied_text(state: StateDir) -> str | None:
    applied = state.read_json(state.applied)
    text = applied.get("text") if applied else None
    return text if isinstance(text, str) else None


def apply_table(
    table_text: str,
    *,
    runner: Runner,
    state: StateDir,
    window: float | None,
    details: Mapping[str, object] | None = None,
    clock: Callable[[], float] = time.time,
) -> ApplyOutcome:
    """Check, snapshot, apply atomically and (with `window`) arm the watchdog."""
    batch = replacement_batch(table_text)
    runner.nft_check(batch)
    apply_id = uuid.uuid4().hex[:12]
    extra = dict(details or {})
    with state.locked():
        change = describe_change(previous_applied_text(state), table_text)
        pending = state.read_json(state.pending)
        if pending is None:
            state.write_atomic(state.snapshot, runner.nft_list_text())
            state.write_atomic(state.owned_snapshot, _owned_listing(runner))
        before = fingerprint_owned(runner.nft_list_json())
        try:
            runner.nft_apply(batch)
        except RulesetRejected as exc:
            state.record("apply-rejected", apply_id=apply_id, error=str(exc)[:500], **extra)
            raise
        after = fingerprint_owned(runner.nft_list_json())
        state.write_atomic(
            state.applied,
            _json({"apply_id": apply_id, "fingerprint": after, "text": table_text, **extra}),
        )
        deadline: float | None = None
        pid: int | None = None
        if window is not None and window > 0:
            deadline = clock() + window
            state.confirmed.unlink(missing_ok=True)
            state.write_atomic(state.pending, _json({"apply_id": apply_id, "deadline": deadline}))
            pid = spawn(state, apply_id, deadline)
            state.write_atomic(
                state.pending,
                _json({"apply_id": apply_id, "deadline": deadline, "watchdog_pid": pid}),
            )
        elif pending is not None:
            state.pending.unlink(missing_ok=True)
        state.record(
            "apply",
            apply_id=apply_id,
            added=list(change.added),
            removed=list(change.removed),
            changed_lines=sum(
                1
                for line in change.diff.splitlines()
                if line[:1] in "+-" and line[:3] not in {"+++", "---"}
            ),
            fingerprint_before=before,
            fingerprint_after=after,
            window=window,
            **extra,
        )
    return ApplyOutcome(apply_id, change, deadline, pid, after)


def confirm(state: StateDir) -> str:
    """Keep the applied rule set: write the confirm marker the watchdog looks for."""
    nothing = UsageError(
        "nothing to confirm: no apply is waiting for confirmation"
        + (f" in netns {state.netns}" if state.netns else "")
    )
    if not state.pending.exists():
        raise nothing
    with state.locked():
        pending = state.read_json(state.pending)
        if pending is None:
            raise nothing
        apply_id = str(pending.get("apply_id"))
        state.write_atomic(state.confirmed, apply_id + "\n")
        state.pending.unlink(missing_ok=True)
        state.record("confirm", apply_id=apply_id)
        return apply_id


def rollback(state: StateDir, runner: Runner) -> None:
    """Restore the last snapshot by hand (also cancels an open window)."""
    if not state.snapshot.exists():
        raise RuntimeFailure(f"no snapshot in {state.path}: nothing to roll back to")
    with state.locked():
        if not state.snapshot.exists():
            raise RuntimeFailure(f"no snapshot in {state.path}: nothing to roll back to")
        pending = state.read_json(state.pending)
        how = restore_snapshot(state, runner)
        state.pending.unlink(missing_ok=True)
        state.applied.unlink(missing_ok=True)
        state.record(
            "rollback", apply_id=(pending or {}).get("apply_id"), reason="by hand", restored=how
        )


def _owned_listing(runner: Runner) -> str:
    """`nft list table inet ppsguard`, or empty text when the table does not exist."""
    if fingerprint_owned(runner.nft_list_json()) is None:
        return ""
    return runner.run(["nft", "list", "table", TABLE_FAMILY, TABLE_NAME])


def pending_window(state: StateDir) -> dict[str, object] | None:
    return state.read_json(state.pending)


def _json(value: object) -> str:
    import json

    return json.dumps(value, sort_keys=True, indent=1) + "\n"
