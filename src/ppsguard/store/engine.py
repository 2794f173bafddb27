"""Opening a store: the SQLAlchemy engine, the schema brought to the newest revision, and every
database failure turned into one RuntimeFailure line (exit 3).

SQLite: WAL journal, foreign keys on, a 60 s busy timeout, and BEGIN IMMEDIATE for writes (a
writer takes the write lock at its first statement, so concurrent writers queue instead of
failing). PostgreSQL: psycopg 3. Migrations run under a lock (a file lock for SQLite, an advisory
lock for PostgreSQL) so twenty hosts starting at once migrate once. Must not know documents.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from ppsguard.errors import PpsError, RuntimeFailure
from ppsguard.store.schema import HEAD
from ppsguard.store.urls import display

MIGRATIONS = Path(__file__).parent / "migrations"
PG_LOCK_KEY = 0x70707367  # "ppsg": the advisory lock the migrations run under
T = TypeVar("T")


def failure(url: str, exc: BaseException) -> RuntimeFailure:
    """One line naming the store and what went wrong (no traceback, no password)."""
    detail = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    first = str(detail).strip().splitlines()[0] if str(detail).strip() else type(detail).__name__
    return RuntimeFailure(f"store {display(url)}: {first}")


def guarded(url: str, work: Callable[[], T]) -> T:
    """Run `work`, turning database and OS errors into a RuntimeFailure for `url`."""
    try:
        return work()
    except PpsError:
        raise
    except (SQLAlchemyError, OSError) as exc:
        raise failure(url, exc) from None


def _sqlite_path(engine: Engine) -> Path | None:
    database = engine.url.database
    return None if not database or database == ":memory:" else Path(database)


def _sqlite_events(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi: Any, _record: Any) -> None:
        dbapi.isolation_level = None  # we issue BEGIN ourselves (below)
        cursor = dbapi.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        read = conn.get_execution_options().get("ppsguard_read", False)
        conn.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 60})
        path = _sqlite_path(engine)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        _sqlite_events(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 10})


def current_revision(conn: Connection) -> str | None:
    try:
        with conn.begin_nested() if conn.in_transaction() else contextlib.nullcontext():
            row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
    except SQLAlchemyError:
        return None
    return None if row is None else str(row[0])


@contextlib.contextmanager
def _migration_lock(engine: Engine, conn: Connection) -> Iterator[None]:
    if engine.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": PG_LOCK_KEY})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": PG_LOCK_KEY})
            conn.commit()
        return
    path = _sqlite_path(engine)
    if path is None:
        yield
        return
    with Path(f"{path}.migrate-lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def alembic_config(conn: Connection) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` (under the migration lock); rows are kept."""
    from alembic import command

    with engine.connect() as conn, _migration_lock(engine, conn):
        current = current_revision(conn)
        if conn.in_transaction():
            conn.commit()
        if current == revision or (revision == "head" and current == HEAD):
            return
        known = {f"{n:04d}" for n in range(1, int(HEAD) + 1)}
        if current is not None and current not in known:
            raise RuntimeFailure(
                f"store schema revision {current} is newer than this ppsguard knows ({HEAD}); "
                "upgrade ppsguard"
            )
        command.upgrade(alembic_config(conn), revision)
        conn.commit()


_ENGINES: dict[str, Engine] = {}


def _opened(url: str) -> Engine:
    engine = _ENGINES.get(url)
    if engine is not None:
        return engine
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            current = current_revision(conn)
        if current != HEAD:
            upgrade(engine)
    except BaseException:
        engine.dispose()
        raise
    if not _ENGINES:
        atexit.register(close_all)
    _ENGINES[url] = engine
    return engine


def close_all() -> None:
    """Close every pooled connection (at exit, and between tests)."""
    while _ENGINES:
        _ENGINES.popitem()[1].dispose()


def open_store(url: str) -> Engine:
    """The engine for `url` with the schema at the newest revision, or RuntimeFailure."""
    return guarded(url, lambda: _opened(url))


def read_options() -> dict[str, Any]:
    """Execution options for a read-only transaction (plain BEGIN on SQLite)."""
    return {"ppsguard_read": True}
