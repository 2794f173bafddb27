"""Safe apply in a lab host: idempotence, the confirm window, rollback, and rejected rule sets."""

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
from test_firewall_helpers import pps, ruleset

from ppsguard.errors import InputError
from ppsguard.firewall.apply import apply_table
from ppsguard.firewall.nft import Runner
from ppsguard.firewall.watchdog import StateDir
from ppsguard.lab.hosts import Host
from ppsguard.testing.waiting import wait_for

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed-building.yaml"
OTHER_TABLE = """table ip other {
	chain input {
		type filter hook input priority 10; policy accept;
		ip saddr 198.18.0.66 counter drop
	}
}
"""


def _normal(text: str) -> str:
    return re.sub(r"counter packets \d+ bytes \d+", "counter", text)


def _table(text: str, family: str, name: str) -> str:
    match = re.search(rf"^table {family} {name} {{\n.*?^}}\n", text, re.S | re.M)
    return match.group(0) if match else ""


def _log(state: Path, netns: str) -> list[dict]:
    path = state / f"netns-{netns}" / "apply-log.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _one_host(lab_factory) -> Host:
    return lab_factory(["fw"])["fw"]


@pytest.mark.lab
def test_apply_twice_is_idempotent_and_only_our_table_changes(lab_factory, tmp_path) -> None:
    fw = _one_host(lab_factory)
    fw.nft(OTHER_TABLE)
    args = ["policy", "apply", str(SEED), "--netns", fw.netns, "--confirm-within", "0"]
    assert pps(args, str(tmp_path)).returncode == 0
    first = _normal(ruleset(fw))
    assert pps(args, str(tmp_path)).returncode == 0
    second = _normal(ruleset(fw))
    assert first == second
    assert first.count("table inet ppsguard") == 1
    changed = tmp_path / "changed.yaml"
    changed.write_text(
        SEED.read_text().replace(
            "    provides:\n",
            "    provides:\n      - id: imap\n        service: imap\n        from: anywhere\n",
        )
    )
    assert pps([*args[:2], str(changed), *args[3:]], str(tmp_path)).returncode == 0
    third = _normal(ruleset(fw))
    assert _table(third, "ip", "other") == _table(first, "ip", "other") != ""
    assert _table(third, "inet", "ppsguard") != _table(first, "inet", "ppsguard")
    assert 'comment "imap"' in third
    status = pps(["policy", "status", "--netns", fw.netns, "--json"], str(tmp_path))
    report = json.loads(status.stdout)
    assert report["unchanged_since_apply"] is True
    # the foreign table holds a drop rule on the input hook: status says so and exits 1
    assert status.returncode == 1
    assert any("other" in p for p in report["problems"])
    actions = [row["action"] for row in _log(tmp_path, fw.netns)]
    assert actions == ["apply", "apply", "apply"]
    # a change by hand is noticed by status and by the next apply
    fw.run(["nft", "add", "rule", "inet", "ppsguard", "input", "tcp", "dport", "4444", "accept"])
    drifted = json.loads(
        pps(["policy", "status", "--netns", fw.netns, "--json"], str(tmp_path)).stdout
    )
    assert drifted["unchanged_since_apply"] is False
    again = pps(args, str(tmp_path))
    assert again.returncode == 0 and "changed by hand" in again.stderr
    assert "4444" not in ruleset(fw)


@pytest.mark.lab
@pytest.mark.parametrize("previous", ["empty", "other-table"])
def test_no_confirm_restores_previous(lab_factory, tmp_path, previous: str) -> None:
    fw = _one_host(lab_factory)
    if previous == "other-table":
        fw.nft(OTHER_TABLE)
    before = _normal(ruleset(fw))
    done = pps(
        ["policy", "apply", str(SEED), "--netns", fw.netns, "--confirm-within", "10"],
        str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    assert "inet ppsguard" in ruleset(fw)
    assert wait_for(lambda: "inet ppsguard" not in ruleset(fw), 30)
    assert _normal(ruleset(fw)) == before
    if previous == "empty":
        assert ruleset(fw).strip() == ""
    assert wait_for(lambda: _log(tmp_path, fw.netns)[-1]["action"] == "watchdog-rollback", 30)


@pytest.mark.lab
def test_confirm_keeps_the_new_rule_set(lab_factory, tmp_path) -> None:
    fw = _one_host(lab_factory)
    base = ["policy", "apply", str(SEED), "--netns", fw.netns, "--confirm-within", "10"]
    assert pps(base, str(tmp_path)).returncode == 0
    confirmed = pps(["policy", "confirm", "--netns", fw.netns], str(tmp_path))
    assert confirmed.returncode == 0, confirmed.stderr
    time.sleep(11)  # past the deadline: the watchdog saw the confirm marker and left
    assert "inet ppsguard" in ruleset(fw)
    assert [row["action"] for row in _log(tmp_path, fw.netns)] == ["apply", "confirm"]
    again = pps(["policy", "confirm", "--netns", fw.netns], str(tmp_path))
    assert again.returncode == 2 and "nothing to confirm" in again.stderr
    rolled = pps(["policy", "rollback", "--netns", fw.netns], str(tmp_path))
    assert rolled.returncode == 0, rolled.stderr
    assert ruleset(fw).strip() == ""


@pytest.mark.lab
def test_killing_the_apply_session_still_restores(lab_factory, tmp_path) -> None:
    """apply waits at its confirm prompt on a terminal; kill its whole session and hang up."""
    fw = _one_host(lab_factory)
    fw.nft(OTHER_TABLE)
    before = _normal(ruleset(fw))
    master, slave = pty.openpty()
    environment = {k: v for k, v in os.environ.items() if k != "SSH_CONNECTION"}
    environment["PPSGUARD_STATE_DIR"] = str(tmp_path)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ppsguard",
            "policy",
            "apply",
            str(SEED),
            "--netns",
            fw.netns,
            "--confirm-within",
            "10",
        ],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=environment,
        start_new_session=True,
    )
    os.close(slave)
    try:
        assert wait_for(lambda: "inet ppsguard" in ruleset(fw), 20)
        assert process.poll() is None, "apply should be waiting at its prompt"
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
    finally:
        os.close(master)  # the terminal goes away too
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    assert wait_for(lambda: "inet ppsguard" not in ruleset(fw), 30)
    assert _normal(ruleset(fw)) == before


@pytest.mark.lab
def test_rejected_rule_set_leaves_the_old_one(lab_factory, tmp_path) -> None:
    fw = _one_host(lab_factory)
    fw.nft(OTHER_TABLE)
    before = _normal(ruleset(fw))
    state = StateDir.for_netns(fw.netns, tmp_path)
    bad = "table inet ppsguard {\n\tchain input {\n\t\tip saddr @missing accept\n\t}\n}\n"
    with pytest.raises(InputError, match="nft rejected"):
        apply_table(bad, runner=Runner(netns=fw.netns), state=state, window=None)
    assert _normal(ruleset(fw)) == before
    # the kernel's own refusal (no nft -c first) is one transaction too: nothing changes
    with pytest.raises(InputError):
        Runner(netns=fw.netns).nft_apply(
            "add table inet ppsguard\n"
            + bad.replace(
                "table inet ppsguard {", "table inet ppsguard {\n\tchain x { jump nowhere; }", 1
            )
        )
    assert _normal(ruleset(fw)) == before


@pytest.mark.lab
def test_rollback_with_iptables_nft_tables_that_do_not_reload(lab_factory, tmp_path) -> None:
    """`-m recent` lists as `xt match recent`, which nft cannot reload: only our table goes back."""
    fw = _one_host(lab_factory)
    fw.run(
        [
            "iptables",
            "-A",
            "INPUT",
            "-p",
            "tcp",
            "--dport",
            "22",
            "-m",
            "recent",
            "--name",
            "ssh",
            "--set",
        ]
    )
    before = _normal(ruleset(fw))
    assert "xt match recent" in before
    done = pps(
        ["policy", "apply", str(SEED), "--netns", fw.netns, "--confirm-within", "10"], str(tmp_path)
    )
    assert done.returncode == 0, done.stderr
    assert wait_for(lambda: "inet ppsguard" not in ruleset(fw), 30)
    assert _normal(ruleset(fw)) == before
    assert fw.run(["iptables-save"]).stdout.count("--name ssh") == 1
    # the watchdog writes its log line after the restore: wait for that too
    assert wait_for(lambda: _log(tmp_path, fw.netns)[-1]["action"] != "apply", 10)
    last = _log(tmp_path, fw.netns)[-1]
    assert last["action"] == "watchdog-rollback" and last["restored"] == "owned-table"


@pytest.mark.lab
def test_status_sees_iptables_legacy_rules_nft_cannot(lab_factory, tmp_path) -> None:
    fw = _one_host(lab_factory)
    args = ["policy", "apply", str(SEED), "--netns", fw.netns, "--confirm-within", "0"]
    assert pps(args, str(tmp_path)).returncode == 0
    clean = pps(["policy", "status", "--netns", fw.netns, "--json"], str(tmp_path))
    assert clean.returncode == 0, clean.stdout
    fw.run(["iptables-legacy", "-A", "INPUT", "-p", "tcp", "--dport", "21", "-j", "DROP"])
    assert "table ip filter" not in ruleset(fw)  # legacy rules are invisible to nft
    status = pps(["policy", "status", "--netns", fw.netns, "--json"], str(tmp_path))
    report = json.loads(status.stdout)
    assert status.returncode == 1
    assert report["legacy_rules"] == ["-A INPUT -p tcp -m tcp --dport 21 -j DROP"]
    assert any("iptables-legacy" in p for p in report["problems"])
