"""A throwaway PostgreSQL cluster for tests and benchmarks, from Debian's postgresql package.

`PostgresCluster().start()` runs initdb in a temporary folder (as the `postgres` user when we
are root, since the server refuses to run as root), listens on 127.0.0.1 on a free port with a
private socket folder, and `pg_ctl -w start`s it (~1 s); `stop()` stops it and removes the folder.
Never touches any other cluster. `unavailable_reason()` says why it cannot run here, if so.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from ppsguard.errors import RuntimeFailure

PG_ROOT = Path("/usr/lib/postgresql")


def bin_dir() -> Path | None:
    """The newest installed server's bin folder (initdb, pg_ctl), or None."""
    versions = sorted(
        (p for p in PG_ROOT.glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    return versions[-1] if versions else None


def unavailable_reason() -> str | None:
    if bin_dir() is None:
        return "PostgreSQL server not installed (Debian package postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "no postgres user to run the server as"
    return None


def require_postgres() -> None:
    """Skip the calling test when no PostgreSQL server can run here — or fail it when
    PPSGUARD_REQUIRE_LAB=1, so CI never passes by skipping the PostgreSQL half of the suite."""
    from ppsguard.testing.pytest_plugin import skip_unless_available

    skip_unless_available(unavailable_reason())


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class PostgresCluster:
    """One private cluster; `url` is a SQLAlchemy/psycopg URL to its `postgres` database."""

    def __init__(self, *, fsync: bool = False) -> None:
        self.fsync = fsync  # off for tests (speed); on for benchmarks (honest write costs)
        self.folder = Path(tempfile.mkdtemp(prefix="ppsguard-pg-"))
        self.data = self.folder / "data"
        self.sockets = self.folder / "sockets"
        self.port = 0
        self.user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        self.started = False

    def _run(self, argv: list[str], timeout: float = 60) -> None:
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeFailure(f"{Path(argv[-1]).name}: {(done.stderr or done.stdout)[-800:]}")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def start(self) -> PostgresCluster:
        tools = bin_dir()
        if tools is None:
            raise RuntimeFailure("PostgreSQL server not installed")
        self.sockets.mkdir()
        if os.geteuid() == 0:
            self.folder.chmod(0o755)
            info = pwd.getpwnam("postgres")
            for path in (self.folder, self.sockets):
                os.chown(path, info.pw_uid, info.pw_gid)
        initdb = [str(tools / "initdb"), "-A", "trust", "-U", self.user, "-E", "UTF8"]
        self._run([*initdb, "-D", str(self.data)])
        self.port = _free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.sockets} "
            f"-c fsync={'on' if self.fsync else 'off'} -c max_connections=200 "
            "-c shared_buffers=128MB"
        )
        self._run(
            [
                str(tools / "pg_ctl"),
                "-w",
                "-t",
                "60",
                "-D",
                str(self.data),
                "-l",
                str(self.folder / "log"),
                "-o",
                options,
                "start",
            ]
        )
        self.started = True
        return self

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; its URL."""
        import psycopg

        name = name or f"t_{secrets.token_hex(4)}"
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=self.user, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # our own generated name
        return self.url(name)

    def stop(self) -> None:
        tools = bin_dir()
        try:
            if self.started and tools is not None:
                self._run([str(tools / "pg_ctl"), "-w", "-D", str(self.data), "-m", "fast", "stop"])
        finally:
            self.started = False
            shutil.rmtree(self.folder, ignore_errors=True)
