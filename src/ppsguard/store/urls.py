"""Which database a `--store` means: an explicit URL, PPSGUARD_STORE, or the default SQLite file.

Default (``--store`` with no URL): /var/lib/ppsguard/ppsguard.db as root, else
$XDG_DATA_HOME/ppsguard/ppsguard.db (~/.local/share when unset). Accepted URLs: sqlite:///PATH,
a plain file path, postgresql://... (driven by psycopg 3). Must not open the database.
"""

from __future__ import annotations

import os
from pathlib import Path

from ppsguard.errors import UsageError

STORE_ENV = "PPSGUARD_STORE"
DEFAULT_MARK = "default"  # what `--store` alone stands for on the command line
ROOT_DB = Path("/var/lib/ppsguard/ppsguard.db")


def default_path() -> Path:
    if os.geteuid() == 0:
        return ROOT_DB
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "ppsguard" / "ppsguard.db"


def default_url() -> str:
    return f"sqlite:///{default_path()}"


def resolve_url(given: str | None) -> str | None:
    """The SQLAlchemy URL for a `--store` value (None: not asked, unless PPSGUARD_STORE is set)."""
    if given is None:
        given = os.environ.get(STORE_ENV) or None
        if given is None:
            return None
    given = given.strip()
    if given in ("", DEFAULT_MARK):
        return default_url()
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg://"):
        if given.startswith(prefix):
            return "postgresql+psycopg://" + given[len(prefix) :]
    if given.startswith("sqlite://"):
        return given
    if "://" in given:
        raise UsageError(
            "unsupported store URL",
            token=given.split("://")[0] + "://",
            hint="sqlite or postgresql",
        )
    return f"sqlite:///{Path(given).expanduser().absolute()}"


def display(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
