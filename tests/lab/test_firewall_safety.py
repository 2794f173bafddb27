"""The rollback cannot be lost: each defect of the hostile review, reproduced in a lab host.

- Ctrl-C, hang-up, TERM and SIGKILL while `nft -f` loads the new table (a wrapper on PATH makes
  the load take 2 s and marks its start): the watchdog is already armed and alive at that
  moment, held signals only take effect after the load, and the old table comes back;
- `--confirm-within nan | inf | -5 | 5 | 3601 | abc`: one line, exit 2, nothing applied;
- a full state disk (a real 64 KiB tmpfs, filled): one line, exit 3, nothing applied;
- a state folder another user could write (mode, owner, link): refused, nothing applied;
- a table other software adds during the window survives the rollback (only ours is restored).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_firewall_helpers import pps, ruleset

from ppsguard.lab.hosts import Host
from ppsguard.testing.waiting import wait_for

pytestmark = pytest.mark.lab

PPS = [sys.executable, "-m", "ppsguard"]
SEED = Path(__file__).resolve().parents[2] / "examples" / "seed-building.yaml"
OTHER_TABLE = """table ip other {
	chain input {
		type filter hook input priority 10; policy accept;
		ip saddr 198.18.0.66 counter drop
	}
}
"""
SLOW_NFT = """#!/bin/sh
# Test wrapper: a load (`nft -f -`, not `nft -c`) marks its start, then takes 2 s.
case " $* " in *" -c "*) exec {nft} "$@";; esac
if [ "$1" = "-f" ]; then echo "$$" >> "{mark}"; sleep 2; fi
exec {nft} "$@"
"""


def _log(state: Path, netns: str) -> list[dict]:  # type: ignore[type-arg]
    path = state / f"netns-{netns}" / "apply-log.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")


def _one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    """The error, which must be one line (the diff shown before it is output, not error)."""
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("pps: error")]
    assert len(errors) == 1 and done.stderr.rstrip().endswith(errors[0]), done.stderr
    return errors[0]


@pytest.mark.parametrize(
    ("signal_number", "whole_group"),
    [
        (signal.SIGINT, True),  # Ctrl-C: the terminal signals the whole foreground group
        (signal.SIGHUP, True),  # the SSH session drops
        (signal.SIGTERM, False),
        (signal.SIGKILL, False),  # cannot be held: the watchdog armed before the load saves it
    ],
    ids=["SIGINT", "SIGHUP", "SIGTERM", "SIGKILL"],
)
def test_signal_during_the_load_still_rolls_back(
    lab_factory, tmp_path: Path, signal_number: int, whole_group: bool
) -> None:  # type: ignore[no-untyped-def]
    fw: Host = lab_factory(["fw"])["fw"]
    fw.nft(OTHER_TABLE)
    before = ruleset(fw)
    tools = tmp_path / "bin"
    tools.mkdir()
    mark = tmp_path / "load-started"
    wrapper = tools / "nft"
    wrapper.write_text(SLOW_NFT.format(nft="/usr/sbin/nft", mark=mark))
    wrapper.chmod(0o755)
    state = tmp_path / "state"
    environment = {k: v for k, v in os.environ.items() if k != "SSH_CONNECTION"}
    environment.update(PPSGUARD_STATE_DIR=str(state), PATH=f"{tools}:{os.environ['PATH']}")
    process = subprocess.Popen(
        [*PPS, "policy", "apply", str(SEED), "--netns", fw.netns, "--confirm-within", "10"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment,
        start_new_session=True,
    )
    try:
        assert wait_for(mark.exists, 60), "the load never started"
        # The moment the new rules are being loaded, the rollback owner already exists.
        pending = json.loads((state / f"netns-{fw.netns}" / "pending.json").read_text())
        watchdog = int(pending["watchdog_pid"])
        assert _alive(watchdog)
        if whole_group:
            os.killpg(process.pid, signal_number)
        else:
            os.kill(process.pid, signal_number)
        process.wait(30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()
        process.stderr.close()
    assert process.returncode != 0
    if signal_number != signal.SIGKILL:
        # held until the load was done and recorded: the new table is in, the record complete
        assert "table inet ppsguard" in ruleset(fw)
        assert [row["action"] for row in _log(state, fw.netns)] == ["apply"]
    else:
        # the load goes on without its parent; the table arrives, then the watchdog removes it
        assert wait_for(lambda: "table inet ppsguard" in ruleset(fw), 20)
    assert wait_for(lambda: "table inet ppsguard" not in ruleset(fw), 40)
    assert ruleset(fw) == before
    assert wait_for(lambda: _log(state, fw.netns)[-1]["action"] == "watchdog-rollback", 10)
    assert wait_for(lambda: not _alive(watchdog), 10)


def test_window_must_be_finite_and_bounded(lab_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fw: Host = lab_factory(["fw"])["fw"]
    for value in ["nan", "inf", "-inf", "-5", "5", "3601", "abc", "1e400"]:
        done = pps(
            ["policy", "apply", str(SEED), "--netns", fw.netns, f"--confirm-within={value}"],
            str(tmp_path),
        )
        assert done.returncode == 2, (value, done.stderr)
        line = _one_line_error(done)
        assert "--confirm-within" in line and "10 to 3600" in line, line
        assert ruleset(fw).strip() == ""
    assert not list(tmp_path.glob("*/pending.json"))


@contextlib.contextmanager
def _tiny_tmpfs(path: Path, size: str = "64k"):  # type: ignore[no-untyped-def]
    path.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)], check=True
    )
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_full_state_disk_fails_before_applying(lab_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fw: Host = lab_factory(["fw"])["fw"]
    fw.nft(OTHER_TABLE)
    before = ruleset(fw)
    with _tiny_tmpfs(tmp_path / "state") as state:
        with contextlib.suppress(OSError), (state / "filler").open("wb") as filler:
            while True:
                filler.write(b"x" * 4096)
                filler.flush()
        done = pps(
            ["policy", "apply", str(SEED), "--netns", fw.netns, "--confirm-within", "10"],
            str(state),
        )
        assert done.returncode == 3, done.stderr
        line = _one_line_error(done)
        assert str(state) in line and "nothing was applied" in line, line
        assert ruleset(fw) == before
        assert not (state / f"netns-{fw.netns}" / "pending.json").exists()


@pytest.mark.parametrize("how", ["mode", "owner", "base-mode", "symlink"])
def test_state_folder_others_could_write_is_refused(lab_factory, tmp_path: Path, how: str) -> None:  # type: ignore[no-untyped-def]
    fw: Host = lab_factory(["fw"])["fw"]
    base = tmp_path / "state"
    folder = base / f"netns-{fw.netns}"
    folder.mkdir(parents=True, mode=0o700)
    base.chmod(0o700)
    if how == "mode":
        folder.chmod(0o755)
    elif how == "owner":
        os.chown(folder, 65534, 65534)
    elif how == "base-mode":
        base.chmod(0o777)
    else:
        folder.rmdir()
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir(mode=0o700)
        folder.symlink_to(elsewhere)
    # what a user who can write there would plant: a "snapshot" root would restore
    planted = (
        "table inet ppsguard {\n\tchain input {\n\t\ttype filter hook input priority 0;\n\t}\n}\n"
    )
    with contextlib.suppress(OSError):
        (folder / "snapshot-owned.nft").write_text(planted)
    for args in (
        ["policy", "apply", str(SEED), "--netns", fw.netns, "--confirm-within", "10"],
        ["policy", "rollback", "--netns", fw.netns],
        ["policy", "confirm", "--netns", fw.netns],
    ):
        done = pps(args, str(base))
        line = _one_line_error(done)
        assert done.returncode == 3 and "refusing to use the state folder" in line, line
        assert ruleset(fw).strip() == ""


def test_table_added_during_the_window_survives_the_rollback(lab_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fw: Host = lab_factory(["fw"])["fw"]
    fw.nft(OTHER_TABLE)
    done = pps(
        ["policy", "apply", str(SEED), "--netns", fw.netns, "--confirm-within", "10"],
        str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    # as Docker or libvirt would during the window
    fw.nft(
        "table ip docker_like {\n\tchain forward {\n\t\ttype filter hook forward priority 0; "
        "policy accept;\n\t\tip daddr 198.18.0.200 tcp dport 8080 accept\n\t}\n}\n"
    )
    fw.run(["nft", "add", "rule", "ip", "other", "input", "tcp", "dport", "9999", "drop"])
    assert wait_for(lambda: "table inet ppsguard" not in ruleset(fw), 40)
    after = ruleset(fw)
    assert "table ip docker_like" in after and "198.18.0.200" in after
    assert "tcp dport 9999 drop" in after  # a change to another table during the window stays
    assert "198.18.0.66" in after
    # the watchdog writes its log line after the restore: wait for that too
    assert wait_for(lambda: _log(tmp_path, fw.netns)[-1]["action"] != "apply", 10)
    last = _log(tmp_path, fw.netns)[-1]
    assert last["action"] == "watchdog-rollback" and last["restored"] == "owned-table"


def test_a_rejected_apply_keeps_the_open_window(lab_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Apply A with a window, then a table the kernel rejects: nothing changes, and the window
    of A still ends in a rollback to the rule set before A (its watchdog was not lost)."""
    from ppsguard.errors import InputError
    from ppsguard.firewall.apply import apply_table
    from ppsguard.firewall.nft import Runner
    from ppsguard.firewall.statedir import StateDir

    fw: Host = lab_factory(["fw"])["fw"]
    fw.nft(OTHER_TABLE)
    before = ruleset(fw)
    done = pps(
        ["policy", "apply", str(SEED), "--netns", fw.netns, "--confirm-within", "10"],
        str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    with_a = ruleset(fw)
    bad = "table inet ppsguard {\n\tchain input {\n\t\tip saddr @missing accept\n\t}\n}\n"
    state = StateDir.for_netns(fw.netns, tmp_path)
    with pytest.raises(InputError):
        apply_table(bad, runner=Runner(netns=fw.netns), state=state, window=10.0, force=True)
    assert ruleset(fw) == with_a
    assert wait_for(lambda: "table inet ppsguard" not in ruleset(fw), 40)
    assert ruleset(fw) == before
