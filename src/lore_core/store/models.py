"""The engine's tables (ENGINE.md section 2) and ``lore_batch``'s (BATCH.md 6.1) as SQLAlchemy 2 typed
declarative models.

The schema itself lives in Alembic (``migrations/versions``); these models describe it for queries, and a test
checks that ``upgrade head`` on an empty database matches them exactly. Rows of these classes never leave the
store package: :mod:`lore_core.store.rows` turns them into records.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from lore_core.store.types import JSON_TYPE, JsonValue, UTCDateTime

__all__ = [
    "Base",
    "BatchItem",
    "BatchLease",
    "BatchProcess",
    "BatchRecord",
    "Distillation",
    "Knowledge",
    "Kv",
    "Message",
    "RequestLog",
    "Session",
    "SessionState",
    "WorkerRun",
    "metadata",
]

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)
"""The one MetaData of lore-memory; ``lore_batch`` tables join it through :class:`Base`."""


# Server defaults, built here because ``Message.text`` (a column) shadows ``text`` inside the class body.
_EMPTY_JSON_ARRAY = text("'[]'")
_ZERO = text("0")


def _session_fk() -> ForeignKey:
    """A child table's link to its session: deleting the session deletes its rows."""
    return ForeignKey("sessions.session_id", ondelete="CASCADE")


class Base(DeclarativeBase):
    """Declarative base bound to :data:`metadata`."""

    metadata = metadata


class Session(Base):
    """One conversation; its children go with it (``ON DELETE CASCADE``)."""

    __tablename__ = "sessions"

    session_id: Mapped[str] = mapped_column(String, primary_key=True)
    project: Mapped[str] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_model: Mapped[str] = mapped_column(String)


class SessionState(Base):
    """The persisted engine state of a session (ENGINE.md section 10); each writer owns its columns."""

    __tablename__ = "session_state"

    session_id: Mapped[str] = mapped_column(String, _session_fk(), primary_key=True)
    force_min_layer: Mapped[int] = mapped_column(Integer)
    last_layer: Mapped[int] = mapped_column(Integer)
    last_known_input: Mapped[int] = mapped_column(Integer)
    last_usage_model: Mapped[str | None] = mapped_column(String)
    last_input_count: Mapped[int] = mapped_column(Integer)
    last_window_start: Mapped[int] = mapped_column(Integer)
    last_turn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_stop_reason: Mapped[str | None] = mapped_column(String)
    calibration: Mapped[dict[str, JsonValue]] = mapped_column(JSON_TYPE)
    raw_pin: Mapped[dict[str, JsonValue] | None] = mapped_column(JSON_TYPE)
    knowledge_pin_text: Mapped[str | None] = mapped_column(Text)
    knowledge_pin_tokens: Mapped[int | None] = mapped_column(Integer)
    turns_since_curation: Mapped[int] = mapped_column(Integer)
    last_curated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    idle_done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Message(Base):
    """One stored message; ``distilled`` flips once a distillation covers it."""

    __tablename__ = "messages"
    __table_args__ = (
        # Message ids derive from role, position and content, not from the session: two sessions that open
        # with the same "hi" share an id, so the key is (session_id, id).
        PrimaryKeyConstraint("session_id", "id"),
        CheckConstraint("role IN ('user', 'assistant')", name="role"),
        CheckConstraint("kind IN ('human', 'assistant', 'tool_results')", name="kind"),
        Index(None, "session_id", "distilled", "position"),
        Index(None, "session_id", "content_hash"),
    )

    session_id: Mapped[str] = mapped_column(String, _session_fk())
    id: Mapped[str] = mapped_column(String(32))
    position: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    unit_id: Mapped[str | None] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    tokens: Mapped[int] = mapped_column(Integer)
    distilled: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    meta: Mapped[dict[str, JsonValue]] = mapped_column(JSON_TYPE)
    # The caller's content blocks, verbatim (revision 0002; rows stored before it read as []).
    blocks: Mapped[list[JsonValue]] = mapped_column(JSON_TYPE, server_default=_EMPTY_JSON_ARRAY)


class Distillation(Base):
    """An observer log, digest or reflector summary; ``seq`` is per session and monotonic."""

    __tablename__ = "distillations"
    __table_args__ = (
        UniqueConstraint("session_id", "seq"),
        CheckConstraint("kind IN ('observer', 'reflector', 'digest')", name="kind"),
        Index(None, "session_id", "archived", "generation", "seq"),
    )

    id: Mapped[str] = mapped_column(Uuid(as_uuid=False), primary_key=True)
    session_id: Mapped[str] = mapped_column(String, _session_fk())
    project: Mapped[str] = mapped_column(String)
    seq: Mapped[int] = mapped_column(Integer)
    generation: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    observations: Mapped[str] = mapped_column(Text)
    source_ids: Mapped[list[str]] = mapped_column(JSON_TYPE)
    source_tokens: Mapped[int] = mapped_column(Integer)
    token_count: Mapped[int] = mapped_column(Integer)
    r_compression: Mapped[float] = mapped_column(Float)
    retention_score: Mapped[float | None] = mapped_column(Float)
    retention_initial: Mapped[float | None] = mapped_column(Float)
    revision: Mapped[int] = mapped_column(Integer)
    archived: Mapped[bool] = mapped_column(Boolean)
    supersedes: Mapped[str | None] = mapped_column(Uuid(as_uuid=False))
    route: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Knowledge(Base):
    """A long-term knowledge entry; ``project`` NULL means global."""

    __tablename__ = "knowledge"
    __table_args__ = (
        CheckConstraint("confidence >= 0 AND confidence <= 1", name="confidence"),
        CheckConstraint("length(content) <= 1200", name="content_length"),
        Index(None, "project"),
    )

    id: Mapped[str] = mapped_column(Uuid(as_uuid=False), primary_key=True)
    project: Mapped[str | None] = mapped_column(String)
    category: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String)
    content: Mapped[str] = mapped_column(Text)
    confidence: Mapped[float] = mapped_column(Float)
    source_session: Mapped[str | None] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Kv(Base):
    """Engine metadata, such as per-project prune watermarks."""

    __tablename__ = "kv"

    key: Mapped[str] = mapped_column(String, primary_key=True)
    value: Mapped[JsonValue] = mapped_column(JSON_TYPE, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WorkerRun(Base):
    """One background worker run and how it ended; ``session_id`` NULL for project-level work."""

    __tablename__ = "worker_runs"
    __table_args__ = (
        CheckConstraint("status IN ('ok', 'error', 'rejected', 'stale')", name="status"),
        CheckConstraint("length(error_detail) <= 500", name="error_detail_length"),
        Index(None, "session_id", "started_at"),
        Index(None, "status", "started_at"),
    )

    id: Mapped[str] = mapped_column(Uuid(as_uuid=False), primary_key=True)
    session_id: Mapped[str | None] = mapped_column(String, _session_fk())
    project: Mapped[str | None] = mapped_column(String)
    worker: Mapped[str] = mapped_column(String)
    urgent: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(16))
    route: Mapped[str | None] = mapped_column(String(16))
    error_type: Mapped[str | None] = mapped_column(String)
    error_detail: Mapped[str | None] = mapped_column(Text)
    input_tokens: Mapped[int] = mapped_column(Integer, server_default=_ZERO)
    output_tokens: Mapped[int] = mapped_column(Integer, server_default=_ZERO)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RequestLog(Base):
    """``lore_batch_request_log`` (BATCH.md section 8): one row per call that reached a provider.

    ``session_id`` has no foreign key: batch traffic may come from callers without engine sessions. Costs are
    USD, ``NULL`` when the model is unpriced; rows carry ids, counts and prices, never prompt text or secrets.
    """

    __tablename__ = "lore_batch_request_log"
    __table_args__ = (
        CheckConstraint("route IN ('sync', 'batch', 'fallback', 'batch_superseded')", name="route"),
        CheckConstraint("status IN ('ok', 'errored', 'expired', 'canceled', 'error')", name="status"),
        Index(None, "ts"),
        Index(None, "tag", "ts"),
        Index(None, "route", "ts"),
    )

    id: Mapped[str] = mapped_column(String, primary_key=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime())
    provider: Mapped[str] = mapped_column(String)
    model: Mapped[str] = mapped_column(String)
    tag: Mapped[str | None] = mapped_column(String)
    worker: Mapped[str | None] = mapped_column(String)
    session_id: Mapped[str | None] = mapped_column(String)
    credential_fp: Mapped[str | None] = mapped_column(String(16))
    route: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    input_tokens: Mapped[int] = mapped_column(Integer, server_default=_ZERO)
    output_tokens: Mapped[int] = mapped_column(Integer, server_default=_ZERO)
    cache_read_tokens: Mapped[int] = mapped_column(Integer, server_default=_ZERO)
    cache_write_5m_tokens: Mapped[int] = mapped_column(Integer, server_default=_ZERO)
    cache_write_1h_tokens: Mapped[int] = mapped_column(Integer, server_default=_ZERO)
    cost_usd: Mapped[Decimal | None] = mapped_column(Numeric(18, 9))
    sync_cost_usd: Mapped[Decimal | None] = mapped_column(Numeric(18, 9))
    price_effective_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    batch_id: Mapped[str | None] = mapped_column(String)
    custom_id: Mapped[str | None] = mapped_column(String)


ITEM_STATES = (
    "queued",
    "submitting",
    "in_batch",
    "rescued",
    "done",
    "failed",
    "delivered",
    "handler_failed",
)
BATCH_STATUSES = ("creating", "in_progress", "canceling", "ended", "lost", "failed")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class BatchItem(Base):
    """``lore_batch_items`` (BATCH.md 6.1): one queued call of the durable pool.

    ``params`` is the Messages request, ``call`` the original call for an exact replay; the credential is
    never stored, only its fingerprint. ``custom_id`` is the current submission's (``lb-<id>-<attempt>``),
    ``submission_id`` the create that claimed it, ``owner_id`` the process that awaits it.
    """

    __tablename__ = "lore_batch_items"
    __table_args__ = (
        CheckConstraint(_in("state", ITEM_STATES), name="state"),
        Index(None, "state", "credential_fp", "enqueued_at"),
        Index(None, "credential_fp", "state", "deadline"),
        Index(None, "batch_id"),
        Index(None, "owner_id", "state"),
        Index(None, "submission_id"),
    )

    id: Mapped[str] = mapped_column(String, primary_key=True)
    custom_id: Mapped[str | None] = mapped_column(String, unique=True)
    submission_id: Mapped[str | None] = mapped_column(String)
    credential_fp: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String)
    workspace: Mapped[str | None] = mapped_column(String)
    model: Mapped[str] = mapped_column(String)
    facade: Mapped[str] = mapped_column(String(16))
    worker: Mapped[str | None] = mapped_column(String)
    tag: Mapped[str | None] = mapped_column(String)
    session_id: Mapped[str | None] = mapped_column(String)
    params: Mapped[JsonValue] = mapped_column(JSON_TYPE, nullable=False)
    call: Mapped[JsonValue] = mapped_column(JSON_TYPE, nullable=False)
    params_bytes: Mapped[int] = mapped_column(Integer)
    deadline: Mapped[datetime] = mapped_column(UTCDateTime())
    state: Mapped[str] = mapped_column(String(16))
    batch_id: Mapped[str | None] = mapped_column(String)
    attempts: Mapped[int] = mapped_column(Integer, server_default=_ZERO)
    owner_id: Mapped[str] = mapped_column(String)
    result: Mapped[JsonValue] = mapped_column(JSON_TYPE, nullable=True)
    usage: Mapped[JsonValue] = mapped_column(JSON_TYPE, nullable=True)
    error: Mapped[JsonValue] = mapped_column(JSON_TYPE, nullable=True)
    route: Mapped[str | None] = mapped_column(String(16))
    rescued_by: Mapped[str | None] = mapped_column(String)
    handler_attempts: Mapped[int] = mapped_column(Integer, server_default=_ZERO)
    enqueued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class BatchRecord(Base):
    """``lore_batch_batches``: one create of the durable pool, from ``creating`` (no provider id yet) on."""

    __tablename__ = "lore_batch_batches"
    __table_args__ = (
        CheckConstraint(_in("status", BATCH_STATUSES), name="status"),
        Index(None, "credential_fp", "status"),
    )

    submission_id: Mapped[str] = mapped_column(String, primary_key=True)
    id: Mapped[str | None] = mapped_column(String, unique=True)
    provider: Mapped[str] = mapped_column(String)
    credential_fp: Mapped[str] = mapped_column(String(16))
    workspace: Mapped[str | None] = mapped_column(String)
    process_id: Mapped[str] = mapped_column(String)
    status: Mapped[str] = mapped_column(String(16))
    request_count: Mapped[int] = mapped_column(Integer)
    counts: Mapped[JsonValue] = mapped_column(JSON_TYPE, nullable=True)
    polls: Mapped[int] = mapped_column(Integer, server_default=_ZERO)
    poll_failures: Mapped[int] = mapped_column(Integer, server_default=_ZERO)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    next_poll_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancel_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class BatchProcess(Base):
    """``lore_batch_processes``: a process of the durable pool, its heartbeat and the credentials it holds."""

    __tablename__ = "lore_batch_processes"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    host: Mapped[str] = mapped_column(String)
    pid: Mapped[int] = mapped_column(Integer)
    credential_fps: Mapped[JsonValue] = mapped_column(
        JSON_TYPE, nullable=False, server_default=_EMPTY_JSON_ARRAY
    )
    workers: Mapped[JsonValue] = mapped_column(JSON_TYPE, nullable=False, server_default=_EMPTY_JSON_ARRAY)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime())
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class BatchLease(Base):
    """``lore_batch_leases``: per-credential flusher leadership on SQLite (PostgreSQL uses advisory locks)."""

    __tablename__ = "lore_batch_leases"

    key: Mapped[str] = mapped_column(String, primary_key=True)
    holder: Mapped[str] = mapped_column(String)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
