"""Message content blocks (``messages.blocks``) and the ``worker_runs`` table.

Rows stored before this revision get ``blocks = []``: their blocks were never kept.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from lore_core.store.types import JSON_TYPE, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("blocks", JSON_TYPE, nullable=False, server_default=sa.text("'[]'")))

    op.create_table(
        "worker_runs",
        sa.Column("id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column(
            "session_id",
            sa.String(),
            sa.ForeignKey(
                "sessions.session_id", ondelete="CASCADE", name=op.f("fk_worker_runs_session_id_sessions")
            ),
            nullable=True,
        ),
        sa.Column("project", sa.String(), nullable=True),
        sa.Column("worker", sa.String(), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("route", sa.String(16), nullable=True),
        sa.Column("error_type", sa.String(), nullable=True),
        sa.Column("error_detail", sa.Text(), nullable=True),
        sa.Column("input_tokens", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("output_tokens", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_worker_runs")),
        sa.CheckConstraint(
            "status IN ('ok', 'error', 'rejected', 'stale')", name=op.f("ck_worker_runs_status")
        ),
        sa.CheckConstraint("length(error_detail) <= 500", name=op.f("ck_worker_runs_error_detail_length")),
    )
    op.create_index(op.f("ix_worker_runs_session_id_started_at"), "worker_runs", ["session_id", "started_at"])
    op.create_index(op.f("ix_worker_runs_status_started_at"), "worker_runs", ["status", "started_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_worker_runs_status_started_at"), table_name="worker_runs")
    op.drop_index(op.f("ix_worker_runs_session_id_started_at"), table_name="worker_runs")
    op.drop_table("worker_runs")
    # Batch mode: PostgreSQL drops the column in place; SQLite (whose DROP COLUMN needs 3.35+) copies the
    # table without it, keeping its key, checks, foreign key and indexes.
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("blocks")
