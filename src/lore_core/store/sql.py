"""``SqlSessionStore``: the :class:`~lore_core.store.port.SessionStore` port on SQLite and PostgreSQL.

Each method is one transaction (:class:`~lore_core.store.transactions.SqlStoreBase`: writes ``BEGIN
IMMEDIATE`` on SQLite, reads deferred; every backend error becomes a :class:`~lore_core.errors.StoreError`
naming the operation, without bound values). The SQL lives in the query modules (``sessions``, ``messages``,
``distillations``, ``knowledge``, ``fulltext``, ``worker_runs``); this class picks the transaction and
delegates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from lore_core.errors import ConfigError
from lore_core.store import distillations, fulltext, knowledge, messages, sessions, worker_runs
from lore_core.store.port import SessionStore
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
from lore_core.store.transactions import SqlStoreBase
from lore_core.store.types import JsonValue

__all__ = ["SqlSessionStore"]


class SqlSessionStore(SqlStoreBase):
    """Session storage on SQLite or PostgreSQL through SQLAlchemy's async engine.

    ``engine`` is an :class:`AsyncEngine` (shared: the store never disposes it) or a URL / ``None`` (the store
    creates the engine with :func:`~lore_core.store.engine.create_engine` and disposes it on :meth:`aclose`).
    The schema must already be at head: :meth:`~lore_core.store.transactions.SqlStoreBase.open` migrates on
    open (see :func:`~lore_core.store.migrate.ensure_schema`).

    >>> async with SqlSessionStore("sqlite+aiosqlite:///lore.db") as store:  # doctest: +SKIP
    ...     await store.ensure_session("chat-42", "default", "claude-sonnet-4-6", now)

    Raises:
        ConfigError: (constructor) a bad URL.
    """

    # -- sessions and state ---------------------------------------------------------------------------------

    async def ensure_session(self, session_id: str, project: str, model: str, now: datetime) -> SessionRecord:
        """Create the session and its state row unless they exist; set ``last_model``. Returns the session."""
        async with self._write("ensure session") as connection:
            return await sessions.ensure_session(connection, session_id, project, model, now)

    async def get_session(self, session_id: str) -> SessionRecord | None:
        """The session, or None when unknown."""
        async with self._read("get session") as connection:
            return await sessions.get_session(connection, session_id)

    async def list_sessions(self, *, project: str | None = None) -> list[SessionRecord]:
        """Every session (of ``project`` when given), oldest first."""
        async with self._read("list sessions") as connection:
            return await sessions.list_sessions(connection, project=project)

    async def load_state(self, session_id: str) -> SessionStateRecord | None:
        """The session's persisted state, or None when the session is unknown."""
        async with self._read("load session state") as connection:
            return await sessions.load_state(connection, session_id)

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
        """Update only the given state fields. Raises ``SessionNotFoundError`` for an unknown session."""
        given: dict[str, object] = {
            "force_min_layer": force_min_layer,
            "last_layer": last_layer,
            "last_known_input": last_known_input,
            "last_usage_model": last_usage_model,
            "last_input_count": last_input_count,
            "last_window_start": last_window_start,
            "last_turn_at": last_turn_at,
            "last_stop_reason": last_stop_reason,
            "calibration": calibration,
            "raw_pin": raw_pin,
            "knowledge_pin": knowledge_pin,
            "turns_since_curation": turns_since_curation,
            "last_curated_at": last_curated_at,
            "idle_done_at": idle_done_at,
        }
        changes = {name: value for name, value in given.items() if value is not UNSET}
        async with self._write("save session state") as connection:
            await sessions.save_state(connection, session_id, changes)

    async def try_take_lease(self, session_id: str, owner: str, until: datetime, now: datetime) -> bool:
        """Compare-and-set the distillation lease; True when ``owner`` holds it until ``until``.

        Raises ``SessionNotFoundError`` for an unknown session.
        """
        async with self._write("take lease") as connection:
            return await sessions.try_take_lease(connection, session_id, owner, until, now)

    async def release_lease(self, session_id: str, owner: str) -> bool:
        """Free the lease if ``owner`` holds it; True when it did."""
        async with self._write("release lease") as connection:
            return await sessions.release_lease(connection, session_id, owner)

    # -- messages -------------------------------------------------------------------------------------------

    async def insert_messages(self, records: Sequence[MessageRecord]) -> int:
        """Insert-or-ignore by (session, id) in one transaction; return how many rows were new.

        Raises ``SessionNotFoundError`` (and stores nothing) when a record's session is unknown.
        """
        if not records:
            return 0
        async with self._write("insert messages") as connection:
            return await messages.insert_messages(connection, records)

    async def list_messages(
        self,
        session_id: str,
        *,
        undistilled_only: bool = False,
        after_position: int | None = None,
        limit: int | None = None,
        with_blocks: bool = True,
    ) -> list[MessageRecord]:
        """The session's messages by position, optionally undistilled only, after a position, limited;
        ``with_blocks=False`` skips loading the blocks (records get ``blocks=()``)."""
        async with self._read("list messages") as connection:
            return await messages.list_messages(
                connection,
                session_id,
                undistilled_only=undistilled_only,
                after_position=after_position,
                limit=limit,
                with_blocks=with_blocks,
            )

    async def messages_after(
        self, session_id: str, since: datetime, *, with_blocks: bool = True
    ) -> list[MessageRecord]:
        """The session's messages with ``created_at > since``, by position."""
        async with self._read("list messages after") as connection:
            return await messages.messages_after(connection, session_id, since, with_blocks=with_blocks)

    async def count_messages(self, session_id: str, *, undistilled_only: bool = False) -> int:
        """How many messages the session stores (undistilled ones only with ``undistilled_only``)."""
        async with self._read("count messages") as connection:
            return await messages.count_messages(connection, session_id, undistilled_only=undistilled_only)

    async def message_ids(self, session_id: str) -> set[str]:
        """Every stored message id of the session."""
        async with self._read("list message ids") as connection:
            return await messages.message_ids(connection, session_id)

    async def has_content_hash(self, session_id: str, role: str, content_hash: str) -> bool:
        """Whether the session stores a message with this role and content hash."""
        async with self._read("find content hash") as connection:
            return await messages.has_content_hash(connection, session_id, role, content_hash)

    async def undistilled_tokens(self, session_id: str) -> int:
        """The summed tokens of the session's undistilled messages."""
        async with self._read("count undistilled tokens") as connection:
            return await messages.undistilled_tokens(connection, session_id)

    async def reset_orphan_distilled(self, session_id: str) -> int:
        """Crash repair: un-distill messages no distillation references; return how many.

        Raises ``SessionNotFoundError`` for an unknown session.
        """
        async with self._write("reset orphan distilled messages") as connection:
            await sessions.lock_session(connection, session_id)
            return await messages.reset_orphan_distilled(connection, session_id)

    # -- distillations --------------------------------------------------------------------------------------

    async def insert_distillation_and_mark(
        self, distillation: DistillationRecord, source_ids: Sequence[str] | None = None
    ) -> DistillationRecord | None:
        """Insert a gen-0 row and mark its sources distilled atomically; None (nothing written) when stale.

        Raises ``ConfigError`` for missing or mismatched source ids, ``SessionNotFoundError`` for an
        unknown session.
        """
        ids = distillation.source_ids if source_ids is None else tuple(source_ids)
        if not ids:
            raise ConfigError(f"distillation {distillation.id}: no source ids")
        if set(ids) != set(distillation.source_ids):
            raise ConfigError(f"distillation {distillation.id}: source_ids differ from the record's")
        try:
            async with self._write("insert distillation") as connection:
                return await distillations.insert_and_mark(connection, distillation, ids)
        except distillations.StaleWrite:
            return None

    async def insert_meta_and_archive(
        self, meta: DistillationRecord, archive_ids: Sequence[str]
    ) -> DistillationRecord | None:
        """Insert a reflector row and archive what it replaces atomically; None (nothing written) when stale.

        Raises ``SessionNotFoundError`` for an unknown session.
        """
        try:
            async with self._write("insert meta distillation") as connection:
                return await distillations.insert_meta_and_archive(connection, meta, archive_ids)
        except distillations.StaleWrite:
            return None

    async def list_distillations(
        self, session_id: str, *, include_archived: bool = False, generation: int | None = None
    ) -> list[DistillationRecord]:
        """The session's distillations by ``seq``; archived ones only with ``include_archived``."""
        async with self._read("list distillations") as connection:
            return await distillations.list_distillations(
                connection, session_id, include_archived=include_archived, generation=generation
            )

    async def get_distillation(self, distillation_id: str) -> DistillationRecord | None:
        """The row with this id, archived or not; None when unknown."""
        async with self._read("get distillation") as connection:
            return await distillations.get_distillation(connection, distillation_id)

    async def latest_distillation(self, session_id: str) -> DistillationRecord | None:
        """The session's non-archived row with the highest ``seq`` (any generation), or None."""
        async with self._read("get latest distillation") as connection:
            return await distillations.latest_distillation(connection, session_id)

    async def distillations_after(
        self, session_id: str, since: datetime, *, include_archived: bool = True
    ) -> list[DistillationRecord]:
        """The session's rows with ``created_at > since``, by ``seq``; archived ones unless told not to."""
        async with self._read("list distillations after") as connection:
            return await distillations.distillations_after(
                connection, session_id, since, include_archived=include_archived
            )

    async def archive_distillations(self, ids: Sequence[str]) -> int:
        """Archive the listed rows; return how many were live before."""
        if not ids:
            return 0
        async with self._write("archive distillations") as connection:
            return await distillations.archive(connection, ids)

    async def record_retention(self, distillation_id: str, score: float) -> bool:
        """Store a retention score (and the initial one if unset); False for an unknown row."""
        async with self._write("record retention") as connection:
            return await distillations.record_retention(connection, distillation_id, score)

    async def revise_distillation(
        self,
        distillation_id: str,
        *,
        observations: str,
        token_count: int,
        retention_score: float | None,
        expected_revision: int,
    ) -> bool:
        """Compare-and-set a revision of the observations; False when the row moved on or is unknown."""
        async with self._write("revise distillation") as connection:
            return await distillations.revise(
                connection,
                distillation_id,
                observations=observations,
                token_count=token_count,
                retention_score=retention_score,
                expected_revision=expected_revision,
            )

    # -- knowledge and kv -----------------------------------------------------------------------------------

    async def upsert_knowledge(self, entry: KnowledgeRecord) -> None:
        """Insert the entry or overwrite the one with its id (keeping ``created_at``)."""
        async with self._write("upsert knowledge") as connection:
            await knowledge.upsert_knowledge(connection, entry)

    async def delete_knowledge(self, entry_id: str) -> bool:
        """Delete the entry; False when there was none."""
        async with self._write("delete knowledge") as connection:
            return await knowledge.delete_knowledge(connection, entry_id)

    async def list_knowledge(
        self, project: str | None, *, include_global: bool = True, min_confidence: float = 0.2
    ) -> list[KnowledgeRecord]:
        """Visible entries (confidence > ``min_confidence``) of the project, plus global ones by default."""
        async with self._read("list knowledge") as connection:
            return await knowledge.list_knowledge(
                connection, project, include_global=include_global, min_confidence=min_confidence
            )

    async def count_knowledge(
        self, project: str | None, *, own_only: bool = True, min_confidence: float = 0.2
    ) -> int:
        """How many visible entries the project has (plus global ones unless ``own_only``)."""
        async with self._read("count knowledge") as connection:
            return await knowledge.count_knowledge(
                connection, project, include_global=not own_only, min_confidence=min_confidence
            )

    async def kv_get(self, key: str) -> KvRecord | None:
        """The entry under ``key``, or None."""
        async with self._read("read kv") as connection:
            return await knowledge.kv_get(connection, key)

    async def kv_set(self, key: str, value: JsonValue, now: datetime) -> None:
        """Store ``value`` under ``key``."""
        async with self._write("write kv") as connection:
            await knowledge.kv_set(connection, key, value, now)

    # -- full-text search -----------------------------------------------------------------------------------

    async def search_text(self, search: TextSearch) -> list[TextMatch]:
        """Ranked full-text matches per source (see :mod:`lore_core.store.fulltext`)."""
        async with self._read("search text") as connection:
            return await fulltext.search_text(connection, search)

    # -- worker runs ----------------------------------------------------------------------------------------

    async def record_worker_run(self, run: WorkerRunRecord) -> None:
        """Store the run (once per id). Raises ``SessionNotFoundError`` for an unknown ``run.session_id``."""
        async with self._write("record worker run") as connection:
            await worker_runs.record_worker_run(connection, run)

    async def list_worker_runs(
        self,
        *,
        session_id: str | None = None,
        project: str | None = None,
        worker: str | None = None,
        status: WorkerRunStatus | None = None,
        limit: int = 20,
    ) -> list[WorkerRunRecord]:
        """The newest ``limit`` runs matching every filter given (None: any), newest first.

        Raises ``ConfigError`` for a negative ``limit``.
        """
        async with self._read("list worker runs") as connection:
            return await worker_runs.list_worker_runs(
                connection, session_id=session_id, project=project, worker=worker, status=status, limit=limit
            )

    async def count_worker_runs(
        self,
        *,
        session_id: str | None = None,
        project: str | None = None,
        worker: str | None = None,
        status: WorkerRunStatus | None = None,
    ) -> int:
        """How many runs match every filter given (None: any)."""
        async with self._read("count worker runs") as connection:
            return await worker_runs.count_worker_runs(
                connection, session_id=session_id, project=project, worker=worker, status=status
            )

    async def prune_worker_runs(self, *, keep_per_session: int) -> int:
        """Keep the newest ``keep_per_session`` runs per session (per project for session-less runs);
        return how many were deleted. Raises ``ConfigError`` for a negative count."""
        async with self._write("prune worker runs") as connection:
            return await worker_runs.prune_worker_runs(connection, keep_per_session=keep_per_session)


if TYPE_CHECKING:
    _conforms: type[SessionStore] = SqlSessionStore
