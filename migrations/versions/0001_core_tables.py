"""Engine tables: sessions, session_state, messages, distillations, knowledge, kv (ENGINE.md section 2).

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from lore_core.store.types import JSON_TYPE, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _session_id(table: str) -> sa.Column[str]:
    """The ``session_id`` of a session's child table: deleting the session deletes the child rows."""
    return sa.Column(
        "session_id",
        sa.String(),
        sa.ForeignKey(
            "sessions.session_id", ondelete="CASCADE", name=op.f(f"fk_{table}_session_id_sessions")
        ),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("session_id", sa.String(), nullable=False),
        sa.Column("project", sa.String(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_model", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_sessions")),
    )

    op.create_table(
        "session_state",
        _session_id("session_state"),
        sa.Column("force_min_layer", sa.Integer(), nullable=False),
        sa.Column("last_layer", sa.Integer(), nullable=False),
        sa.Column("last_known_input", sa.Integer(), nullable=False),
        sa.Column("last_usage_model", sa.String(), nullable=True),
        sa.Column("last_input_count", sa.Integer(), nullable=False),
        sa.Column("last_window_start", sa.Integer(), nullable=False),
        sa.Column("last_turn_at", UTCDateTime(), nullable=True),
        sa.Column("last_stop_reason", sa.String(), nullable=True),
        sa.Column("calibration", JSON_TYPE, nullable=False),
        sa.Column("raw_pin", JSON_TYPE, nullable=True),
        sa.Column("knowledge_pin_text", sa.Text(), nullable=True),
        sa.Column("knowledge_pin_tokens", sa.Integer(), nullable=True),
        sa.Column("turns_since_curation", sa.Integer(), nullable=False),
        sa.Column("last_curated_at", UTCDateTime(), nullable=True),
        sa.Column("idle_done_at", UTCDateTime(), nullable=True),
        sa.Column("lease_owner", sa.String(), nullable=True),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_session_state")),
    )

    op.create_table(
        "messages",
        _session_id("messages"),
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("unit_id", sa.String(32), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("distilled", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("meta", JSON_TYPE, nullable=False),
        # Message ids are content-derived, not session-derived: the key is (session_id, id).
        sa.PrimaryKeyConstraint("session_id", "id", name=op.f("pk_messages")),
        sa.CheckConstraint("role IN ('user', 'assistant')", name=op.f("ck_messages_role")),
        sa.CheckConstraint("kind IN ('human', 'assistant', 'tool_results')", name=op.f("ck_messages_kind")),
    )
    op.create_index(
        op.f("ix_messages_session_id_distilled_position"), "messages", ["session_id", "distilled", "position"]
    )
    op.create_index(op.f("ix_messages_session_id_content_hash"), "messages", ["session_id", "content_hash"])

    op.create_table(
        "distillations",
        sa.Column("id", sa.Uuid(as_uuid=False), nullable=False),
        _session_id("distillations"),
        sa.Column("project", sa.String(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("observations", sa.Text(), nullable=False),
        sa.Column("source_ids", JSON_TYPE, nullable=False),
        sa.Column("source_tokens", sa.Integer(), nullable=False),
        sa.Column("token_count", sa.Integer(), nullable=False),
        sa.Column("r_compression", sa.Float(), nullable=False),
        sa.Column("retention_score", sa.Float(), nullable=True),
        sa.Column("retention_initial", sa.Float(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column("supersedes", sa.Uuid(as_uuid=False), nullable=True),
        sa.Column("route", sa.String(16), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_distillations")),
        sa.UniqueConstraint("session_id", "seq", name=op.f("uq_distillations_session_id_seq")),
        sa.CheckConstraint("kind IN ('observer', 'reflector', 'digest')", name=op.f("ck_distillations_kind")),
    )
    op.create_index(
        op.f("ix_distillations_session_id_archived_generation_seq"),
        "distillations",
        ["session_id", "archived", "generation", "seq"],
    )

    op.create_table(
        "knowledge",
        sa.Column("id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("project", sa.String(), nullable=True),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("source_session", sa.String(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge")),
        sa.CheckConstraint("confidence >= 0 AND confidence <= 1", name=op.f("ck_knowledge_confidence")),
        sa.CheckConstraint("length(content) <= 1200", name=op.f("ck_knowledge_content_length")),
    )
    op.create_index(op.f("ix_knowledge_project"), "knowledge", ["project"])

    op.create_table(
        "kv",
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("value", JSON_TYPE, nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_kv")),
    )


def downgrade() -> None:
    op.drop_table("kv")
    op.drop_index(op.f("ix_knowledge_project"), table_name="knowledge")
    op.drop_table("knowledge")
    op.drop_index(op.f("ix_distillations_session_id_archived_generation_seq"), table_name="distillations")
    op.drop_table("distillations")
    op.drop_index(op.f("ix_messages_session_id_content_hash"), table_name="messages")
    op.drop_index(op.f("ix_messages_session_id_distilled_position"), table_name="messages")
    op.drop_table("messages")
    op.drop_table("session_state")
    op.drop_table("sessions")
