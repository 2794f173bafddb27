"""Pure helpers of the safe apply and the command line around them (no kernel changes here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ppsguard.firewall.apply import describe_change, entry_ids, replacement_batch, ssh_session
from ppsguard.firewall.session import SessionSearch, lockout_problem
from ppsguard.firewall.watchdog import StateDir, owned_restore_text
from ppsguard.policy.compile import compile_host_policy
from ppsguard.registry.load import load_registry

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "examples" / "seed-building.yaml"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("198.18.0.9 51000 198.18.0.1 22", ("198.18.0.9", 51000, "198.18.0.1", 22)),
        ("2001:db8::9 51000 2001:db8::1 2222", ("2001:db8::9", 51000, "2001:db8::1", 2222)),
        ("fe80::1%eth0 1 fe80::2%eth0 22", ("fe80::1", 1, "fe80::2", 22)),
        ("", None),
        ("garbage", None),
        ("1.2.3 4 5 6", None),
    ],
)
def test_ssh_session(value: str, expected: tuple | None) -> None:
    session = ssh_session({"SSH_CONNECTION": value})
    if expected is None:
        assert session is None
    else:
        assert session is not None
        got = (str(session.client), session.client_port, str(session.server), session.server_port)
        assert got == expected


def _search(value: str, own: bool = True) -> SessionSearch:
    session = ssh_session({"SSH_CONNECTION": value})
    assert session is not None
    return SessionSearch((session,), own, "process ancestry" if own else "all SSH sessions")


def test_lockout_detected_and_allowed() -> None:
    policy = compile_host_policy(load_registry(SEED))
    problem = lockout_problem(policy, _search("198.18.0.9 51000 198.18.0.1 22"))
    assert problem is not None and "building/default" in problem and "22/tcp" in problem
    assert "your SSH session" in problem
    others = lockout_problem(policy, _search("198.18.0.9 51000 198.18.0.1 22", own=False))
    assert others is not None and "this command's own is unknown" in others
    assert lockout_problem(policy, _search("198.18.0.9 51000 198.18.0.1 80")) is None  # http
    assert lockout_problem(policy, SessionSearch((), False, "none")) is None


def test_replacement_batch_is_idempotent_shape() -> None:
    batch = replacement_batch("table inet ppsguard {\n}\n")
    assert batch.splitlines()[:2] == ["table inet ppsguard {}", "delete table inet ppsguard"]


def test_describe_change() -> None:
    old = 'chain a {\n counter accept comment "ftp"\n counter accept comment "pop3"\n}\n'
    new = 'chain a {\n counter accept comment "ftp"\n counter accept comment "imap"\n}\n'
    change = describe_change(old, new)
    assert change.added == ("imap",) and change.removed == ("pop3",)
    assert not change.unchanged and "+ counter accept comment" in change.diff
    assert describe_change(new, new).unchanged
    assert not describe_change(None, new).unchanged
    assert entry_ids(new) == {"ftp", "imap"}


def test_restore_touches_only_our_table() -> None:
    assert owned_restore_text("") == "table inet ppsguard {}\ndelete table inet ppsguard\n"
    restored = owned_restore_text("table inet ppsguard {\n}\n")
    assert "flush" not in restored and restored.endswith("table inet ppsguard {\n}\n")


def test_state_dir_per_namespace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PPSGUARD_STATE_DIR", str(tmp_path))
    assert StateDir.for_netns(None).path == tmp_path / "root"
    assert StateDir.for_netns("lab1").path == tmp_path / "netns-lab1"
    state = StateDir.for_netns("lab1")
    state.record("apply", apply_id="x")
    assert '"action": "apply"' in state.log.read_text()


def _pps(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ppsguard", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def test_compile_writes_files_and_refuses_bad_input(tmp_path: Path) -> None:
    done = _pps(
        "policy",
        "compile",
        str(SEED),
        "-t",
        "iptables",
        "-o",
        str(tmp_path / "rules"),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "rules.v4").read_text().startswith("# ppsguard")
    v6 = (tmp_path / "rules.v6").read_text()
    assert "# --- ip6tables-restore ---" not in v6  # one file per family, no stdout separators
    assert v6.count("*filter") == 1 and ":PPSGUARD-INPUT - [0:0]" in v6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rules.v4", "rules.v6"]
    out = _pps("policy", "compile", str(SEED), cwd=tmp_path)
    assert out.returncode == 0 and "table inet ppsguard {" in out.stdout
    bad = _pps("policy", "compile", str(SEED), "-t", "pf", cwd=tmp_path)
    assert bad.returncode == 2 and "unknown target" in bad.stderr and "Traceback" not in bad.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\nhosts:\n  h:\n    provides:\n      - service: nosuchservice\n")
    failed = _pps("policy", "compile", str(broken), "-o", str(tmp_path / "x.nft"), cwd=tmp_path)
    assert failed.returncode == 2 and "broken.yaml:" in failed.stderr
    assert not (tmp_path / "x.nft").exists()


def test_apply_refuses_to_cut_the_ssh_session(tmp_path: Path) -> None:
    """--dry-run as well, so even a broken check could not change the host's rule set."""
    import os

    environment = dict(
        os.environ,
        SSH_CONNECTION="198.18.0.9 51000 198.18.0.1 22",
        PPSGUARD_STATE_DIR=str(tmp_path),
    )
    done = subprocess.run(
        [sys.executable, "-m", "ppsguard", "policy", "apply", str(SEED), "--dry-run"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert "refusing to apply" in done.stderr and "22/tcp" in done.stderr
    assert "198.18.0.9" in done.stderr
