"""ppsguard's own iptables chain, read from `iptables-save` and replaced with `--noflush`. Pure.

The iptables target owns exactly two things per address family in the `filter` table: the
chain `PPSGUARD-INPUT` and ONE jump to it, first in INPUT. Nothing else is declared, so INPUT's
policy, its other rules and every other chain and table stay as they are. `owned_state` reads
those two things (and the per-entry counters of `iptables-save -c`) from save text;
`apply_batch` builds the `iptables-restore --noflush` input that puts a new chain body in
place and leaves exactly one jump at position 1, whatever was there before:

    *filter
    :PPSGUARD-INPUT - [0:0]          declared = created or flushed (also under --noflush)
    -A PPSGUARD-INPUT ...            the new body
    -D INPUT -j PPSGUARD-INPUT       once per jump that is not already alone at position 1
    -I INPUT 1 -j PPSGUARD-INPUT     (only when those were deleted or none existed)
    COMMIT

One restore run is one commit of the table (legacy: one table replace; nf_tables: one batch),
so a refused line changes nothing. `restore_batch` puts a saved state back: the old body and
jump, or — when the chain did not exist — no jump and no chain. `fingerprint` hashes the body
and jump position as the kernel reports them, without counters, so drift shows.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from dataclasses import dataclass

from ppsguard.firewall.render.iptables import CHAIN

JUMP = f"-j {CHAIN}"
ESTABLISHED_COMMENT = "ppsguard: established before apply"
_COUNTED = re.compile(r"^\[(\d+):(\d+)\] (.*)$")
_BACKEND = re.compile(r"\((legacy|nf_tables)\)")


@dataclass(frozen=True, slots=True)
class OwnedChain:
    """PPSGUARD-INPUT and the jumps to it, in one family's `filter` table."""

    present: bool
    rules: tuple[str, ...]  # the chain's `-A PPSGUARD-INPUT ...` lines, counters removed
    jumps: tuple[int, ...]  # 1-based positions in INPUT of `-j PPSGUARD-INPUT`
    counters: tuple[tuple[str, int, int], ...] = ()  # (entry id, packets, bytes)

    @property
    def in_place(self) -> bool:
        """Loaded and reached: the chain exists and INPUT jumps to it exactly once, first."""
        return self.present and self.jumps == (1,)


ABSENT = OwnedChain(False, (), ())


def backend_of(version_text: str) -> str | None:
    """`iptables v1.8.9 (nf_tables)` -> "nft"; `(legacy)` -> "legacy"; else None."""
    found = _BACKEND.search(version_text)
    if found is None:
        return None
    return "nft" if found.group(1) == "nf_tables" else "legacy"


def _comment(line: str) -> str | None:
    try:
        tokens = shlex.split(line)
    except ValueError:
        return None
    for index, word in enumerate(tokens[:-1]):
        if word == "--comment":
            return tokens[index + 1]
    return None


def owned_state(save_text: str) -> OwnedChain:
    """Our chain, its jump positions and per-entry counters in `iptables-save [-c]` text."""
    in_filter = False
    present = False
    rules: list[str] = []
    jumps: list[int] = []
    position = 0
    counters: dict[str, list[int]] = {}
    for raw in save_text.splitlines():
        line = raw.strip()
        if line.startswith("*"):
            in_filter = line == "*filter"
            continue
        if not in_filter:
            continue
        if line.startswith(f":{CHAIN} "):
            present = True
            continue
        packets = size = 0
        counted = _COUNTED.match(line)
        if counted:
            packets, size, line = int(counted.group(1)), int(counted.group(2)), counted.group(3)
        if line.startswith("-A INPUT "):
            position += 1
            if line == f"-A INPUT {JUMP}":
                jumps.append(position)
        elif line.startswith(f"-A {CHAIN} "):
            rules.append(line)
            entry = _comment(line)
            if entry and not entry.startswith("ppsguard:") and "-j NFLOG" not in line:
                slot = counters.setdefault(entry, [0, 0])
                slot[0] += packets
                slot[1] += size
    return OwnedChain(
        present,
        tuple(rules),
        tuple(jumps),
        tuple((entry, p, b) for entry, (p, b) in sorted(counters.items())),
    )


def fingerprint(states: dict[str, OwnedChain]) -> str | None:
    """A stable hash of our chains and jumps per family (`{"v4": ..., "v6": ...}`); None when
    no family holds our chain."""
    if not any(s.present for s in states.values()):
        return None
    canonical = "\n".join(
        f"{family} present={s.present} jumps={list(s.jumps)}\n" + "\n".join(s.rules)
        for family, s in sorted(states.items())
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _jump_fix(current: OwnedChain) -> list[str]:
    if current.jumps == (1,):
        return []
    return [f"-D INPUT {JUMP}"] * len(current.jumps) + [f"-I INPUT 1 {JUMP}"]


def apply_batch(body: list[str], current: OwnedChain) -> str:
    """`iptables-restore --noflush` input: our chain refilled with `body` (its `-A` lines) and
    exactly one jump, first in INPUT."""
    lines = ["*filter", f":{CHAIN} - [0:0]", *body, *_jump_fix(current), "COMMIT"]
    return "\n".join(lines) + "\n"


def restore_batch(previous: OwnedChain, current: OwnedChain) -> str:
    """Input that puts `previous` back over `current`: its body and jump, or nothing of ours."""
    if previous.present:
        lines = ["*filter", f":{CHAIN} - [0:0]", *previous.rules]
        if previous.jumps != current.jumps or not current.present:
            lines += [f"-D INPUT {JUMP}"] * len(current.jumps)
            lines += [f"-I INPUT {p} {JUMP}" for p in previous.jumps]
        return "\n".join([*lines, "COMMIT"]) + "\n"
    if not current.present and not current.jumps:
        return ""
    lines = ["*filter", *[f"-D INPUT {JUMP}"] * len(current.jumps)]
    if current.present:
        lines += [f"-F {CHAIN}", f"-X {CHAIN}"]
    return "\n".join([*lines, "COMMIT"]) + "\n"


def established_lines(flows: list[tuple[str, int, str, int]]) -> list[str]:
    """Rules accepting connections established before the apply (remote, rport, local, lport),
    inserted first (see `established.py` for why)."""
    return [
        f"-A {CHAIN} -p tcp -s {remote} --sport {remote_port} -d {local} --dport {local_port} "
        f'-m comment --comment "{ESTABLISHED_COMMENT}" -j ACCEPT'
        for remote, remote_port, local, local_port in flows
    ]


def body_text(bodies: dict[str, list[str]]) -> str:
    """The text recorded as "applied" (and diffed on the next apply): both families' bodies."""
    return "".join(
        f"# {family}\n" + "".join(line + "\n" for line in body)
        for family, body in sorted(bodies.items())
    )
