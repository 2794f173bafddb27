"""Store fixtures: every store test runs against SQLite and a real PostgreSQL that this session
starts itself (Debian's postgresql package; initdb in a temporary folder, 127.0.0.1, a free port,
a private socket folder; stopped and removed at the end). A missing PostgreSQL skips those
tests, and fails them when PPSGUARD_REQUIRE_LAB=1."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ppsguard.store.engine import close_all
from ppsguard.testing.postgres import PostgresCluster, require_postgres


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    require_postgres()
    cluster = PostgresCluster().start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty store of each kind (a new SQLite file; a new PostgreSQL database)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store' / 'ppsguard.db'}"
    else:
        cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
        yield cluster.create_database()
    close_all()


def audit_doc(
    when: str,
    findings: list[tuple[str, str, int]] = (),  # type: ignore[assignment]
    doors: list[int] = (),  # type: ignore[assignment]
    host: str = "target",
) -> dict[str, Any]:
    """An audit document as `pps audit --json` prints it: findings (id, severity, port), doors."""
    return {
        "host": host,
        "observed_at": when,
        "registry": None,
        "findings": [
            {
                "id": fid,
                "type": "unregistered-listener",
                "severity": severity,
                "title": f"Undocumented listener on {port}/tcp",
                "protocol": "tcp",
                "port": port,
                "address": "0.0.0.0",
                "family": "ipv4",
                "process": "listener",
                "pids": [1],
                "entry": None,
                "entry_location": None,
                "evidence": [],
                "remedy": {"summary": "", "commands": [], "registry_yaml": None},
            }
            for fid, severity, port in findings
        ],
        "doors": [
            {
                "protocol": "tcp",
                "port": port,
                "status": "undocumented",
                "service": None,
                "process": "listener",
                "addresses": ["0.0.0.0"],
                "reachable": None,
                "findings": [],
                "banner": None,
                "entry": None,
            }
            for port in doors
        ],
        "summary": {},
    }


@pytest.fixture
def make_audit() -> Callable[..., dict[str, Any]]:
    return audit_doc


def pps(
    *args: str, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run the real `pps` in a fresh interpreter."""
    full = {k: v for k, v in os.environ.items() if k != "PPSGUARD_STORE"}
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "ppsguard", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full,
        check=False,
    )


@pytest.fixture
def run_pps() -> Callable[..., subprocess.CompletedProcess[str]]:
    return pps
