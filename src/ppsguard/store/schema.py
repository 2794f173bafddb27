"""The store's tables at the newest schema revision (SQLAlchemy Core; Alembic migrates to it).

    hosts    one row per (machine_id, hostname, netns)
    runs     one row per recorded run: kind, times, version, registry hash, counts, the document
    findings one row per finding of an audit run, `key` = the finding's stable id
    doors    one row per open door of a run (audit doors, listening sockets, open scanned ports)

Times are stored as naive UTC. Tables only: no queries here, no connection.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

HEAD = "0002"
metadata = MetaData()
IdType = BigInteger().with_variant(Integer(), "sqlite")  # SQLite rowid aliases need INTEGER

hosts = Table(
    "hosts",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column("machine_id", String(64), nullable=False),
    Column("hostname", String(255), nullable=False),
    Column("netns", String(255), nullable=False, server_default=""),
    Column("first_seen", DateTime(), nullable=False),
    Column("last_seen", DateTime(), nullable=False),
    UniqueConstraint("machine_id", "hostname", "netns", name="uq_hosts_identity"),
)

runs = Table(
    "runs",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column("host_id", IdType, ForeignKey("hosts.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("observed_at", DateTime(), nullable=False),
    Column("recorded_at", DateTime(), nullable=False),
    Column("version", String(64), nullable=False),
    Column("registry", Text(), nullable=True),
    Column("registry_hash", String(64), nullable=True),
    Column("findings", Integer(), nullable=False, server_default="0"),
    Column("open_doors", Integer(), nullable=False, server_default="0"),
    Column("by_severity", Text(), nullable=False, server_default="{}"),
    Column("document", Text(), nullable=False),
    Column("digest", String(64), nullable=True),  # revision 0002
    Index("ix_runs_host_observed", "host_id", "observed_at"),
    Index("ix_runs_host_kind_observed", "host_id", "kind", "observed_at"),  # revision 0002
    Index("uq_runs_host_digest", "host_id", "digest", unique=True),  # revision 0002
)

findings = Table(
    "findings",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column("run_id", IdType, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("key", String(64), nullable=False),
    Column("type", String(64), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("title", Text(), nullable=False),
    Column("protocol", String(8), nullable=True),
    Column("port", Integer(), nullable=True),
    Column("address", String(64), nullable=True),
    Column("process", Text(), nullable=True),
    Index("ix_findings_run", "run_id"),
)

doors = Table(
    "doors",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column("run_id", IdType, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("address", String(64), nullable=False),
    Column("protocol", String(8), nullable=False),
    Column("port", Integer(), nullable=False),
    Column("state", String(24), nullable=False),
    Column("service", Text(), nullable=True),
    Column("version", Text(), nullable=True),
    Column("process", Text(), nullable=True),
    Column("status", String(24), nullable=True),
    Index("ix_doors_run", "run_id"),
)
