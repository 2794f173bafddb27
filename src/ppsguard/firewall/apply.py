"""Safe apply of ppsguard's nftables table: a rollback that cannot be lost.

The sequence (`apply_table`), every step before the load able to stop it with nothing changed:
1. the window is validated (0 = none, else finite and within MIN_WINDOW..MAX_WINDOW seconds);
   the state folder is checked (root-owned, 0700, not a link: see `statedir.py`);
2. the anti-lockout guard (`session.py`) refuses a policy that would cut the operator's SSH
   session (library callers get it too; `force=True` skips it);
3. `nft -c` on the whole replacement batch; a rejected batch stops here;
4. under the state lock, with SIGINT, SIGHUP, SIGTERM, SIGQUIT and SIGTSTP blocked: the free
   space is checked, ppsguard's own table is saved (fsynced) unless an unconfirmed window is
   still open (then the older, known-good snapshot is kept), pending.json is written and the
   detached watchdog (`watchdog.py`) is started and has said it is armed — all BEFORE the load;
5. one `nft -f` transaction: `table inet ppsguard {}` + `delete table inet ppsguard` + the new
   table + the sets that keep already established connections open (`established.py`); other
   tables are never touched;
6. the deadline is moved to load time + window, the record is written, and the signals are let
   through. A signal that arrived meanwhile takes effect now; the watchdog is armed either way,
   and even SIGKILL at any point leaves it to restore the table at the deadline.
Every apply, confirm and rollback appends a line to the apply log saying what changed.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import math
import re
import signal
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from ppsguard.errors import RuntimeFailure, UsageError
from ppsguard.firewall.live import TABLE_FAMILY, TABLE_NAME, fingerprint_owned
from ppsguard.firewall.nft import RulesetRejected, Runner
from ppsguard.firewall.session import SshSession, ssh_session
from ppsguard.firewall.statedir import StateDir
from ppsguard.firewall.watchdog import restore_snapshot, spawn
from ppsguard.firewall.window import open_window
from ppsguard.model.registry import HostPolicy

__all__ = [
    "MAX_WINDOW",
    "MIN_WINDOW",
    "ApplyOutcome",
    "Change",
    "SshSession",
    "apply_policy",
    "apply_table",
    "confirm",
    "describe_change",
    "entry_ids",
    "replacement_batch",
    "rollback",
    "ssh_session",
    "validate_window",
]

DEFAULT_WINDOW = 120.0
MIN_WINDOW = 10.0
MAX_WINDOW = 3600.0
CRITICAL_SIGNALS = frozenset(
    {signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGQUIT, signal.SIGTSTP}
)
_COMMENT = re.compile(r'comment "([^"]*)"')

Warn = Callable[[str], None]


def validate_window(value: float | str | None) -> float | None:
    """The confirm window in seconds, or None for none (0); anything else is a UsageError."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if seconds == 0:
        return None
    if not math.isfinite(seconds) or not MIN_WINDOW <= seconds <= MAX_WINDOW:
        raise UsageError(
            f"--confirm-within must be 0 (no window) or {MIN_WINDOW:.0f} to {MAX_WINDOW:.0f} "
            "seconds",
            token=str(value),
        )
    return seconds


def replacement_batch(table_text: str, extra: str = "") -> str:
    """The idempotent replacement of our table (and `extra` commands on it), one transaction."""
    return (
        f"table {TABLE_FAMILY} {TABLE_NAME} {{}}\n"
        f"delete table {TABLE_FAMILY} {TABLE_NAME}\n"
        f"{table_text.rstrip()}\n"
        f"{extra}"
    )


def entry_ids(table_text: str) -> frozenset[str]:
    """Entry ids named in rule comments of a rendered or listed table."""
    return frozenset(i for i in _COMMENT.findall(table_text) if not i.startswith("ppsguard:"))


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
class ApplyOutcome:
    apply_id: str
    change: Change
    deadline: float | None
    watchdog_pid: int | None
    fingerprint: str | None
    kept_open: int = 0  # established connections let through the apply
    warnings: tuple[str, ...] = ()


def previous_applied_text(state: StateDir) -> str | None:
    applied = state.read_json(state.applied)
    text = applied.get("text") if applied else None
    return text if isinstance(text, str) else None


@contextlib.contextmanager
def signals_blocked() -> Iterator[None]:
    """Hold back Ctrl-C, hang-up, TERM, QUIT and Ctrl-Z; deliver them on the way out.

    Only the calling thread's mask changes; other threads of a library caller may still take a
    process-directed signal. That is survivable by design: the watchdog is armed before the load.
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, CRITICAL_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def check_lockout(policy: HostPolicy | None, netns: str | None, warn: Warn) -> None:
    """Refuse (UsageError) when `policy` would cut the operator's SSH session; warn when the
    session cannot be found for sure."""
    from ppsguard.firewall.session import find_sessions, lockout_problem

    if policy is None:
        warn("no policy given: cannot check whether the new rule set cuts an SSH session")
        return
    search = find_sessions(netns)
    if search.warning:
        warn(search.warning)
    problem = lockout_problem(policy, search)
    if problem:
        raise UsageError(f"refusing to apply: {problem}")


def begin_apply(
    window: float | None,
    *,
    state: StateDir,
    runner: Runner,
    policy: HostPolicy | None,
    force: bool,
    warn: Warn | None,
) -> tuple[float | None, list[str], Warn]:
    """What every apply (nftables, iptables) does first: validate the window, check the state
    folder, and refuse a policy that would cut the operator's session (unless `force`).
    Returns the window, the warnings collected so far, and the function that adds one (and
    passes it on to `warn`)."""
    warnings: list[str] = []

    def note(message: str) -> None:
        warnings.append(message)
        if warn is not None:
            warn(message)

    window = validate_window(window)
    state.check()
    if not force:
        check_lockout(policy, runner.netns, note)
    return window, warnings, note


def apply_policy(
    policy: HostPolicy,
    *,
    runner: Runner,
    state: StateDir,
    window: float | None,
    log_group: int = 5,
    force: bool = False,
    keep_established: bool = True,
    details: Mapping[str, object] | None = None,
    warn: Warn | None = None,
) -> ApplyOutcome:
    """Render `policy` for nftables and apply it (see `apply_table`)."""
    from ppsguard.firewall.render import RenderOptions
    from ppsguard.firewall.render.nftables import NftablesRenderer

    table = NftablesRenderer().render_table(policy, RenderOptions(log_group=log_group))
    return apply_table(
        table,
        runner=runner,
        state=state,
        window=window,
        policy=policy,
        force=force,
        keep_established=keep_established,
        details=details,
        warn=warn,
    )


def apply_table(
    table_text: str,
    *,
    runner: Runner,
    state: StateDir,
    window: float | None,
    policy: HostPolicy | None = None,
    force: bool = False,
    keep_established: bool = True,
    details: Mapping[str, object] | None = None,
    clock: Callable[[], float] = time.time,
    warn: Warn | None = None,
) -> ApplyOutcome:
    """Guard, check, save, arm the watchdog, then load atomically (see the module docstring)."""
    from ppsguard.firewall.established import established_flows, established_rules

    window, warnings, note = begin_apply(
        window, state=state, runner=runner, policy=policy, force=force, warn=warn
    )
    flows: tuple[object, ...] = ()
    extra = ""
    if keep_established:
        found, problem = established_flows(runner.netns)
        if problem:
            note(problem)
        flows, extra = found, established_rules(found)
    batch = replacement_batch(table_text, extra)
    runner.nft_check(batch)
    apply_id = uuid.uuid4().hex[:12]
    fields = dict(details or {})
    with state.locked(), signals_blocked():
        change = describe_change(previous_applied_text(state), table_text)
        pending = state.read_json(state.pending)
        if pending is not None and pending.get("target", "nftables") != "nftables":
            raise UsageError(
                f"an apply of the {pending.get('target')} target waits for confirmation: run "
                "`pps policy confirm` or `pps policy rollback` first"
            )
        state.require_space(4 * len(batch))
        before = fingerprint_owned(runner.nft_list_json())
        if pending is None:
            state.write_atomic(state.owned_snapshot, _owned_listing(runner, before))
            state.write_atomic(
                state.path / "applied-before.json", _json(state.read_json(state.applied) or {})
            )
        state.set_target("nftables")
        pid: int | None = None
        if window is not None:
            # Armed before the load: from here on a rollback owner exists whatever happens.
            pid = open_window(state, apply_id, window, spawn, clock)
        try:
            runner.nft_apply(batch)
        except RulesetRejected as exc:  # nothing changed; a timeout keeps the watchdog armed
            _disarm(state, apply_id, pending, pid)
            state.record("apply-rejected", apply_id=apply_id, error=str(exc)[:500], **fields)
            raise
        after: str | None = None
        deadline: float | None = None
        try:
            after = fingerprint_owned(runner.nft_list_json())
            if window is not None:
                deadline = clock() + window
                state.write_atomic(
                    state.pending,
                    _json({"apply_id": apply_id, "deadline": deadline, "watchdog_pid": pid}),
                )
            elif pending is not None:
                state.pending.unlink(missing_ok=True)
            state.write_atomic(
                state.applied,
                _json({"apply_id": apply_id, "fingerprint": after, "text": table_text, **fields}),
            )
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
                kept_open=len(flows),
                **fields,
            )
        except RuntimeFailure as exc:
            then = (
                "the watchdog restores the previous table at the deadline unless confirmed"
                if pid is not None
                else "it stays (no confirm window)"
            )
            raise RuntimeFailure(f"the new rule set is loaded, but {exc}; {then}") from None
    return ApplyOutcome(apply_id, change, deadline, pid, after, len(flows), tuple(warnings))


def _disarm(
    state: StateDir, apply_id: str, pending: dict[str, object] | None, pid: int | None
) -> None:
    """The load failed (nothing changed): stand the new watchdog down, or let it keep an older
    window that was still open (same snapshot, the old deadline)."""
    if pid is None:
        return
    if pending is None:
        state.pending.unlink(missing_ok=True)
        return
    kept = dict(pending, apply_id=apply_id, watchdog_pid=pid)
    state.write_atomic(state.pending, _json(kept))


def confirm(state: StateDir) -> str:
    """Keep the applied rule set: write the confirm marker the watchdog looks for."""
    nothing = UsageError(
        "nothing to confirm: no apply is waiting for confirmation"
        + (f" in netns {state.netns}" if state.netns else "")
    )
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
        state.record("confirm", apply_id=apply_id)
        return apply_id


def rollback(state: StateDir, runner: Runner) -> str:
    """Restore ppsguard's table as saved before the last apply (also cancels an open window);
    returns how (see `watchdog.restore_snapshot`)."""
    state.check()
    iptables = state.target()[0] == "iptables"
    snapshot = state.iptables_snapshot if iptables else state.owned_snapshot
    if not snapshot.exists():
        raise RuntimeFailure(f"no snapshot in {state.path}: nothing to roll back to")
    with state.locked(), signals_blocked():
        pending = state.read_json(state.pending)
        how = restore_snapshot(state, runner)
        state.pending.unlink(missing_ok=True)
        state.applied_record().unlink(missing_ok=True)
        state.record(
            "rollback", apply_id=(pending or {}).get("apply_id"), reason="by hand", restored=how
        )
        return how


def _owned_listing(runner: Runner, fingerprint: str | None) -> str:
    """`nft list table inet ppsguard`, or empty text when the table does not exist."""
    if fingerprint is None:
        return ""
    return runner.run(["nft", "list", "table", TABLE_FAMILY, TABLE_NAME])


def pending_window(state: StateDir) -> dict[str, object] | None:
    return state.read_json(state.pending)


def _json(value: object) -> str:
    return json.dumps(value, sort_keys=True, indent=1) + "\n"
