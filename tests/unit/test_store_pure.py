"""The store's pure parts: the `--store` argv rewrite, URL resolution, document kinds, diff
classification, history intervals and durations."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ppsguard.cli.storeopt import expand_store_flag
from ppsguard.errors import InputError, UsageError
from ppsguard.store import documents
from ppsguard.store.diff import compare
from ppsguard.store.documents import PortView, Snapshot
from ppsguard.store.history import duration_text, parse_duration, track
from ppsguard.store.urls import default_url, resolve_url


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["audit", "--store"], ["audit", "--store", "default"]),
        (["audit", "--store", "--json"], ["audit", "--store", "default", "--json"]),
        (["audit", "--store", "reg.yaml"], ["audit", "--store", "default", "reg.yaml"]),
        (["audit", "--store", "x.db", "reg.yaml"], ["audit", "--store", "x.db", "reg.yaml"]),
        (["scan", "--store", "postgresql://h/db"], ["scan", "--store", "postgresql://h/db"]),
        (["scan", "--store=y.sqlite"], ["scan", "--store=y.sqlite"]),
    ],
)
def test_bare_store_flag_means_the_default_store(args: list[str], expected: list[str]) -> None:
    assert expand_store_flag(args) == expected


def test_store_urls(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PPSGUARD_STORE", raising=False)
    assert resolve_url(None) is None
    monkeypatch.setenv("PPSGUARD_STORE", "postgresql://u@db/pps")
    assert resolve_url(None) == "postgresql+psycopg://u@db/pps"
    assert resolve_url("default") == default_url()
    assert resolve_url(str(tmp_path / "a.db")) == f"sqlite:///{tmp_path / 'a.db'}"
    with pytest.raises(UsageError, match="unsupported store URL"):
        resolve_url("mysql://u@db/pps")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    expected = "/var/lib/ppsguard/ppsguard.db" if __import__("os").geteuid() == 0 else str(tmp_path)
    assert expected in default_url()


def test_document_kinds() -> None:
    assert documents.kind_of({"findings": [], "doors": []}) == "audit"
    assert documents.kind_of({"hosts": [], "stats": {}}) == "scan"
    assert documents.kind_of([{"local_port": 22}]) == "sockets"
    assert documents.kind_of({"schema": "ppsguard.audit", "version": 1}) == "audit"
    with pytest.raises(InputError, match=r"f\.json: not a document"):
        documents.kind_of({"something": "else"}, "f.json")


def test_diff_classifies_each_change() -> None:
    a = Snapshot(
        {
            ("h", "tcp", 22): PortView("open", "ssh", "OpenSSH 9.2"),
            ("h", "tcp", 80): PortView("open", "http"),
            ("h", "tcp", 81): PortView("open", "http"),
            ("h", "tcp", 25): PortView("closed"),
            ("h", "tcp", 443): PortView("open", "https"),
        },
        {"f1": {"key": "f1"}, "f2": {"key": "f2"}},
    )
    b = Snapshot(
        {
            ("h", "tcp", 22): PortView("open", "ssh", "OpenSSH 9.6"),
            ("h", "tcp", 80): PortView("open", "http"),
            ("h", "tcp", 81): PortView("open", "echo"),
            ("h", "tcp", 25): PortView("filtered"),
            ("h", "tcp", 8080): PortView("open", "http-alt"),
        },
        {"f2": {"key": "f2"}, "f3": {"key": "f3"}},
    )
    diff = compare(a, b)
    assert [(c.port, c.change) for c in diff.ports] == [
        (22, "version"),
        (25, "state"),
        (81, "service"),
        (443, "closed"),
        (8080, "opened"),
    ]
    assert [f["key"] for f in diff.new_findings] == ["f3"]
    assert [f["key"] for f in diff.fixed_findings] == ["f1"]
    assert not diff.same and compare(a, a).same


def test_history_intervals() -> None:
    t = [dt.datetime(2026, 1, 1, h) for h in range(5)]
    runs = list(enumerate(t))
    present = {0: {"x": {}}, 1: {"x": {}, "y": {}}, 3: {"x": {}}, 4: {"y": {}}}
    tracks = {tr.key: tr for tr in track(runs, present)}
    x, y = tracks["x"], tracks["y"]
    assert [(i.opened, i.closed, i.since_first) for i in x.intervals] == [
        (t[0], t[2], True),
        (t[3], t[4], False),
    ]
    assert [(i.opened, i.closed) for i in y.intervals] == [(t[1], t[2]), (t[4], None)]
    assert y.is_open and not x.is_open


def test_durations() -> None:
    assert parse_duration("90d") == dt.timedelta(days=90)
    assert parse_duration("2w") == dt.timedelta(weeks=2)
    assert parse_duration("90") is None and parse_duration("d") is None
    assert [duration_text(s) for s in (5, 125, 3 * 3600 + 300, 2 * 86400 + 4 * 3600)] == [
        "5s",
        "2m05s",
        "3h05m",
        "2d04h",
    ]


def test_missing_postgresql_skips_or_fails_when_required(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from ppsguard.testing import postgres

    monkeypatch.setattr(postgres, "PG_ROOT", tmp_path)  # no server installed there
    monkeypatch.delenv("PPSGUARD_REQUIRE_LAB", raising=False)
    with pytest.raises(pytest.skip.Exception, match="PostgreSQL server not installed"):
        postgres.require_postgres()
    monkeypatch.setenv("PPSGUARD_REQUIRE_LAB", "1")
    with pytest.raises(pytest.fail.Exception, match="PPSGUARD_REQUIRE_LAB=1 but PostgreSQL"):
        postgres.require_postgres()


def test_a_command_that_asks_no_store_does_not_import_it() -> None:
    """`--store` absent and PPSGUARD_STORE unset: no store, and SQLAlchemy stays unimported."""
    import os
    import subprocess
    import sys

    from ppsguard.cli import storeopt
    from ppsguard.store.urls import STORE_ENV

    assert storeopt.STORE_ENV == STORE_ENV
    env = {k: v for k, v in os.environ.items() if k != STORE_ENV}
    code = (
        "import sys; from ppsguard.cli.storeopt import store_url; "
        "print(store_url(None), 'sqlalchemy' in sys.modules, 'ppsguard.store' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.stdout.split() == ["None", "False", "False"], done.stderr
    env[STORE_ENV] = "/tmp/x.db"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.stdout.split()[0] == "sqlite:////tmp/x.db", done.stderr
