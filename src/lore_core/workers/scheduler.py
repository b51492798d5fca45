"""The background side of the engine: triggers, the task group, idle work (ENGINE.md 4.1, 9.2).

Every background job runs as a task the scheduler owns. A job that fails unexpectedly (the store is down, a
bug) is logged with its traceback and kept in :attr:`WorkerScheduler.failures`; it never disappears, and it
never surfaces through the caller's turn. ``run_until_idle()`` waits for every job, including jobs those
jobs start, so tests need no sleeps.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from lore_core.workers.curator import CurationReport, Curator
from lore_core.workers.distiller import Distiller, DistillReport
from lore_core.workers.reflector import MetaWorker
from lore_core.workers.runtime import WorkerContext
from lore_core.workers.validator import Validator

__all__ = ["BackgroundFailure", "IdleReport", "WorkerScheduler"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class BackgroundFailure:
    """A background job that raised: what it was and the exception's type (never its message text)."""

    job: str
    session_id: str | None
    error_type: str


@dataclass(slots=True, kw_only=True)
class IdleReport:
    """What one idle-work pass did; ``errors`` names the steps that failed (each step is isolated)."""

    session_id: str
    distill: DistillReport | None = None
    meta_written: bool = False
    curation: CurationReport | None = None
    consolidation: CurationReport | None = None
    errors: list[str] = field(default_factory=list)


class WorkerScheduler:
    """Owns the workers and their background tasks for one engine instance."""

    def __init__(self, context: WorkerContext, *, max_failures: int = 100) -> None:
        self.context = context
        self.meta = MetaWorker(context)
        self.validator = Validator(context)
        self.distiller = Distiller(context, meta=self.meta, validator=self.validator, spawn=self._spawn_check)
        self.curator = Curator(context)
        self.failures: deque[BackgroundFailure] = deque(maxlen=max_failures)
        self._tasks: dict[asyncio.Task[Any], str | None] = {}
        self._rerun: set[str] = set()
        self._urgent_pending: set[str] = set()

    # -- tasks ----------------------------------------------------------------------------------------------

    def spawn(
        self, coro: Coroutine[Any, Any, Any], *, job: str, session_id: str | None = None
    ) -> asyncio.Task[Any]:
        """Run ``coro`` as an owned background task; a failure is logged and recorded, never raised."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks[task] = session_id
        task.add_done_callback(lambda done: self._finished(done, job, session_id))
        return task

    def _spawn_check(self, coro: Coroutine[Any, Any, float], session_id: str) -> None:
        self.spawn(coro, job="validate", session_id=session_id)

    def _finished(self, task: asyncio.Task[Any], job: str, session_id: str | None) -> None:
        self._tasks.pop(task, None)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self.failures.append(
                BackgroundFailure(job=job, session_id=session_id, error_type=type(exc).__name__)
            )
            logger.error("background %s for session %s failed", job, session_id, exc_info=exc)

    @property
    def busy(self) -> bool:
        """Whether any background job is running."""
        return bool(self._tasks)

    async def run_until_idle(self) -> None:
        """Wait until no background job is left, including jobs started by the jobs awaited."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def aclose(self, *, grace: float) -> None:
        """Wait up to ``grace`` seconds for background jobs, then cancel the rest (their messages simply
        stay undistilled)."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)

    # -- triggers -------------------------------------------------------------------------------------------

    async def after_store(self, session_id: str, *, new_human_turns: int = 0) -> None:
        """Check the triggers after new messages were stored: the incremental distillation (undistilled
        tokens reached ``max_segment_tokens``) and the in-flight curation threshold."""
        ctx, config = self.context, self.context.config
        if new_human_turns:
            state = await ctx.store.load_state(session_id)
            turns = (state.turns_since_curation if state is not None else 0) + new_human_turns
            await ctx.store.save_state(session_id, turns_since_curation=turns)
            threshold = config.curate_after_turns * config.curate_inflight_multiplier
            if turns >= threshold and not self.curator.is_active(session_id):
                self.spawn(self.curator.curate(session_id), job="curate", session_id=session_id)
        if await ctx.store.undistilled_tokens(session_id) >= config.max_segment_tokens:
            self.request_distillation(session_id)

    def request_distillation(self, session_id: str, *, urgent: bool = False) -> None:
        """Schedule a run: incremental (non-urgent, no meta) or urgent (forced, meta included, at most one
        pending per session). While a run is active, a new trigger sets a rerun bit instead of queueing."""
        if urgent:
            if session_id in self._urgent_pending:
                return
            self._urgent_pending.add(session_id)
            self.spawn(self._urgent_run(session_id), job="distill", session_id=session_id)
            return
        if self.distiller.is_running(session_id):
            self._rerun.add(session_id)
            return
        self.spawn(self._incremental_run(session_id), job="distill", session_id=session_id)

    async def _incremental_run(self, session_id: str) -> None:
        while True:
            self._rerun.discard(session_id)
            await self.distiller.run(session_id, skip_meta=True)
            if session_id not in self._rerun:
                return

    async def _urgent_run(self, session_id: str) -> None:
        try:
            await self.distiller.run(session_id, force=True, urgent=True, skip_meta=False)
        finally:
            self._urgent_pending.discard(session_id)

    # -- idle work ------------------------------------------------------------------------------------------

    async def idle_work(self, session_id: str, *, run_meta: bool = True) -> IdleReport:
        """The idle steps in order, each isolated: forced gen-0 run (no meta), meta-distillation when its
        threshold holds (``run_meta=False`` defers it, as the watcher does until the cache is cold),
        curation when enough turns passed, consolidation over the entry limit; then ``idle_done_at``.
        Every call is non-urgent."""
        ctx, config = self.context, self.context.config
        report = IdleReport(session_id=session_id)
        try:
            if await ctx.store.count_messages(session_id, undistilled_only=True):
                report.distill = await self.distiller.run(session_id, force=True, skip_meta=True)
        except Exception as exc:  # noqa: BLE001 - each idle step is isolated; recorded below
            self._step_failed(report, "distill", exc)
        if run_meta:
            try:
                report.meta_written = await self.meta.run(session_id)
            except Exception as exc:  # noqa: BLE001
                self._step_failed(report, "meta-distill", exc)
        try:
            state = await ctx.store.load_state(session_id)
            if state is not None and state.turns_since_curation >= config.curate_after_turns:
                report.curation = await self.curator.curate(session_id)
        except Exception as exc:  # noqa: BLE001
            self._step_failed(report, "curate", exc)
        try:
            session = await ctx.store.get_session(session_id)
            if session is not None:
                report.consolidation = await self.curator.consolidate(session.project, session_id=session_id)
        except Exception as exc:  # noqa: BLE001
            self._step_failed(report, "consolidate", exc)
        await self.wait_for_session(session_id)
        await ctx.store.save_state(session_id, idle_done_at=ctx.now())
        return report

    async def wait_for_session(self, session_id: str) -> None:
        """Wait for the session's background jobs (retention checks included), except the calling task."""
        current = asyncio.current_task()
        while pending := {t for t, sid in self._tasks.items() if sid == session_id and t is not current}:
            await asyncio.wait(pending)

    def _step_failed(self, report: IdleReport, step: str, exc: BaseException) -> None:
        report.errors.append(step)
        self.failures.append(
            BackgroundFailure(job=step, session_id=report.session_id, error_type=type(exc).__name__)
        )
        logger.error("idle step %s for session %s failed", step, report.session_id, exc_info=exc)
