"""Pure and local parts of the safe apply: window bounds, state folder rules, ancestry, flows."""

from __future__ import annotations

import ast
import ipaddress
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ppsguard.errors import RuntimeFailure, UsageError
from ppsguard.firewall.apply import MAX_WINDOW, MIN_WINDOW, validate_window
from ppsguard.firewall.established import Flow, established_rules
from ppsguard.firewall.session import ancestry
from ppsguard.firewall.statedir import StateDir, StateFolderRefused


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", -5, 5, 9.99, 3600.5, "abc", "1e400"])
def test_window_refused(value: object) -> None:
    with pytest.raises(UsageError, match="--confirm-within"):
        validate_window(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (0, None),
        ("0", None),
        (MIN_WINDOW, MIN_WINDOW),
        ("120", 120.0),
        (MAX_WINDOW, MAX_WINDOW),
    ],
)
def test_window_accepted(value: object, expected: float | None) -> None:
    assert validate_window(value) == expected  # type: ignore[arg-type]


def test_state_folder_rules(tmp_path: Path) -> None:
    base = tmp_path / "state"
    state = StateDir.for_netns("lab", base)
    state.check()  # created 0700
    assert oct(state.path.stat().st_mode & 0o777) == "0o700" and state.trusted()
    state.write_atomic(state.pending, "{}\n")
    assert state.pending.read_text() == "{}\n"
    assert not [p for p in state.path.iterdir() if p.name.startswith(".")]  # no temp left
    state.path.chmod(0o750)
    with pytest.raises(StateFolderRefused, match="mode 0750"):
        state.check()
    assert not state.trusted()
    state.path.chmod(0o700)
    base.chmod(0o775)
    with pytest.raises(StateFolderRefused, match="must be 0700 or 0755"):
        state.check()
    base.chmod(0o755)
    state.check()


def test_state_write_does_not_follow_a_planted_link(tmp_path: Path) -> None:
    state = StateDir.for_netns(None, tmp_path)
    state.check()
    victim = tmp_path / "victim"
    victim.write_text("keep")
    # even a link planted under the temporary name is not followed: the name is random
    state.write_atomic(state.applied, "new\n")
    state.applied.unlink()
    state.applied.symlink_to(victim)
    state.write_atomic(state.applied, "replaced\n")
    assert victim.read_text() == "keep" and not state.applied.is_symlink()


def test_space_check(tmp_path: Path) -> None:
    state = StateDir.for_netns(None, tmp_path)
    state.check()
    state.require_space(1)
    with pytest.raises(RuntimeFailure, match="nothing was applied"):
        state.require_space(2**62)


def test_ancestry_reaches_this_process_parents() -> None:
    child = subprocess.run(
        [sys.executable, "-c", "from ppsguard.firewall.session import ancestry; print(ancestry())"],
        capture_output=True,
        text=True,
        check=True,
    )
    chain = ast.literal_eval(child.stdout)
    assert chain[1] == os.getpid() and chain[-1] == 1
    assert ancestry()[0] == os.getpid()


def test_established_rules_text() -> None:
    v4 = Flow(ipaddress.ip_address("198.18.0.2"), 51000, ipaddress.ip_address("198.18.0.1"), 22)
    v6 = Flow(ipaddress.ip_address("2001:db8::2"), 51001, ipaddress.ip_address("2001:db8::1"), 22)
    text = established_rules((v4, v6))
    assert "198.18.0.2 . 51000 . 198.18.0.1 . 22" in text
    assert "2001:db8::2 . 51001 . 2001:db8::1 . 22" in text
    assert text.count("insert rule inet ppsguard input") == 2
    assert established_rules(()) == ""
