"""The port: what the engine needs from session storage, as a Protocol.

:class:`~lore_core.store.sql.SqlSessionStore` implements it on SQLite and PostgreSQL; one contract suite
(``tests/store/test_contract.py``) runs against every implementation. Every method may raise
:class:`~lore_core.errors.StoreError` when the backend fails and :class:`~lore_core.errors.ClosedError` after
:meth:`aclose`; other errors are listed per method. Timestamps are aware UTC ``datetime`` values passed in by
the caller (the store never reads a clock).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

from lore_core.store.records import (
    UNSET,
    DistillationRecord,
    KnowledgePin,
    KnowledgeRecord,
    KvRecord,
    MessageRecord,
    RawPin,
    SessionRecord,
    SessionStateRecord,
    TextMatch,
    TextSearch,
    Unset,
    WorkerRunRecord,
    WorkerRunStatus,
)
from lore_core.store.types import JsonValue

__all__ = ["SessionStore"]


class SessionStore(Protocol):
    """Session storage: sessions and their state, messages, distillations, knowledge, kv and worker runs."""

    # -- sessions and state ---------------------------------------------------------------------------------

    async def ensure_session(self, session_id: str, project: str, model: str, now: datetime) -> SessionRecord:
        """Create the session (and its state row) unless it exists; update ``last_model`` to ``model``.

        An existing session keeps its project and ``created_at``.
        """
        ...

    async def get_session(self, session_id: str) -> SessionRecord | None:
        """The session, or None when unknown (never raises ``SessionNotFoundError``)."""
        ...

    async def list_sessions(self, *, project: str | None = None) -> list[SessionRecord]:
        """Every session, or those of ``project``; oldest first (``created_at``, then id)."""
        ...

    async def load_state(self, session_id: str) -> SessionStateRecord | None:
        """The session's persisted state, or None when the session is unknown."""
        ...

    async def save_state(
        self,
        session_id: str,
        *,
        force_min_layer: int | Unset = UNSET,
        last_layer: int | Unset = UNSET,
        last_known_input: int | Unset = UNSET,
        last_usage_model: str | Unset | None = UNSET,
        last_input_count: int | Unset = UNSET,
        last_window_start: int | Unset = UNSET,
        last_turn_at: datetime | Unset | None = UNSET,
        last_stop_reason: str | Unset | None = UNSET,
        calibration: Mapping[str, int] | Unset = UNSET,
        raw_pin: RawPin | Unset | None = UNSET,
        knowledge_pin: KnowledgePin | Unset | None = UNSET,
        turns_since_curation: int | Unset = UNSET,
        last_curated_at: datetime | Unset | None = UNSET,
        idle_done_at: datetime | Unset | None = UNSET,
    ) -> None:
        """Write only the given state fields; the others keep whatever another writer stored.

        Raises:
            SessionNotFoundError: the session is unknown.
        """
        ...

    async def try_take_lease(self, session_id: str, owner: str, until: datetime, now: datetime) -> bool:
        """Take or renew the session's distillation lease until ``until``; True when ``owner`` now holds it.

        Succeeds when the lease is free, expired (``lease_until <= now``) or already ``owner``'s; one atomic
        compare-and-set, safe across processes.

        Raises:
            SessionNotFoundError: the session is unknown.
        """
        ...

    async def release_lease(self, session_id: str, owner: str) -> bool:
        """Free the lease if ``owner`` holds it; True when it did."""
        ...

    # -- messages -------------------------------------------------------------------------------------------

    async def insert_messages(self, records: Sequence[MessageRecord]) -> int:
        """Store the records whose (session, id) is new, in one transaction; return how many were stored.

        Idempotent: records already stored (or repeated in ``records``) are skipped, never rewritten.

        Raises:
            SessionNotFoundError: a record's session is unknown (nothing is stored).
        """
        ...

    async def list_messages(
        self,
        session_id: str,
        *,
        undistilled_only: bool = False,
        after_position: int | None = None,
        limit: int | None = None,
        with_blocks: bool = True,
    ) -> list[MessageRecord]:
        """The session's messages ordered by position (equal positions: oldest first).

        ``with_blocks=False`` leaves the ``blocks`` column out of the read (records carry ``blocks=()``): the
        per-turn path needs only ``text`` and should not load every tool payload again.
        """
        ...

    async def messages_after(
        self, session_id: str, since: datetime, *, with_blocks: bool = True
    ) -> list[MessageRecord]:
        """The session's messages stored after ``since`` (``created_at > since``), ordered by position.

        The curator's watermark read: pass the ``created_at`` of the last message it saw.
        """
        ...

    async def count_messages(self, session_id: str, *, undistilled_only: bool = False) -> int:
        """How many messages the session stores (only undistilled ones with ``undistilled_only``); 0 for an
        unknown session."""
        ...

    async def message_ids(self, session_id: str) -> set[str]:
        """Every stored message id of the session."""
        ...

    async def has_content_hash(self, session_id: str, role: str, content_hash: str) -> bool:
        """Whether the session stores a message with this role and content hash."""
        ...

    async def undistilled_tokens(self, session_id: str) -> int:
        """The summed ``tokens`` of the session's undistilled messages."""
        ...

    async def reset_orphan_distilled(self, session_id: str) -> int:
        """Crash repair: mark undistilled each distilled message no distillation row references.

        Returns how many messages were reset.
        """
        ...

    # -- distillations --------------------------------------------------------------------------------------

    async def insert_distillation_and_mark(
        self, distillation: DistillationRecord, source_ids: Sequence[str] | None = None
    ) -> DistillationRecord | None:
        """Insert a generation-0 row and mark its source messages distilled, in one transaction.

        ``source_ids`` defaults to ``distillation.source_ids`` and must name the same messages. Returns the
        stored record (with its ``seq``), or None when any source is missing or already distilled: then
        nothing is written (another process won the race; drop the result).

        Raises:
            ConfigError: no source ids, or ``source_ids`` differ from the record's.
            SessionNotFoundError: the session is unknown.
        """
        ...

    async def insert_meta_and_archive(
        self, meta: DistillationRecord, archive_ids: Sequence[str]
    ) -> DistillationRecord | None:
        """Insert a reflector row and archive the rows it consolidates, in one transaction.

        Returns the stored record, or None when a row to archive is missing, of another session or already
        archived; then nothing is written.

        Raises:
            SessionNotFoundError: the session is unknown.
        """
        ...

    async def list_distillations(
        self, session_id: str, *, include_archived: bool = False, generation: int | None = None
    ) -> list[DistillationRecord]:
        """The session's distillations ordered by ``seq``; archived rows only with ``include_archived``."""
        ...

    async def get_distillation(self, distillation_id: str) -> DistillationRecord | None:
        """The row with this id, archived or not; None when unknown (also for a string that is no UUID)."""
        ...

    async def latest_distillation(self, session_id: str) -> DistillationRecord | None:
        """The session's newest live row: the highest ``seq`` among non-archived rows, of any generation.

        Archived rows are skipped: their content lives on in the reflector row that archived them, which has
        a higher ``seq``. None when the session has no live row.
        """
        ...

    async def distillations_after(
        self, session_id: str, since: datetime, *, include_archived: bool = True
    ) -> list[DistillationRecord]:
        """The session's rows created after ``since`` (``created_at > since``), ordered by ``seq``.

        Archived rows are included by default: a watermark reader must see rows archived since it last looked.
        """
        ...

    async def archive_distillations(self, ids: Sequence[str]) -> int:
        """Archive the listed rows; return how many were not archived before."""
        ...

    async def record_retention(self, distillation_id: str, score: float) -> bool:
        """Store a retention score (and the initial score if unset); False for an unknown row."""
        ...

    async def revise_distillation(
        self,
        distillation_id: str,
        *,
        observations: str,
        token_count: int,
        retention_score: float | None,
        expected_revision: int,
    ) -> bool:
        """Replace the observations and bump ``revision`` if it still equals ``expected_revision``."""
        ...

    # -- knowledge and kv -----------------------------------------------------------------------------------

    async def upsert_knowledge(self, entry: KnowledgeRecord) -> None:
        """Insert the entry or overwrite the one with its id (``created_at`` is kept)."""
        ...

    async def delete_knowledge(self, entry_id: str) -> bool:
        """Delete the entry; False when there was none."""
        ...

    async def list_knowledge(
        self, project: str | None, *, include_global: bool = True, min_confidence: float = 0.2
    ) -> list[KnowledgeRecord]:
        """Entries with confidence strictly above ``min_confidence``, highest confidence first.

        The project's entries, plus global ones when ``include_global``; ``None`` lists global ones only.
        """
        ...

    async def count_knowledge(
        self, project: str | None, *, own_only: bool = True, min_confidence: float = 0.2
    ) -> int:
        """How many entries ``list_knowledge`` would return: the project's visible entries, plus global ones
        unless ``own_only``; ``None`` counts global entries."""
        ...

    async def kv_get(self, key: str) -> KvRecord | None:
        """The entry under ``key``, or None."""
        ...

    async def kv_set(self, key: str, value: JsonValue, now: datetime) -> None:
        """Store ``value`` under ``key``."""
        ...

    # -- full-text search -----------------------------------------------------------------------------------

    async def search_text(self, search: TextSearch) -> list[TextMatch]:
        """Full-text matches for recall: messages, distillations (archived too) and visible knowledge.

        One ranked list per source of ``search.sources`` (best first, ``rank`` from 1, at most
        ``search.limit`` each), returned source by source; scoped as :class:`TextSearch` says. The index is
        kept in sync by the database itself (revision 0005), so every stored row is searchable at once.

        Raises:
            ConfigError: a term holds anything but letters and digits.
        """
        ...

    # -- worker runs ----------------------------------------------------------------------------------------

    async def record_worker_run(self, run: WorkerRunRecord) -> None:
        """Store one worker run; storing the same id again changes nothing (a retried call is safe).

        ``error_detail`` is cut to ``ERROR_DETAIL_LIMIT`` (500) characters.

        Raises:
            SessionNotFoundError: ``run.session_id`` is set and the session is unknown.
        """
        ...

    async def list_worker_runs(
        self,
        *,
        session_id: str | None = None,
        project: str | None = None,
        worker: str | None = None,
        status: WorkerRunStatus | None = None,
        limit: int = 20,
    ) -> list[WorkerRunRecord]:
        """The newest ``limit`` runs matching every filter given, newest first (``started_at``, then id).

        A filter left at None matches anything (``session_id=None`` does not select session-less runs).

        Raises:
            ConfigError: ``limit`` is negative.
        """
        ...

    async def count_worker_runs(
        self,
        *,
        session_id: str | None = None,
        project: str | None = None,
        worker: str | None = None,
        status: WorkerRunStatus | None = None,
    ) -> int:
        """How many runs match every filter given (None matches anything)."""
        ...

    async def prune_worker_runs(self, *, keep_per_session: int) -> int:
        """Delete all but the newest ``keep_per_session`` runs of each session; return how many went.

        Session-less (project-level) runs are kept the same way per project.

        Raises:
            ConfigError: ``keep_per_session`` is negative.
        """
        ...

    # -- lifecycle ------------------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Release resources; later calls raise ``ClosedError``. Idempotent."""
        ...
