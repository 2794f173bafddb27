"""The iptables target's safe apply in a lab host, on both backends (legacy and nf_tables).

Idempotent re-apply (one jump, first in INPUT; other rules and chains untouched), a changed
registry, a change by hand noticed by status and undone by the next apply, rollback by hand,
and the watchdog's rollback after the apply's whole session is killed at its confirm prompt —
for the chains as they were before: absent, or from an earlier confirmed apply.
"""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_firewall_helpers import pps

from ppsguard.lab.hosts import Host
from ppsguard.testing.waiting import wait_for

pytestmark = pytest.mark.lab

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed-building.yaml"
BACKENDS = ["legacy", "nft"]
# Someone else's rules: they must survive every apply and rollback.
OTHERS = """*filter
:ufw-user-input - [0:0]
-A INPUT -s 198.18.0.66/32 -j DROP
-A INPUT -j ufw-user-input
-A ufw-user-input -p tcp -m tcp --dport 22 -j ACCEPT
COMMIT
"""


def _save(fw: Host, backend: str) -> str:
    """Both families' saves, counters and comment lines removed."""
    text = "".join(fw.run([f"{tool}-{backend}-save"]).stdout for tool in ("iptables", "ip6tables"))
    return "\n".join(
        re.sub(r"\[\d+:\d+\]", "[0:0]", line) for line in text.splitlines() if line[:1] != "#"
    )


def _v4(fw: Host, backend: str) -> list[str]:
    text = fw.run([f"iptables-{backend}-save"]).stdout
    return [re.sub(r"\[\d+:\d+\]", "[0:0]", x) for x in text.splitlines() if x[:1] != "#"]


def _rules_of(save: str) -> list[str]:
    return [x for x in save.splitlines() if x.startswith(("-A ", ":PPSGUARD"))]


def _rules(fw: Host, backend: str) -> list[str]:
    return _rules_of(_save(fw, backend))


def _log(state: Path, netns: str) -> list[dict]:  # type: ignore[type-arg]
    path = state / f"netns-{netns}" / "apply-log.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _apply(fw: Host, backend: str, registry: Path = SEED, window: str = "0") -> list[str]:
    return [
        "policy", "apply", str(registry), "--netns", fw.netns, "--confirm-within", window,
        "--target", "iptables", "--backend", backend,
    ]  # fmt: skip


@pytest.mark.parametrize("backend", BACKENDS)
def test_reapply_is_idempotent_and_only_our_chain_changes(lab_factory, tmp_path, backend) -> None:  # type: ignore[no-untyped-def]
    fw = lab_factory(["fw"])["fw"]
    fw.run([f"iptables-{backend}-restore", "--noflush"], input=OTHERS)
    others_v4 = _v4(fw, backend)
    state = str(tmp_path)
    assert pps(_apply(fw, backend), state).returncode == 0
    first = _save(fw, backend)
    assert pps(_apply(fw, backend), state).returncode == 0
    assert _save(fw, backend) == first
    inputs = [
        line
        for line in fw.run([f"iptables-{backend}-save"]).stdout.splitlines()
        if line.startswith("-A INPUT ")
    ]
    assert inputs[0] == "-A INPUT -j PPSGUARD-INPUT" and inputs.count(inputs[0]) == 1
    # everything that was there before is still there, in order, after our jump
    assert [x for x in _v4(fw, backend) if "PPSGUARD" not in x] == others_v4
    assert first.count(":PPSGUARD-INPUT - [0:0]") == 2  # IPv4 and IPv6
    changed = tmp_path / "changed.yaml"
    changed.write_text(
        SEED.read_text().replace(
            "    provides:\n",
            "    provides:\n      - id: imap\n        service: imap\n        from: anywhere\n",
        )
    )
    assert pps(_apply(fw, backend, changed), state).returncode == 0
    third = _save(fw, backend)
    assert "--comment imap" in third and third.count("-j PPSGUARD-INPUT") == 2
    status = pps(["policy", "status", "--netns", fw.netns, "--json"], state)
    report = json.loads(status.stdout)
    assert status.returncode == 0, status.stdout
    assert report["target"] == "iptables" and report["backend"] == backend
    assert report["unchanged_since_apply"] is True and report["state"] == "enforced"
    # a change by hand is noticed by status and undone by the next apply
    fw.run([f"iptables-{backend}", "-I", "PPSGUARD-INPUT", "1", "-p", "tcp", "--dport", "4444",
            "-j", "ACCEPT"])  # fmt: skip
    drifted = pps(["policy", "status", "--netns", fw.netns], state)
    assert drifted.returncode == 1 and "changed by hand" in drifted.stderr
    again = pps(_apply(fw, backend, changed), state)
    assert again.returncode == 0 and "changed by hand" in again.stderr
    assert "4444" not in _save(fw, backend) and _save(fw, backend) == third
    # a second jump someone added is folded back into one, first
    fw.run([f"iptables-{backend}", "-A", "INPUT", "-j", "PPSGUARD-INPUT"])
    before_last = _save(fw, backend)
    assert pps(_apply(fw, backend, changed), state).returncode == 0
    assert _save(fw, backend) == third
    rolled = pps(["policy", "rollback", "--netns", fw.netns], state)
    assert rolled.returncode == 0, rolled.stderr
    assert _save(fw, backend) == before_last  # our chain and jumps as before the last apply
    actions = [row["action"] for row in _log(tmp_path, fw.netns)]
    assert actions == ["apply"] * 5 + ["rollback"]
    assert {row.get("backend") for row in _log(tmp_path, fw.netns)[:5]} == {backend}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("previous", ["absent", "applied"])
def test_killed_apply_is_rolled_back_by_the_watchdog(  # type: ignore[no-untyped-def]
    lab_factory, tmp_path, backend, previous
) -> None:
    """apply waits at its confirm prompt on a terminal; kill its whole session and hang up."""
    fw = lab_factory(["fw"])["fw"]
    fw.run([f"iptables-{backend}-restore", "--noflush"], input=OTHERS)
    if previous == "applied":
        earlier = tmp_path / "earlier.yaml"
        earlier.write_text(SEED.read_text().replace("default: deny", "default: reject"))
        assert pps(_apply(fw, backend, earlier), str(tmp_path)).returncode == 0
    before = _save(fw, backend)
    applies = len(_log(tmp_path, fw.netns))  # before the apply starts: it may be quick
    master, slave = pty.openpty()
    environment = {k: v for k, v in os.environ.items() if k != "SSH_CONNECTION"}
    environment["PPSGUARD_STATE_DIR"] = str(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "ppsguard", *_apply(fw, backend, window="10")],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=environment,
        start_new_session=True,
    )
    os.close(slave)
    try:
        assert wait_for(lambda: len(_log(tmp_path, fw.netns)) > applies, 20)
        assert _rules(fw, backend) != _rules_of(before)
        assert process.poll() is None, "apply should be waiting at its prompt"
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
    finally:
        os.close(master)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    # (the legacy ip6 filter table the apply created stays, empty: the kernel keeps it)
    assert wait_for(lambda: _rules(fw, backend) == _rules_of(before), 30), _save(fw, backend)
    if previous == "absent":
        assert "PPSGUARD-INPUT" not in before
    # the watchdog writes its log line after the restore: wait for that too
    assert wait_for(lambda: _log(tmp_path, fw.netns)[-1]["action"] != "apply", 10)
    last = _log(tmp_path, fw.netns)[-1]
    assert last["action"] == "watchdog-rollback"
    assert last["restored"] == f"owned-chains ({backend})"


def test_confirm_keeps_and_the_other_target_waits(lab_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    fw = lab_factory(["fw"])["fw"]
    state = str(tmp_path)
    assert pps(_apply(fw, "nft", window="10"), state).returncode == 0
    other = pps(["policy", "apply", str(SEED), "--netns", fw.netns, "--confirm-within", "0"], state)
    assert other.returncode == 2 and "waits for confirmation" in other.stderr
    confirmed = pps(["policy", "confirm", "--netns", fw.netns], state)
    assert confirmed.returncode == 0, confirmed.stderr
    time.sleep(11)  # past the deadline: the watchdog saw the confirm marker and left
    assert "-A INPUT -j PPSGUARD-INPUT" in _save(fw, "nft")
    assert [row["action"] for row in _log(tmp_path, fw.netns)] == ["apply", "confirm"]
