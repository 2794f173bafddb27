"""`pps harden` end to end in a subprocess: the plan file's checks, the systemd check, confirm.

`pps harden apply` is run for real here only because this machine has no systemd: the test
asserts that first (and skips where systemd runs, so it never stops a real unit).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ppsguard.harden.managers import systemd_problem
from ppsguard.harden.plan import STOP, Change, FindingRef, Plan, UnitAction
from ppsguard.report.harden_document import plan_document

ROOT = Path(__file__).resolve().parents[2]


def pps(*args: str | Path, state: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    if state is not None:
        env["PPSGUARD_STATE_DIR"] = str(state)
    return subprocess.run(
        [sys.executable, "-m", "ppsguard", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
        check=False,
    )


def a_plan(
    units: tuple[str, ...] = ("redis-server.service",), protected: tuple[str, ...] = ()
) -> Plan:
    change = Change(
        protocol="tcp",
        address="0.0.0.0",
        port=6379,
        service="redis",
        findings=(FindingRef("0123456789abcdef", "unregistered-listener", "medium", "tcp/6379"),),
        action=STOP,
        why="undocumented",
        kind="service",
        process="redis-server",
        exe="/usr/bin/redis-server",
        pids=(812,),
        cgroup="/system.slice/redis-server.service",
        service_unit="redis-server.service",
    )
    return Plan(
        host="web1",
        created_at=dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC),
        registry="registry.yaml",
        netns=None,
        changes=(change,),
        units=tuple(UnitAction(u, ("tcp/0.0.0.0:6379",)) for u in units),
        protected=protected,
    )


def write(tmp_path: Path, plan: Plan) -> Path:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan_document(plan)))
    return path


def one_error_line(done: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    assert done.returncode == code, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pps: error: "), done.stderr
    assert "Traceback" not in done.stderr
    for needle in needles:
        assert needle in lines[0]


def test_apply_without_systemd_says_so_in_one_line(tmp_path: Path) -> None:
    problem = systemd_problem()
    if problem is None:
        pytest.skip("systemd runs here: this test would stop a real unit")
    done = pps(
        "harden", "apply", write(tmp_path, a_plan()), "--confirm-within", "30", state=tmp_path
    )
    one_error_line(done, 3, "needs systemd as the init system", problem, "nothing was changed")
    assert done.stdout == ""
    assert not (tmp_path / "harden").exists()  # no state was written either


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("{not json", "plan.json:1:2: not JSON"),
        ('{"schema": "ppsguard.audit", "version": 1}', "expected a ppsguard.harden-plan"),
        ("[]", "not a ppsguard document"),
    ],
)
def test_a_bad_plan_file_is_one_line_exit_2(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "plan.json"
    path.write_text(text)
    one_error_line(pps("harden", "apply", path), 2, needle)


def test_a_unit_name_that_is_not_one_is_refused(tmp_path: Path) -> None:
    document = plan_document(a_plan())
    document["units"][0]["name"] = "--root=/.service"
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(document))
    one_error_line(pps("harden", "apply", path), 2, "units/0/name")


def test_a_plan_that_stops_a_documented_unit_is_refused(tmp_path: Path) -> None:
    plan = a_plan(units=("ssh.service",), protected=("ssh.service", "ssh.socket"))
    one_error_line(pps("harden", "apply", write(tmp_path, plan)), 2, "ssh.service", "documents")


def test_window_out_of_range(tmp_path: Path) -> None:
    done = pps("harden", "apply", write(tmp_path, a_plan()), "--confirm-within", "5")
    one_error_line(done, 2, "--confirm-within")


def test_confirm_and_rollback_with_nothing_applied(tmp_path: Path) -> None:
    one_error_line(pps("harden", "confirm", state=tmp_path), 2, "nothing to confirm")
    one_error_line(pps("harden", "rollback", state=tmp_path), 3, "nothing to roll back")


def test_plan_needs_a_registry(tmp_path: Path) -> None:
    one_error_line(pps("harden", "plan", tmp_path / "missing.yaml"), 2, "missing.yaml")


@pytest.mark.parametrize("verb", ["plan", "apply", "confirm", "rollback"])
def test_help(verb: str) -> None:
    done = pps("harden", verb, "--help")
    assert done.returncode == 0 and "Usage" in done.stdout
