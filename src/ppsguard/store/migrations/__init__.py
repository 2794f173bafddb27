"""Alembic migrations of the store's schema (env.py and versions/), shipped in the package."""
