"""`pps serve` as any client may reach it: hostile paths get a 404, never a 500 and a
traceback in the desk's log (the desk is a real process on loopback; its store holds a real
audit of this machine, recorded by `pps audit --store`)."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from serve_helpers import Desk

pytestmark = pytest.mark.lab

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed-building.yaml"
HUGE = "9" * 30  # past SQLite's INTEGER (2**63 - 1): it raised OverflowError in the query


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as refused:
        return int(refused.code)


def test_ids_past_the_store_integer_are_not_found(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'store.db'}"
    subprocess.run(
        [sys.executable, "-m", "ppsguard", "audit", str(SEED), "--store", store],
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    with Desk(store) as desk:
        assert status(f"{desk.url}/host/1") == 200
        for path in (
            f"/host/{HUGE}",
            f"/host/{HUGE}/building.json",
            f"/host/{HUGE}/door/tcp/22",
            f"/reports/{HUGE}.html",
            "/host/1/door/tcp/99999999999999999999",
        ):
            assert status(desk.url + path) == 404, path
    assert "Traceback" not in desk.stderr, desk.stderr[-2000:]
