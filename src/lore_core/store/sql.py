"""``SqlSessionStore``: the :class:`~lore_core.store.port.SessionStore` port on SQLite and PostgreSQL.

Each method is one transaction: writes use ``engine.begin()`` (``BEGIN IMMEDIATE`` on SQLite), reads a
deferred transaction. The SQL lives in the query modules (``sessions``, ``messages``, ``distillations``,
``knowledge``); this class owns the engine, the transactions and the error wrapping: every SQLAlchemy or
driver error becomes a :class:`~lore_core.errors.StoreError` naming the operation, with the original chained
(``raise ... from``). Bound values never appear in those errors: the engine is created with
``hide_parameters=True``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING

from sqlalchemy.exc import DataError, IntegrityError, ProgrammingError, SQLAlchemyError, StatementError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from lore_core.errors import ClosedError, ConfigError, StoreError
from lore_core.store import distillations, knowledge, messages, sessions
from lore_core.store.engine import READ_ONLY_OPTION, create_engine
from lore_core.store.migrate import ensure_schema
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
    Unset,
)
from lore_core.store.types import JsonValue

__all__ = ["SqlSessionStore"]


def _redact_details(exc: BaseException) -> None:
    """Blank the server's DETAIL text everywhere in the chain (PostgreSQL puts row values there, e.g.
    "Failing row contains (...)"), so a logged traceback of the wrapped error never shows stored content."""
    pending: list[BaseException | None] = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(getattr(current, "detail", None), str):
            setattr(current, "detail", "(redacted by lore-memory: may contain row values)")  # noqa: B010
        pending += [getattr(current, "orig", None), current.__cause__, current.__context__]


def _store_error(operation: str, exc: BaseException) -> StoreError:
    """Wrap a backend error; constraint and data errors will fail again, so they are not retryable."""
    _redact_details(exc)
    permanent = isinstance(exc, IntegrityError | DataError | ProgrammingError) or (
        isinstance(exc, StatementError) and isinstance(exc.orig, ValueError | TypeError)
    )
    return StoreError(operation, retryable=not permanent)


class SqlSessionStore:
    """Session storage on SQLite or PostgreSQL through SQLAlchemy's async engine.

    ``engine`` is an :class:`AsyncEngine` (shared: the store never disposes it) or a URL / ``None`` (the store
    creates the engine with :func:`~lore_core.store.engine.create_engine` and disposes it on :meth:`aclose`).
    The schema must already be at head: :meth:`open` migrates on open (see
    :func:`~lore_core.store.migrate.ensure_schema`).

    >>> async with SqlSessionStore("sqlite+aiosqlite:///lore.db") as store:  # doctest: +SKIP
    ...     await store.ensure_session("chat-42", "default", "claude-sonnet-4-6", now)

    Raises:
        ConfigError: (constructor) a bad URL.
    """

    def __init__(self, engine: AsyncEngine | str | None = None) -> None:
        self._owns_engine = not isinstance(engine, AsyncEngine)
        self._engine: AsyncEngine | None = (
            engine if isinstance(engine, AsyncEngine) else create_engine(engine)
        )

    @classmethod
    async def open(
        cls, engine: AsyncEngine | str | None = None, *, auto_migrate: bool = True
    ) -> SqlSessionStore:
        """Create a store and bring its schema to head (Alembic), the way the engine opens its store.

        Raises:
            ConfigError: a bad URL.
            SchemaOutOfDateError: the schema is behind and ``auto_migrate`` is False (the store is closed).
            StoreError: the database failed or is at a revision this code does not know.

        Example::

            async with await SqlSessionStore.open("sqlite+aiosqlite:///lore.db") as store:
                ...
        """
        store = cls(engine)
        try:
            await ensure_schema(store.engine, auto_migrate=auto_migrate)
        except BaseException:
            await store.aclose()
            raise
        return store

    @property
    def engine(self) -> AsyncEngine:
        """The engine in use. Raises ``ClosedError`` after :meth:`aclose`."""
        return self._live()

    async def __aenter__(self) -> SqlSessionStore:
        self._live()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the store (idempotent); dispose the engine if the store created it."""
        engine, self._engine = self._engine, None
        if engine is not None and self._owns_engine:
            await engine.dispose()

    def _live(self) -> AsyncEngine:
        if self._engine is None:
            raise ClosedError("SqlSessionStore is closed")
        return self._engine

    @asynccontextmanager
    async def _write(self, operation: str) -> AsyncIterator[AsyncConnection]:
        engine = self._live()
        try:
            async with engine.begin() as connection:
                yield connection
        except (SQLAlchemyError, OSError) as exc:
            raise _store_error(operation, exc) from exc

    @asynccontextmanager
    async def _read(self, operation: str) -> AsyncIterator[AsyncConnection]:
        engine = self._live()
        try:
            async with engine.connect() as connection:
                await connection.execution_options(**{READ_ONLY_OPTION: True})
                yield connection
        except (SQLAlchemyError, OSError) as exc:
            raise _store_error(operation, exc) from exc

    # -- sessions and state ---------------------------------------------------------------------------------

    async def ensure_session(self, session_id: str, project: str, model: str, now: datetime) -> SessionRecord:
        """Create the session and its state row unless they exist; set ``last_model``. Returns the session."""
        async with self._write("ensure session") as connection:
            return await sessions.ensure_session(connection, session_id, project, model, now)

    async def get_session(self, session_id: str) -> SessionRecord | None:
        """The session, or None when unknown."""
        async with self._read("get session") as connection:
            return await sessions.get_session(connection, session_id)

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
    ) -> list[MessageRecord]:
        """The session's messages by position, optionally undistilled only, after a position, limited."""
        async with self._read("list messages") as connection:
            return await messages.list_messages(
                connection,
                session_id,
                undistilled_only=undistilled_only,
                after_position=after_position,
                limit=limit,
            )

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

    async def kv_get(self, key: str) -> KvRecord | None:
        """The entry under ``key``, or None."""
        async with self._read("read kv") as connection:
            return await knowledge.kv_get(connection, key)

    async def kv_set(self, key: str, value: JsonValue, now: datetime) -> None:
        """Store ``value`` under ``key``."""
        async with self._write("write kv") as connection:
            await knowledge.kv_set(connection, key, value, now)


if TYPE_CHECKING:
    _conforms: type[SessionStore] = SqlSessionStore
