"""The batching request log, ``lore_batch_request_log`` (BATCH.md section 8).

One row per call that reaches a provider. ``session_id`` carries no foreign key: batch traffic may come from
callers without engine sessions. Costs are ``Numeric(18, 9)`` USD (exact on PostgreSQL; SQLite keeps them as
REAL, exact to 15 significant digits).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from lore_core.store.types import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TABLE = "lore_batch_request_log"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("ts", UTCDateTime(), nullable=False),
        sa.Column("provider", sa.String(), nullable=False),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("tag", sa.String(), nullable=True),
        sa.Column("worker", sa.String(), nullable=True),
        sa.Column("session_id", sa.String(), nullable=True),
        sa.Column("credential_fp", sa.String(16), nullable=True),
        sa.Column("route", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("output_tokens", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("cache_read_tokens", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("cache_write_5m_tokens", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("cache_write_1h_tokens", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("cost_usd", sa.Numeric(18, 9), nullable=True),
        sa.Column("sync_cost_usd", sa.Numeric(18, 9), nullable=True),
        sa.Column("price_effective_at", UTCDateTime(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=True),
        sa.Column("batch_id", sa.String(), nullable=True),
        sa.Column("custom_id", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lore_batch_request_log")),
        sa.CheckConstraint(
            "route IN ('sync', 'batch', 'fallback', 'batch_superseded')",
            name=op.f("ck_lore_batch_request_log_route"),
        ),
        sa.CheckConstraint(
            "status IN ('ok', 'errored', 'expired', 'canceled', 'error')",
            name=op.f("ck_lore_batch_request_log_status"),
        ),
    )
    op.create_index(op.f("ix_lore_batch_request_log_ts"), TABLE, ["ts"])
    op.create_index(op.f("ix_lore_batch_request_log_tag_ts"), TABLE, ["tag", "ts"])
    op.create_index(op.f("ix_lore_batch_request_log_route_ts"), TABLE, ["route", "ts"])


def downgrade() -> None:
    op.drop_index(op.f("ix_lore_batch_request_log_route_ts"), table_name=TABLE)
    op.drop_index(op.f("ix_lore_batch_request_log_tag_ts"), table_name=TABLE)
    op.drop_index(op.f("ix_lore_batch_request_log_ts"), table_name=TABLE)
    op.drop_table(TABLE)
