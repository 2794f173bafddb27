"""Safe apply of ppsguard's iptables chains: the iptables target with the nftables target's rules.

`apply_iptables` follows `apply.apply_table` step for step (see there): the window is
validated and the state folder checked; the anti-lockout guard refuses a policy that would cut
the operator's SSH session; `iptables-restore --test --noflush` checks both families' input;
then, under the state lock with the critical signals held back, the previous state of OUR
chains (`PPSGUARD-INPUT` and its jump, per family, see `ipchains.py`) is saved, pending.json is
written and the detached watchdog is armed — all before the load; then one `--noflush` restore
per family (one commit of the `filter` table each). If the IPv6 commit is refused after the
IPv4 one went in, the IPv4 chain is put back at once: an apply is both families or neither.

The backend and the tools are `ipsave.py`'s, which also holds `restore_owned`, what the
watchdog and `pps policy rollback` run for this target: it touches our chain and our jump only.
The target (and backend) of the last apply is in the state folder's `target.json`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping

from ppsguard.errors import RuntimeFailure, UsageError
from ppsguard.firewall.apply import (
    ApplyOutcome,
    Warn,
    _disarm,
    _json,
    begin_apply,
    describe_change,
    signals_blocked,
)
from ppsguard.firewall.ipchains import (
    OwnedChain,
    apply_batch,
    body_text,
    established_lines,
    fingerprint,
    owned_state,
    restore_batch,
)
from ppsguard.firewall.ipsave import (
    FAMILIES,
    read_owned,
    read_save,
    resolve_backend,
    restore,
)
from ppsguard.firewall.nft import RulesetRejected, Runner
from ppsguard.firewall.statedir import StateDir
from ppsguard.model.registry import HostPolicy

MAX_ESTABLISHED_RULES = 4096  # one rule each in a flat chain: keep the first apply cheap


def _established(netns: str | None, note: Warn) -> dict[str, list[str]]:
    from ppsguard.firewall.established import established_flows

    flows, problem = established_flows(netns)
    if problem:
        note(problem)
    if len(flows) > MAX_ESTABLISHED_RULES:
        note(
            f"{len(flows):,} established connections; only {MAX_ESTABLISHED_RULES:,} are kept "
            "open through the apply (iptables needs one rule each)"
        )
        flows = flows[:MAX_ESTABLISHED_RULES]
    out: dict[str, list[str]] = {}
    for family, version in FAMILIES:
        out[family] = established_lines(
            [
                (str(f.remote), f.remote_port, str(f.local), f.local_port)
                for f in flows
                if f.remote.version == version and f.local.version == version
            ]
        )
    return out


def _snapshot(backend: str, chains: dict[str, OwnedChain]) -> str:
    return _json(
        {
            "backend": backend,
            **{
                family: {"present": c.present, "rules": list(c.rules), "jumps": list(c.jumps)}
                for family, c in chains.items()
            },
        }
    )


def apply_iptables(
    policy: HostPolicy,
    *,
    runner: Runner,
    state: StateDir,
    window: float | None,
    backend: str | None = None,
    log_group: int = 5,
    force: bool = False,
    keep_established: bool = True,
    details: Mapping[str, object] | None = None,
    clock: Callable[[], float] = time.time,
    warn: Warn | None = None,
) -> ApplyOutcome:
    """Guard, check, save, arm the watchdog, then load both families (module docstring)."""
    from ppsguard.firewall.render import RenderOptions
    from ppsguard.firewall.render.iptables import IptablesRenderer
    from ppsguard.firewall.watchdog import spawn
    from ppsguard.firewall.window import open_window

    window, warnings, note = begin_apply(
        window, state=state, runner=runner, policy=policy, force=force, warn=warn
    )
    backend = resolve_backend(runner, backend)
    options = RenderOptions(log_group=log_group)
    renderer = IptablesRenderer()
    bodies = {f: renderer.chain_body(policy, v, options) for f, v in FAMILIES}
    kept = _established(runner.netns, note) if keep_established else {}
    loaded = {f: [*kept.get(f, []), *bodies[f]] for f, _ in FAMILIES}
    current = read_owned(runner, backend)
    for family, version in FAMILIES:
        restore(runner, backend, version, apply_batch(loaded[family], current[family]), test=True)
    apply_id = uuid.uuid4().hex[:12]
    fields = {"target": "iptables", "backend": backend, **dict(details or {})}
    text = body_text(bodies)
    with state.locked(), signals_blocked():
        pending = state.read_json(state.pending)
        last_target, _ = state.target()
        if pending is not None and last_target != "iptables":
            raise UsageError(
                f"an apply of the {last_target} target waits for confirmation: run "
                "`pps policy confirm` or `pps policy rollback` first"
            )
        previous = state.read_json(state.iptables_applied) or {}
        change = describe_change(
            previous.get("text") if isinstance(previous.get("text"), str) else None, text
        )
        current = read_owned(runner, backend)  # again, under the lock
        batches = {f: apply_batch(loaded[f], current[f]) for f, _ in FAMILIES}
        state.require_space(4 * sum(len(b) for b in batches.values()))
        before = fingerprint(current)
        if pending is None:
            state.write_atomic(state.iptables_snapshot, _snapshot(backend, current))
        state.set_target("iptables", backend)
        pid: int | None = None
        if window is not None:
            pid = open_window(state, apply_id, window, spawn, clock, target="iptables")
        done: list[int] = []
        try:
            for family, version in FAMILIES:
                restore(runner, backend, version, batches[family])
                done.append(version)
        except RulesetRejected as exc:
            if done:  # IPv4 went in, IPv6 was refused: both or neither
                restore_owned_from(runner, backend, current, done)
            _disarm(state, apply_id, pending, pid)
            state.record("apply-rejected", apply_id=apply_id, error=str(exc)[:500], **fields)
            raise
        try:
            after = fingerprint(read_owned(runner, backend))
            deadline: float | None = None
            if window is not None:
                deadline = clock() + window
                state.write_atomic(
                    state.pending,
                    _json(
                        {
                            "apply_id": apply_id,
                            "deadline": deadline,
                            "watchdog_pid": pid,
                            "target": "iptables",
                        }
                    ),
                )
            elif pending is not None:
                state.pending.unlink(missing_ok=True)
            state.write_atomic(
                state.iptables_applied,
                _json({"apply_id": apply_id, "fingerprint": after, "text": text, **fields}),
            )
            state.record(
                "apply",
                apply_id=apply_id,
                added=list(change.added),
                removed=list(change.removed),
                fingerprint_before=before,
                fingerprint_after=after,
                window=window,
                kept_open=sum(len(v) for v in kept.values()),
                **fields,
            )
        except RuntimeFailure as exc:
            then = (
                "the watchdog restores the previous chains at the deadline unless confirmed"
                if pid is not None
                else "it stays (no confirm window)"
            )
            raise RuntimeFailure(f"the new rule set is loaded, but {exc}; {then}") from None
    return ApplyOutcome(
        apply_id,
        change,
        deadline,
        pid,
        after,
        sum(len(v) for v in kept.values()),
        tuple(warnings),
    )


def restore_owned_from(
    runner: Runner, backend: str, saved: dict[str, OwnedChain], versions: list[int]
) -> None:
    """Put the families in `versions` back to `saved` (after a half-done apply)."""
    for family, version in FAMILIES:
        if version in versions:
            current = owned_state(read_save(runner, backend, version))
            text = restore_batch(saved[family], current)
            if text:
                restore(runner, backend, version, text)


def check_iptables(policy: HostPolicy, runner: Runner, backend: str | None, log_group: int) -> str:
    """What --dry-run does: the restore input both families would get, checked with --test;
    returns the backend."""
    from ppsguard.firewall.render import RenderOptions
    from ppsguard.firewall.render.iptables import IptablesRenderer

    backend = resolve_backend(runner, backend)
    current = read_owned(runner, backend)
    renderer = IptablesRenderer()
    for family, version in FAMILIES:
        body = renderer.chain_body(policy, version, RenderOptions(log_group=log_group))
        restore(runner, backend, version, apply_batch(body, current[family]), test=True)
    return backend


def applied_text(state: StateDir) -> str | None:
    previous = state.read_json(state.iptables_applied) or {}
    text = previous.get("text")
    return text if isinstance(text, str) else None
