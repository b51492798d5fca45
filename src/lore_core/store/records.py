"""The values the store reads and writes: frozen, keyword-only, slotted dataclasses.

Records carry plain Python values (aware UTC datetimes, tuples, mappings); they never hold ORM objects or
driver rows. The store builds them from rows in one place (:mod:`lore_core.store.rows`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal, TypeAlias

from lore_core.llm import Route
from lore_core.store.types import JsonValue

__all__ = [
    "ERROR_DETAIL_LIMIT",
    "SEARCH_SOURCES",
    "UNSET",
    "DistillationKind",
    "DistillationRecord",
    "KnowledgeCategory",
    "KnowledgePin",
    "KnowledgeRecord",
    "KvRecord",
    "MessageKind",
    "MessageRecord",
    "RawPin",
    "Role",
    "SearchSource",
    "SessionRecord",
    "SessionStateRecord",
    "TextMatch",
    "TextSearch",
    "Unset",
    "WorkerRunRecord",
    "WorkerRunStatus",
]

Role: TypeAlias = Literal["user", "assistant"]
MessageKind: TypeAlias = Literal["human", "assistant", "tool_results"]
DistillationKind: TypeAlias = Literal["observer", "reflector", "digest"]
KnowledgeCategory: TypeAlias = Literal["decision", "pattern", "preference", "architecture", "gotcha"]
WorkerRunStatus: TypeAlias = Literal["ok", "error", "rejected", "stale"]
SearchSource: TypeAlias = Literal["message", "distillation", "knowledge"]

SEARCH_SOURCES: Final[tuple[SearchSource, ...]] = ("message", "distillation", "knowledge")
"""What full-text search covers (revision 0005), in the order lists come back and ties are broken."""


class _UnsetType(enum.Enum):
    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _UnsetType.UNSET
"""Marks a keyword argument that was not given (``None`` is a value some columns may take)."""

Unset: TypeAlias = Literal[_UnsetType.UNSET]

ERROR_DETAIL_LIMIT: Final = 500
"""Characters of :attr:`WorkerRunRecord.error_detail` the store keeps (a CHECK constraint caps the column)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionRecord:
    """One conversation. ``project`` is fixed at creation; ``last_model`` follows the latest model used."""

    session_id: str
    project: str
    last_model: str
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageRecord:
    """One stored message of a session's history (ENGINE.md section 2).

    ``id`` is the 32-hex deterministic id, unique within its session. ``unit_id`` links a ``tool_results`` row
    to the assistant row of its tool unit. ``meta`` holds small facts such as tool names and media types.

    ``blocks`` are the message's structured content blocks (normally Anthropic block dicts), stored exactly as
    the engine passes them, for replay and recall: the store never elides or rewrites a block. A tuple of JSON
    values, so the record stays immutable at the top level; treat the dicts inside as read-only. A read that
    skips blocks (``with_blocks=False``) returns ``()`` here, as does a row stored before revision 0002.
    """

    id: str
    session_id: str
    position: int
    role: Role
    kind: MessageKind
    text: str
    content_hash: str
    tokens: int
    created_at: datetime
    unit_id: str | None = None
    distilled: bool = False
    meta: Mapping[str, JsonValue] = field(default_factory=dict)
    blocks: tuple[JsonValue, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class DistillationRecord:
    """One distillation row: an observer log (generation 0), a ``digest`` or a reflector summary (1+).

    ``source_ids`` are the ids of the messages the row covers (a reflector lists those of everything it folded
    in). ``seq`` is assigned by the store on insert (per session, monotonic); the value passed in is ignored.
    """

    id: str
    session_id: str
    project: str
    generation: int
    kind: DistillationKind
    observations: str
    source_ids: tuple[str, ...]
    source_tokens: int
    token_count: int
    r_compression: float
    created_at: datetime
    seq: int = 0
    retention_score: float | None = None
    retention_initial: float | None = None
    revision: int = 0
    archived: bool = False
    supersedes: str | None = None
    route: Route | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class KnowledgeRecord:
    """One long-term knowledge entry. ``project`` None means global; ``id`` is a UUID (v7 by convention)."""

    id: str
    project: str | None
    category: KnowledgeCategory
    title: str
    content: str
    confidence: float
    created_at: datetime
    updated_at: datetime
    source_session: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class KvRecord:
    """One engine-metadata entry."""

    key: str
    value: JsonValue
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class RawPin:
    """The pinned layer-1 window (ENGINE.md 8.4): sizes as offsets from the tail, plus its budget."""

    raw_count: int
    total_count: int
    budget: int


@dataclass(frozen=True, slots=True, kw_only=True)
class KnowledgePin:
    """The knowledge text injected into ``system``, kept byte-stable between cold-cache moments."""

    text: str
    tokens: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionStateRecord:
    """The persisted part of a session's engine state (ENGINE.md section 10), one row per session.

    ``calibration`` maps a model name to its overhead estimate in tokens.
    """

    session_id: str
    force_min_layer: int = 0
    last_layer: int = 0
    last_known_input: int = 0
    last_usage_model: str | None = None
    last_input_count: int = 0
    last_window_start: int = 0
    last_turn_at: datetime | None = None
    last_stop_reason: str | None = None
    calibration: Mapping[str, int] = field(default_factory=dict)
    raw_pin: RawPin | None = None
    knowledge_pin: KnowledgePin | None = None
    turns_since_curation: int = 0
    last_curated_at: datetime | None = None
    idle_done_at: datetime | None = None
    lease_owner: str | None = None
    lease_until: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerRunRecord:
    """One background worker run (distill, meta-distill, curate, validate, consolidate, digest, ...).

    ``session_id`` is None for project-level work such as consolidation. ``status`` says how the run ended:
    ``ok``, ``error`` (an LLM or other failure; ``error_type`` names it), ``rejected`` (the output failed
    validation; ``error_type`` is the rejection reason) or ``stale`` (another run got there first; nothing was
    written). ``error_detail`` carries ids and codes only, never message text; the store keeps its first
    :data:`ERROR_DETAIL_LIMIT` (500) characters. ``route`` is how the last LLM call went (``sync``, ``batch``,
    ``fallback``), None without a call. ``id`` is a UUID string chosen by the caller.
    """

    id: str
    worker: str
    status: WorkerRunStatus
    started_at: datetime
    finished_at: datetime
    session_id: str | None = None
    project: str | None = None
    urgent: bool = False
    route: Route | None = None
    error_type: str | None = None
    error_detail: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class TextSearch:
    """A full-text search of the store (``SessionStore.search_text``).

    ``terms`` are words of letters and digits only (``lore_core.ranking.query_terms`` makes them); a row
    matches when it holds any of them (stemmed), and rows with more, rarer terms rank higher.

    Scope: messages and distillations (archived ones too) of ``session_id`` when it is given, else of every
    session of ``project`` when that is given, else of every session. Knowledge: the entries of ``project``
    plus global ones (``include_global``) when ``project`` is given, else every entry; always only those with
    confidence strictly above ``min_confidence`` (what ``list_knowledge`` shows). ``limit`` caps each source's
    list.
    """

    terms: tuple[str, ...]
    session_id: str | None = None
    project: str | None = None
    include_global: bool = True
    min_confidence: float = 0.2
    sources: tuple[SearchSource, ...] = SEARCH_SOURCES
    limit: int = 20


@dataclass(frozen=True, slots=True, kw_only=True)
class TextMatch:
    """One row a full-text search found.

    ``rank`` is its 1-based place in its source's list (best first). ``score`` is the backend's relevance,
    higher is better (negated BM25 on SQLite, ``ts_rank`` on PostgreSQL): comparable within one list only.
    Message records come without their ``blocks``.
    """

    rank: int
    score: float
    record: MessageRecord | DistillationRecord | KnowledgeRecord

    @property
    def source(self) -> SearchSource:
        """``message``, ``distillation`` or ``knowledge``."""
        if isinstance(self.record, MessageRecord):
            return "message"
        if isinstance(self.record, DistillationRecord):
            return "distillation"
        return "knowledge"
