"""Initial store schema: hosts, runs (with the full document), findings, doors.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "hosts",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("machine_id", sa.String(64), nullable=False),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("netns", sa.String(255), nullable=False, server_default=""),
        sa.Column("first_seen", sa.DateTime(), nullable=False),
        sa.Column("last_seen", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("machine_id", "hostname", "netns", name="uq_hosts_identity"),
    )
    op.create_table(
        "runs",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("host_id", _ID, sa.ForeignKey("hosts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("observed_at", sa.DateTime(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("registry", sa.Text(), nullable=True),
        sa.Column("registry_hash", sa.String(64), nullable=True),
        sa.Column("findings", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("open_doors", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("by_severity", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("document", sa.Text(), nullable=False),
    )
    op.create_index("ix_runs_host_observed", "runs", ["host_id", "observed_at"])
    op.create_table(
        "findings",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("run_id", _ID, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("protocol", sa.String(8), nullable=True),
        sa.Column("port", sa.Integer(), nullable=True),
        sa.Column("address", sa.String(64), nullable=True),
        sa.Column("process", sa.Text(), nullable=True),
    )
    op.create_index("ix_findings_run", "findings", ["run_id"])
    op.create_table(
        "doors",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("run_id", _ID, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("protocol", sa.String(8), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("service", sa.Text(), nullable=True),
        sa.Column("version", sa.Text(), nullable=True),
        sa.Column("process", sa.Text(), nullable=True),
        sa.Column("status", sa.String(24), nullable=True),
    )
    op.create_index("ix_doors_run", "doors", ["run_id"])


def downgrade() -> None:
    for table in ("doors", "findings", "runs", "hosts"):
        op.drop_table(table)
