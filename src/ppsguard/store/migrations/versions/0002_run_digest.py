"""Run digests (a document recorded or imported twice is one run) and a per-kind time index.

Existing runs get their digest computed from the stored document; two identical old runs of one
host keep both rows (the later one's digest also covers its id).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ppsguard.store.digest import run_digest

revision = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("digest", sa.String(64), nullable=True))
    conn = op.get_bind()
    runs = sa.table(
        "runs",
        sa.column("id", sa.Integer()),
        sa.column("host_id", sa.Integer()),
        sa.column("kind", sa.String()),
        sa.column("observed_at", sa.DateTime()),
        sa.column("document", sa.Text()),
        sa.column("digest", sa.String()),
    )
    seen: set[tuple[int, str]] = set()
    rows = conn.execute(
        sa.select(
            runs.c.id, runs.c.host_id, runs.c.kind, runs.c.observed_at, runs.c.document
        ).order_by(runs.c.id)
    ).all()
    for run_id, host_id, kind, observed, document in rows:
        digest = run_digest(kind, observed, document)
        if (host_id, digest) in seen:
            digest = run_digest(kind, observed, f"{document}\x1f{run_id}")
        seen.add((host_id, digest))
        conn.execute(runs.update().where(runs.c.id == run_id).values(digest=digest))
    op.create_index("uq_runs_host_digest", "runs", ["host_id", "digest"], unique=True)
    op.create_index("ix_runs_host_kind_observed", "runs", ["host_id", "kind", "observed_at"])


def downgrade() -> None:
    op.drop_index("ix_runs_host_kind_observed", "runs")
    op.drop_index("uq_runs_host_digest", "runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("digest")
