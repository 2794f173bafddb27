"""Alembic's environment for the store: runs on the connection ppsguard hands it
(`config.attributes["connection"]`), with batch mode so SQLite can alter tables. No logging set-up,
no URL of its own."""

from __future__ import annotations

from alembic import context

from ppsguard.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
