"""``Lore``: the engine instance. It owns the store, the worker scheduler, the idle watcher and the sessions.

::

    async with Lore.open(llm=client) as lore:                 # SQLite in the user data dir, migrated on open
        session = lore.session("chat-42", model="claude-sonnet-4-6")
        result = await session.transform(messages, system=system_prompt)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Generator
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from lore_core.clock import Clock, SystemClock
from lore_core.config import LoreConfig
from lore_core.errors import ClosedError, SessionNotFoundError
from lore_core.llm import LLMClient, LLMResponse
from lore_core.recall import DEFAULT_LIMIT, RecallResult, RecallScope, recall_in
from lore_core.session import LoreSession
from lore_core.state import SessionStateView, is_idle
from lore_core.store import SqlSessionStore
from lore_core.tokens import TokenCounter, count_tokens
from lore_core.workers import IdleReport, WorkerContext, WorkerScheduler
from lore_core.workers.replay import AnswerOutcome, apply_answer

__all__ = ["Lore"]

logger = logging.getLogger(__name__)

DEFAULT_PROJECT = "default"


class _Opening:
    """What :meth:`Lore.open` returns: ``async with`` it, or ``await`` it for a ``Lore`` you close yourself."""

    def __init__(self, factory: Any) -> None:
        self._factory = factory
        self._lore: Lore | None = None

    def __await__(self) -> Generator[Any, None, Lore]:
        return self._factory().__await__()  # type: ignore[no-any-return]

    async def __aenter__(self) -> Lore:
        self._lore = await self._factory()
        return self._lore

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._lore is not None:
            await self._lore.close()


class Lore:
    """The engine: sessions, background workers and the idle watcher over one store."""

    def __init__(
        self,
        *,
        store: SqlSessionStore,
        llm: LLMClient,
        config: LoreConfig,
        clock: Clock,
        counter: TokenCounter,
        watch_idle: bool,
    ) -> None:
        self.store = store
        self.llm = llm
        self.config = config
        self.clock = clock
        self.counter = counter
        self.scheduler = WorkerScheduler(
            WorkerContext(store=store, llm=llm, config=config, clock=clock, counter=counter)
        )
        self._sessions: dict[str, LoreSession] = {}
        self._dirty: set[str] = set()
        self._closed = False
        self._deferred_meta: set[str] = set()
        self._watcher: asyncio.Task[None] | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._watch_idle = watch_idle

    @classmethod
    def open(
        cls,
        url: str | None = None,
        *,
        llm: LLMClient,
        config: LoreConfig | None = None,
        clock: Clock | None = None,
        counter: TokenCounter = count_tokens,
        watch_idle: bool = True,
    ) -> _Opening:
        """Open the engine on ``url`` (None: ``LORE_DB_URL`` or SQLite in the user data dir).

        The schema is brought to Alembic head (``config.auto_migrate``) or ``SchemaOutOfDateError`` is raised.
        ``watch_idle=False`` runs neither the idle watcher nor the periodic state flush: idle work then
        happens through :meth:`run_idle_work` or :meth:`watch_once`, and state is written before idle work and
        on close (for tests that drive time themselves, and for batch jobs).

        Raises:
            ConfigError: a bad URL or setting.
            SchemaOutOfDateError: the schema is behind and ``auto_migrate`` is off.
            StoreError: the database failed.
        """
        settings = config or LoreConfig()

        async def factory() -> Lore:
            store = await SqlSessionStore.open(url, auto_migrate=settings.auto_migrate)
            lore = cls(
                store=store,
                llm=llm,
                config=settings,
                clock=clock or SystemClock(),
                counter=counter,
                watch_idle=watch_idle,
            )
            lore._start()
            return lore

        return _Opening(factory)

    def _start(self) -> None:
        if self._watch_idle:
            loop = asyncio.get_running_loop()
            self._flusher = loop.create_task(self._flush_loop())
            self._watcher = loop.create_task(self._watch_loop())

    # -- sessions ----------------------------------------------------------------------------------------

    def session(
        self,
        session_id: str,
        *,
        model: str,
        context_window: int | None = None,
        max_output_tokens: int | None = None,
        project: str | None = None,
    ) -> LoreSession:
        """The handle of one conversation (the same object for the same id); calling again with another
        ``model`` switches the model."""
        self.ensure_open()
        existing = self._sessions.get(session_id)
        if existing is not None:
            existing.switch_model(model, context_window=context_window)
            if max_output_tokens is not None:
                existing.max_output_tokens = max_output_tokens
            return existing
        handle = LoreSession(
            self,
            session_id,
            model=model,
            context_window=context_window,
            max_output_tokens=max_output_tokens,
            project=project or DEFAULT_PROJECT,
        )
        self._sessions[session_id] = handle
        return handle

    def inspect_session_state(self, session_id: str) -> SessionStateView | None:
        """The state view of a session loaded in this process, or None (no I/O, never creates state)."""
        handle = self._sessions.get(session_id)
        return handle.inspect() if handle is not None else None

    async def recall(
        self,
        session_id: str,
        query: str,
        *,
        limit: int = DEFAULT_LIMIT,
        scope: RecallScope = "session",
        project: str | None = None,
        expand: bool | None = None,
        max_chars: int | None = None,
    ) -> RecallResult:
        """:meth:`LoreSession.recall` for a stored session, whether or not this process has its handle.

        Raises:
            SessionNotFoundError: the store has no such session.
            ConfigError: as :meth:`LoreSession.recall`.
            StoreError: the database failed.
        """
        self.ensure_open()
        handle = self._sessions.get(session_id)
        if handle is not None:
            return await handle.recall(
                query, limit=limit, scope=scope, project=project, expand=expand, max_chars=max_chars
            )
        record = await self.store.get_session(session_id)
        if record is None:
            raise SessionNotFoundError(session_id)
        return await recall_in(
            self.scheduler.context,
            query,
            session_id=session_id,
            project=record.project,
            model=record.last_model,
            limit=limit,
            scope=scope,
            scope_project=project,
            expand=expand,
            max_chars=max_chars,
        )

    async def run_idle_work(self, session_id: str) -> IdleReport:
        """Run the idle work of a session now and wait for it (its calls stay non-urgent; meta not deferred).

        Raises:
            SessionNotFoundError: the store has no such session.
        """
        self.ensure_open()
        if await self.store.get_session(session_id) is None:
            raise SessionNotFoundError(session_id)
        await self._flush(session_id)
        handle = self._sessions.get(session_id)
        if handle is not None:
            await handle.flush_writes()
        report = await self.scheduler.idle_work(session_id)
        await self._sync_worker_columns(session_id)
        if handle is not None and handle.state is not None:
            handle.state.idle_done_at = self.clock.now()
            handle._rows = None
        return report

    async def apply_answer(
        self, *, worker: str, session_id: str, system: str, user: str, response: LLMResponse
    ) -> AnswerOutcome:
        """Apply a worker answer that arrived after the coroutine that asked for it was gone (a batching
        client's result handler, after a crash and restart), exactly as that coroutine would have.

        The worker step that asks ``(worker, system, user)`` is re-run from the stored state with a client
        that holds only this answer (:class:`~lore_core.workers.replay.StoredAnswers`): the matching call
        gets it, nothing else reaches a model, and the result is written, recorded in ``worker_runs`` and
        seen by live sessions as usual. An answer the state no longer asks for comes back ``applied=False``
        (``detail`` says why) and writes nothing but a ``stale`` ``worker_runs`` row with its tokens.

        Raises:
            ConfigError: ``worker`` is not ``distill``, ``meta-distill``, ``curate`` or ``validate``.
            ClosedError: after :meth:`close`.
            StoreError: the database failed (retryable).

        Example::

            async def handler(result: HandledResult) -> None:    # registered per worker label
                if result.response is not None and result.session_id is not None:
                    await lore.apply_answer(worker=result.worker, session_id=result.session_id,
                                            system=result.call.system, user=result.call.user,
                                            response=result.response)
        """
        self.ensure_open()
        outcome = await apply_answer(
            self.scheduler, worker=worker, session_id=session_id, system=system, user=user, response=response
        )
        if outcome.applied and worker == "curate":
            await self._sync_worker_columns(session_id)
        logger.info("late %s answer for session %s: %s", worker, session_id, outcome.detail)
        return outcome

    async def _sync_worker_columns(self, session_id: str) -> None:
        """Copy what idle work wrote (the curator's watermark and turn counter) into the in-memory state, so
        the next flush does not write the old values back."""
        handle = self._sessions.get(session_id)
        if handle is None or handle.state is None:
            return
        stored = await self.store.load_state(session_id)
        if stored is not None:
            handle.state.turns_since_curation = stored.turns_since_curation
            handle.state.last_curated_at = (
                stored.last_curated_at.timestamp() if stored.last_curated_at is not None else None
            )

    # -- plumbing used by sessions -------------------------------------------------------------------------

    def ensure_open(self) -> None:
        """Raise ``ClosedError`` after :meth:`close`."""
        if self._closed:
            raise ClosedError("Lore is closed")

    def now_datetime(self) -> datetime:
        """The clock's time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.clock.now(), tz=UTC)

    def mark_dirty(self, session: LoreSession) -> None:
        """Remember that a session's state changed; the flusher writes it within ``state_flush_seconds``."""
        self._dirty.add(session.session_id)

    async def _flush(self, session_id: str | None = None) -> None:
        targets = [session_id] if session_id is not None else sorted(self._dirty)
        for sid in targets:
            handle = self._sessions.get(sid)
            self._dirty.discard(sid)
            if handle is None or handle.state is None:
                continue
            columns: dict[str, Any] = dict(handle.state.to_columns())
            # The curator owns its watermark (it writes it when a curation ends); never overwrite it from memory.
            columns.pop("last_curated_at", None)
            await self.store.save_state(sid, **columns)
            handle.state.dirty = False

    async def _flush_loop(self) -> None:
        while True:
            await self.clock.sleep(self.config.state_flush_seconds)
            try:
                await self._flush()
            except Exception:
                logger.exception("flushing session state failed")

    async def _watch_loop(self) -> None:
        while True:
            await self.clock.sleep(self.config.idle_poll_seconds)
            try:
                await self.watch_once()
            except Exception:
                logger.exception("idle watcher tick failed")

    async def watch_once(self) -> list[str]:
        """One idle-watcher tick: start idle work for each idle session (once per idle period; meta waits
        until the idle time reaches the cache TTL, then runs once). Returns the sessions started."""
        now = self.clock.now()
        started: list[str] = []
        for sid, handle in list(self._sessions.items()):
            state = handle.state
            if state is None or state.last_turn_at is None:
                continue
            idle_for = now - state.last_turn_at
            cold = idle_for >= self.config.idle_resume_seconds > 0
            if is_idle(state, now=now, config=self.config):
                state.idle_done_at = now
                state.dirty = True
                self._deferred_meta.discard(sid)
                if not cold:
                    self._deferred_meta.add(sid)
                self.scheduler.spawn(self._idle(sid, run_meta=cold), job="idle", session_id=sid)
                started.append(sid)
            elif sid in self._deferred_meta and cold and (state.idle_done_at or 0) >= state.last_turn_at:
                self._deferred_meta.discard(sid)
                self.scheduler.spawn(self.scheduler.meta.run(sid), job="meta-distill", session_id=sid)
                started.append(sid)
        return started

    async def _idle(self, session_id: str, *, run_meta: bool) -> None:
        await self._flush(session_id)
        handle = self._sessions.get(session_id)
        if handle is not None:
            await handle.flush_writes()
        await self.scheduler.idle_work(session_id, run_meta=run_meta)
        await self._sync_worker_columns(session_id)

    # -- lifecycle -----------------------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop the watcher, wait up to ``shutdown_grace_seconds`` for background work, cancel the rest (its
        messages stay undistilled), flush dirty state and close the store. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for task in (self._watcher, self._flusher):
            if task is not None:
                task.cancel()
        for task in (self._watcher, self._flusher):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.scheduler.aclose(grace=self.config.shutdown_grace_seconds)
        try:
            for sid in list(self._sessions):
                await self._flush(sid)
        finally:
            await self.store.aclose()

    async def __aenter__(self) -> Lore:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
