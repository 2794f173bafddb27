"""`pps lab up/status/down` make and remove a persistent practice lab for real."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ppsguard.lab.namespaces import list_lab_namespaces

pytestmark = pytest.mark.lab


def pps(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ppsguard", *args], capture_output=True, text=True, timeout=120
    )


def test_up_status_down_round_trip():
    up = pps("lab", "up", "--hosts", "scanner,target")
    assert up.returncode == 0, up.stderr
    # the lab's own id, from what `up` printed: other labs may come and go meanwhile
    lab_id = up.stdout.split()[1]
    created = {n for n in list_lab_namespaces() if n.split("-")[2] == lab_id}
    try:
        assert len(created) == 3  # two hosts and the switch
        status = json.loads(pps("lab", "status", "--json").stdout)
        target = next(r for r in status if r["netns"].endswith(f"{lab_id}-target"))
        assert "198.18.0.2" in target["addresses"]
        listening = subprocess.run(
            ["ip", "netns", "exec", target["netns"], "ss", "-tlnH"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert ":1337" in listening and ":3306" in listening
    finally:
        down = pps("lab", "down", lab_id)
    assert down.returncode == 0, down.stderr
    assert not created & set(list_lab_namespaces())


def test_down_of_an_unknown_lab_is_a_usage_error():
    result = pps("lab", "down", "nosuchlab")
    assert result.returncode == 2
    assert "nosuchlab" in result.stderr
    assert "Traceback" not in result.stderr
