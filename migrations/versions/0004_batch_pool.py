"""The durable batch pool: ``lore_batch_items``, ``lore_batch_batches``, ``lore_batch_processes`` and
``lore_batch_leases`` (BATCH.md 6.1).

Credentials are never stored: items and batches carry the credential's 16-hex fingerprint only.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from lore_core.store.types import JSON_TYPE, UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ITEM_STATES = "'queued', 'submitting', 'in_batch', 'rescued', 'done', 'failed', 'delivered', 'handler_failed'"
BATCH_STATUSES = "'creating', 'in_progress', 'canceling', 'ended', 'lost', 'failed'"


def upgrade() -> None:
    op.create_table(
        "lore_batch_items",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("custom_id", sa.String(), nullable=True),
        sa.Column("submission_id", sa.String(), nullable=True),
        sa.Column("credential_fp", sa.String(16), nullable=False),
        sa.Column("provider", sa.String(), nullable=False),
        sa.Column("workspace", sa.String(), nullable=True),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("facade", sa.String(16), nullable=False),
        sa.Column("worker", sa.String(), nullable=True),
        sa.Column("tag", sa.String(), nullable=True),
        sa.Column("session_id", sa.String(), nullable=True),
        sa.Column("params", JSON_TYPE, nullable=False),
        sa.Column("call", JSON_TYPE, nullable=False),
        sa.Column("params_bytes", sa.Integer(), nullable=False),
        sa.Column("deadline", UTCDateTime(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("batch_id", sa.String(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("owner_id", sa.String(), nullable=False),
        sa.Column("result", JSON_TYPE, nullable=True),
        sa.Column("usage", JSON_TYPE, nullable=True),
        sa.Column("error", JSON_TYPE, nullable=True),
        sa.Column("route", sa.String(16), nullable=True),
        sa.Column("rescued_by", sa.String(), nullable=True),
        sa.Column("handler_attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("enqueued_at", UTCDateTime(), nullable=False),
        sa.Column("submitted_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lore_batch_items")),
        sa.UniqueConstraint("custom_id", name=op.f("uq_lore_batch_items_custom_id")),
        sa.CheckConstraint(f"state IN ({ITEM_STATES})", name=op.f("ck_lore_batch_items_state")),
    )
    op.create_index(
        op.f("ix_lore_batch_items_state_credential_fp_enqueued_at"),
        "lore_batch_items",
        ["state", "credential_fp", "enqueued_at"],
    )
    op.create_index(
        op.f("ix_lore_batch_items_credential_fp_state_deadline"),
        "lore_batch_items",
        ["credential_fp", "state", "deadline"],
    )
    op.create_index(op.f("ix_lore_batch_items_batch_id"), "lore_batch_items", ["batch_id"])
    op.create_index(op.f("ix_lore_batch_items_owner_id_state"), "lore_batch_items", ["owner_id", "state"])
    op.create_index(op.f("ix_lore_batch_items_submission_id"), "lore_batch_items", ["submission_id"])

    op.create_table(
        "lore_batch_batches",
        sa.Column("submission_id", sa.String(), nullable=False),
        sa.Column("id", sa.String(), nullable=True),
        sa.Column("provider", sa.String(), nullable=False),
        sa.Column("credential_fp", sa.String(16), nullable=False),
        sa.Column("workspace", sa.String(), nullable=True),
        sa.Column("process_id", sa.String(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("request_count", sa.Integer(), nullable=False),
        sa.Column("counts", JSON_TYPE, nullable=True),
        sa.Column("polls", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("poll_failures", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("last_polled_at", UTCDateTime(), nullable=True),
        sa.Column("next_poll_at", UTCDateTime(), nullable=True),
        sa.Column("cancel_requested_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("submission_id", name=op.f("pk_lore_batch_batches")),
        sa.UniqueConstraint("id", name=op.f("uq_lore_batch_batches_id")),
        sa.CheckConstraint(f"status IN ({BATCH_STATUSES})", name=op.f("ck_lore_batch_batches_status")),
    )
    op.create_index(
        op.f("ix_lore_batch_batches_credential_fp_status"), "lore_batch_batches", ["credential_fp", "status"]
    )

    op.create_table(
        "lore_batch_processes",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("host", sa.String(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("credential_fps", JSON_TYPE, nullable=False, server_default=sa.text("'[]'")),
        sa.Column("workers", JSON_TYPE, nullable=False, server_default=sa.text("'[]'")),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("heartbeat_at", UTCDateTime(), nullable=False),
        sa.Column("stopped_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lore_batch_processes")),
    )
    op.create_table(
        "lore_batch_leases",
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("holder", sa.String(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_lore_batch_leases")),
    )


def downgrade() -> None:
    op.drop_table("lore_batch_leases")
    op.drop_table("lore_batch_processes")
    op.drop_index(op.f("ix_lore_batch_batches_credential_fp_status"), table_name="lore_batch_batches")
    op.drop_table("lore_batch_batches")
    op.drop_index(op.f("ix_lore_batch_items_submission_id"), table_name="lore_batch_items")
    op.drop_index(op.f("ix_lore_batch_items_owner_id_state"), table_name="lore_batch_items")
    op.drop_index(op.f("ix_lore_batch_items_batch_id"), table_name="lore_batch_items")
    op.drop_index(op.f("ix_lore_batch_items_credential_fp_state_deadline"), table_name="lore_batch_items")
    op.drop_index(op.f("ix_lore_batch_items_state_credential_fp_enqueued_at"), table_name="lore_batch_items")
    op.drop_table("lore_batch_items")
