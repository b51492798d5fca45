"""The gen-0 observer run (ENGINE.md section 4): crash repair, rounds, segments, calls, the one-transaction
write, digests, retention checks, and meta-distillation unless the run skips it.

Departure **[ours]**: the segments of one round are distilled concurrently, each seeing the same prior
observations (the newest row before the round). With a batching client their calls pool into one Message
Batch instead of waiting one batch round trip per segment. Rows are still written in segment order (each
write waits for the previous one), so ``seq`` follows the conversation.

Serialization: one asyncio lock per session in this process plus the store lease across processes; a run
that cannot take the lease returns at once (another process is distilling the session).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta

from lore_core.assertions import extract_assertions
from lore_core.errors import LLMError
from lore_core.observer import (
    build_observer_prompt,
    check_observer_output,
    expansion_limit,
    r_compression,
    render_digest,
)
from lore_core.outputs import OutputRejected
from lore_core.prompting import section
from lore_core.segments import Segment, segment
from lore_core.store.records import DistillationKind, DistillationRecord
from lore_core.workers.reflector import MetaWorker
from lore_core.workers.runtime import WorkerContext
from lore_core.workers.validator import Validator

__all__ = ["DistillReport", "Distiller"]

logger = logging.getLogger(__name__)


@dataclass(slots=True, kw_only=True)
class DistillReport:
    """What one run did."""

    session_id: str
    skipped: str | None = None
    rounds: int = 0
    observer_rows: int = 0
    digest_rows: int = 0
    failures: int = 0
    stale: int = 0
    meta_rows: int = 0
    scores: list[float] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Result:
    kind: DistillationKind
    observations: str
    route: str | None
    observer_input: str


class Distiller:
    """Runs gen-0 distillation for sessions, one run at a time per session."""

    def __init__(
        self,
        context: WorkerContext,
        *,
        meta: MetaWorker,
        validator: Validator,
        spawn: Callable[[Coroutine[object, object, float], str], object] | None = None,
    ) -> None:
        """``spawn`` runs retention checks in the background (the scheduler's task group); without it they
        are awaited before the run returns (their scores then appear in the report)."""
        self._ctx = context
        self._meta = meta
        self._validator = validator
        self._spawn = spawn
        self._locks: dict[str, asyncio.Lock] = {}
        self._failures: dict[tuple[str, str], int] = {}

    def is_running(self, session_id: str) -> bool:
        """Whether a run holds this session's lock in this process."""
        lock = self._locks.get(session_id)
        return lock is not None and lock.locked()

    async def run(
        self,
        session_id: str,
        *,
        force: bool = False,
        urgent: bool = False,
        skip_meta: bool = True,
        bust_pressure: bool = False,
    ) -> DistillReport:
        """Distill the session's undistilled messages.

        ``force`` distills everything (tiny remainders become digest rows) and repeats rounds to pick up
        failures and arrivals; ``urgent`` passes ``urgent=True`` to every call of the run (meta included);
        ``skip_meta`` leaves meta-distillation out (incremental and idle runs). Never raises for a failed
        worker call: failures are recorded and the messages stay undistilled.
        """
        ctx = self._ctx
        report = DistillReport(session_id=session_id)
        lock = self._locks.setdefault(session_id, asyncio.Lock())
        async with lock:
            now = ctx.now()
            until = now + timedelta(seconds=ctx.config.worker_lease_seconds)
            if not await ctx.store.try_take_lease(session_id, ctx.owner, until, now):
                report.skipped = "lease held by another process"
                return report
            try:
                await ctx.store.reset_orphan_distilled(session_id)
                await self._rounds(session_id, report, force=force, urgent=urgent)
                if not skip_meta:
                    written = await self._meta.run(session_id, urgent=urgent, bust_pressure=bust_pressure)
                    report.meta_rows += int(written)
            finally:
                await ctx.store.release_lease(session_id, ctx.owner)
        return report

    async def _rounds(self, session_id: str, report: DistillReport, *, force: bool, urgent: bool) -> None:
        ctx, config = self._ctx, self._ctx.config
        session = await ctx.store.get_session(session_id)
        if session is None:
            report.skipped = "unknown session"
            return
        model = await ctx.model_for(session_id)
        for round_no in range(config.max_rounds):
            pending = await ctx.store.list_messages(session_id, undistilled_only=True)
            if not pending:
                return
            # Round 0 of a non-forced run waits for min_messages, unless one oversized message must trigger.
            few = len(pending) < config.min_messages
            if (
                round_no == 0
                and not force
                and few
                and sum(r.tokens for r in pending) < config.max_segment_tokens
            ):
                return
            report.rounds += 1
            segments = segment(pending, config=config)
            latest = await ctx.store.latest_distillation(session_id)
            prior = latest.observations if latest is not None else None
            jobs: list[tuple[Segment, asyncio.Task[_Result | None]]] = []
            for seg in segments:
                key = (session_id, seg.records[0].id)
                task: asyncio.Task[_Result | None]
                if seg.tokens < config.min_segment_tokens:
                    if not force:
                        continue
                    task = asyncio.create_task(self._digest(seg, limit=None))
                elif self._failures.get(key, 0) >= config.observer_failures_before_digest:
                    task = asyncio.create_task(self._digest(seg, limit=None))
                else:
                    task = asyncio.create_task(
                        self._observe(seg, prior, project=session.project, urgent=urgent, model=model)
                    )
                jobs.append((seg, task))
            progress = await self._write_in_order(session.project, jobs, report, model=model)
            if not force or not progress:
                return

    async def _observe(
        self, seg: Segment, prior: str | None, *, project: str, urgent: bool, model: str | None
    ) -> _Result | None:
        ctx = self._ctx
        session_id = seg.records[0].session_id
        key = (session_id, seg.records[0].id)
        assertions = extract_assertions(seg.records, config=ctx.config, tz=ctx.tz)
        prompt = build_observer_prompt(
            seg, prior=prior, assertions=assertions, config=ctx.config, tz=ctx.tz, counter=ctx.counter
        )
        observer_input = section(prompt.user, "transcript") or ""
        try:
            async with ctx.run(
                "distill", session_id=session_id, project=project, urgent=urgent, model=model
            ) as run:
                response = await run.call(prompt)
                observations = check_observer_output(
                    response.text, source_tokens=seg.tokens, counter=ctx.counter
                )
        except OutputRejected as exc:
            if exc.reason == "expansion":
                # The guard still closes the segment: a digest capped at the expansion limit.
                return await self._digest(seg, limit=expansion_limit(seg.tokens))
            self._failures[key] = self._failures.get(key, 0) + 1
            return None
        except LLMError:
            self._failures[key] = self._failures.get(key, 0) + 1
            return None
        self._failures.pop(key, None)
        return _Result("observer", observations, response.route, observer_input)

    async def _digest(self, seg: Segment, *, limit: int | None) -> _Result | None:
        ctx = self._ctx
        body = render_digest(seg.records, tz=ctx.tz, limit_tokens=limit, counter=ctx.counter)
        return _Result("digest", body, None, body)

    async def _write_in_order(
        self,
        project: str,
        jobs: list[tuple[Segment, asyncio.Task[_Result | None]]],
        report: DistillReport,
        *,
        model: str | None,
    ) -> bool:
        ctx = self._ctx
        progress = False
        checks: list[Coroutine[object, object, float]] = []
        for seg, task in jobs:
            result = await task
            if result is None:
                report.failures += 1
                continue
            tokens = ctx.counter(result.observations)
            row = DistillationRecord(
                id=str(uuid.uuid4()),
                session_id=seg.records[0].session_id,
                project=project,
                generation=0,
                kind=result.kind,
                observations=result.observations,
                source_ids=seg.ids,
                source_tokens=seg.tokens,
                token_count=tokens,
                r_compression=r_compression(tokens, seg.tokens),
                created_at=ctx.now(),
                route=result.route,  # type: ignore[arg-type]
            )
            stored = await ctx.store.insert_distillation_and_mark(row)
            if stored is None:
                report.stale += 1
                logger.info("distillation of %d messages was stale: dropped", len(seg.records))
                continue
            progress = True
            ctx.bump(stored.session_id)
            if result.kind == "digest":
                report.digest_rows += 1
            else:
                report.observer_rows += 1
            user_texts = [r.text for r in seg.records if r.kind == "human"]
            assertions = [a.text for a in extract_assertions(seg.records, config=ctx.config, tz=ctx.tz)]
            checks.append(
                self._validator.check(
                    stored,
                    observer_input=result.observer_input,
                    user_texts=user_texts,
                    assertions=assertions,
                    model=model,
                )
            )
        if self._spawn is not None:
            for check in checks:
                self._spawn(check, jobs[0][0].records[0].session_id)
        elif checks:
            report.scores.extend(await asyncio.gather(*checks))
        return progress
