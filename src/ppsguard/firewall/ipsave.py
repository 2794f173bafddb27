"""The iptables tools of the iptables target: backend, save, `--noflush` restore, rollback.

The backend is the one `iptables -V` names ("legacy" or "nf_tables"), or the one asked for;
the tools are then `iptables-legacy-save` / `iptables-nft-restore` (and `ip6tables-...`), so
the rules land where the machine's own `iptables` command shows them. `restore_owned` is what
the watchdog and `pps policy rollback` run for this target: it puts back our chain and our
jump only, as saved before the apply (`ipchains.restore_batch`). The apply is `iptables.py`.
"""

from __future__ import annotations

import shutil

from ppsguard.errors import KernelFeatureMissing, RuntimeFailure, UsageError
from ppsguard.firewall.ipchains import OwnedChain, backend_of, owned_state, restore_batch
from ppsguard.firewall.nft import Runner
from ppsguard.firewall.statedir import StateDir

BACKENDS = ("legacy", "nft")
FAMILIES = (("v4", 4), ("v6", 6))


def tool(backend: str, version: int, kind: str) -> str:
    """`iptables-legacy-save`, `ip6tables-nft-restore`, ..."""
    return f"{'iptables' if version == 4 else 'ip6tables'}-{backend}-{kind}"


def detect_backend(runner: Runner) -> str:
    """The backend `iptables -V` reports ("legacy" or "nft")."""
    try:
        text = runner.run(["iptables", "-V"])
    except KernelFeatureMissing:
        text = ""
    found = backend_of(text)
    if found is None:
        present = [b for b in BACKENDS if shutil.which(tool(b, 4, "restore"))]
        if len(present) != 1:
            raise KernelFeatureMissing(
                "cannot tell the iptables backend (`iptables -V` names neither legacy nor "
                "nf_tables): choose one with --backend legacy|nft"
            )
        found = present[0]
    return found


def resolve_backend(runner: Runner, requested: str | None) -> str:
    if requested in {None, "auto"}:
        return detect_backend(runner)
    if requested not in BACKENDS:
        raise UsageError("unknown iptables backend", token=str(requested), hint="auto, legacy, nft")
    return requested


def read_save(runner: Runner, backend: str, version: int) -> str:
    """`iptables-<backend>-save -c` (all tables that exist; none is created by reading)."""
    return runner.run([tool(backend, version, "save"), "-c"])


def read_owned(runner: Runner, backend: str) -> dict[str, OwnedChain]:
    return {family: owned_state(read_save(runner, backend, v)) for family, v in FAMILIES}


def restore(runner: Runner, backend: str, version: int, text: str, *, test: bool = False) -> None:
    argv = [tool(backend, version, "restore"), "--noflush"]
    runner.run([*argv, "--test"] if test else argv, stdin=text)


def _saved(value: object) -> OwnedChain:
    if not isinstance(value, dict):
        return OwnedChain(False, (), ())
    rules = value.get("rules") if isinstance(value.get("rules"), list) else []
    jumps = value.get("jumps") if isinstance(value.get("jumps"), list) else []
    assert isinstance(rules, list) and isinstance(jumps, list)
    return OwnedChain(
        bool(value.get("present")),
        tuple(str(r) for r in rules),
        tuple(int(j) for j in jumps if isinstance(j, int)),
    )


def restore_owned(state: StateDir, runner: Runner) -> str:
    """Put our chains and jumps back as saved before the last iptables apply; returns how."""
    saved = state.read_json(state.iptables_snapshot)
    if saved is None:
        raise RuntimeFailure(f"no iptables snapshot in {state.path}: nothing to roll back to")
    backend = str(saved.get("backend"))
    if backend not in BACKENDS:
        raise RuntimeFailure(f"iptables snapshot in {state.path} names no known backend")
    for family, version in FAMILIES:
        current = owned_state(read_save(runner, backend, version))
        text = restore_batch(_saved(saved.get(family)), current)
        if text:
            restore(runner, backend, version, text)
    return f"owned-chains ({backend})"
