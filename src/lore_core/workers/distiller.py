"""The gen-0 observer run (ENGINE.md section 4): crash repair, rounds, segments, calls, the one-transaction
write, digests, retention checks, and meta-distillation unless the run skips it.

Departure **[ours]**: the segments of one round are distilled concurrently, each seeing the same prior
observations (the newest row before the round). With a batching client their calls pool into one Message
Batch instead of waiting one batch round trip per segment. Rows are still written in segment order (each
write waits for the previous one), so ``seq`` follows the conversation.

Serialization: one asyncio lock per session in this process plus the store lease across processes; a run
that cannot take the lease returns at once (another process is distilling the session).

:meth:`Distiller.replay` applies an observer answer that arrived after its run was gone: it finds the run of
undistilled units that the prompt's transcript renders, takes the prior observations from the prompt (earlier
segments of the same round may have been written since) and runs that one segment's step.
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
    render_observer_input,
)
from lore_core.outputs import OutputRejected
from lore_core.prompting import Prompt, section
from lore_core.segments import Segment, segment, units_of
from lore_core.store.records import DistillationKind, DistillationRecord, MessageRecord
from lore_core.workers.reflector import MetaWorker
from lore_core.workers.runtime import Replay, Replayed, WorkerContext
from lore_core.workers.validator import Validator

__all__ = ["DistillReport", "Distiller", "observer_call", "retention_inputs"]

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


def observer_call(seg: Segment, *, prior: str | None, context: WorkerContext) -> tuple[Prompt, str]:
    """The observer prompt for ``seg`` after ``prior`` observations, and the observer input it carries (the
    rendered transcript, which the retention check reads). Pure given the context's config, zone and counter.

    Raises:
        ConfigError: the segment has no records.

    Example: ``prompt, observer_input = observer_call(seg, prior=None, context=ctx)``.
    """
    assertions = extract_assertions(seg.records, config=context.config, tz=context.tz)
    prompt = build_observer_prompt(
        seg, prior=prior, assertions=assertions, config=context.config, tz=context.tz, counter=context.counter
    )
    return prompt, section(prompt.user, "transcript") or ""


def retention_inputs(seg: Segment, *, context: WorkerContext) -> tuple[list[str], list[str]]:
    """What the retention check of ``seg``'s row needs besides the observer input: the user texts and the
    pinned assertions. Pure; never raises.

    Example: ``user_texts, assertions = retention_inputs(seg, context=ctx)``.
    """
    user_texts = [r.text for r in seg.records if r.kind == "human"]
    assertions = [a.text for a in extract_assertions(seg.records, config=context.config, tz=context.tz)]
    return user_texts, assertions


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

    async def replay(self, session_id: str, replay: Replay) -> Replayed:
        """Apply a late observer answer: run the one segment step whose prompt it answers, as a run would.

        The segment is the run of undistilled units whose rendering is the prompt's transcript; the prior
        observations are the prompt's own (they were the newest row when its round began). The row is written
        like any other (stale when its messages were distilled meanwhile) and its retention check follows
        (a ``validate`` call, if one is due, goes to the engine's client as usual). Does not wait: a run of
        the session in this process, or another process's lease, gives ``busy``. Never raises for a
        failed or rejected answer (recorded in ``worker_runs``).

        Example: ``(await distiller.replay("s1", replay)).applied``.
        """
        ctx = self._ctx
        lock = self._locks.setdefault(session_id, asyncio.Lock())
        if lock.locked():
            return Replayed(False, "busy: a distillation of the session is running")
        async with lock:
            now = ctx.now()
            until = now + timedelta(seconds=ctx.config.worker_lease_seconds)
            if not await ctx.store.try_take_lease(session_id, ctx.owner, until, now):
                return Replayed(False, "busy: another process holds the session's lease")
            try:
                await ctx.store.reset_orphan_distilled(session_id)
                return await self._replay_segment(session_id, replay)
            finally:
                await ctx.store.release_lease(session_id, ctx.owner)

    async def _replay_segment(self, session_id: str, replay: Replay) -> Replayed:
        ctx = self._ctx
        session = await ctx.store.get_session(session_id)
        if session is None:
            return Replayed(False, "unknown session")
        prior = section(replay.user, "prior_observations")
        pending = await ctx.store.list_messages(session_id, undistilled_only=True)
        for seg in _runs_rendering(pending, section(replay.user, "transcript"), ctx):
            if not replay.wants(observer_call(seg, prior=prior, context=ctx)[0]):
                continue
            model = await ctx.model_for(session_id)
            report = DistillReport(session_id=session_id)
            task = asyncio.create_task(
                self._observe(
                    seg, prior, project=session.project, urgent=False, model=model, via=replay.context
                )
            )
            await self._write_in_order(session.project, [(seg, task)], report, model=model)
            if report.observer_rows or report.digest_rows:
                kind = "observer" if report.observer_rows else "digest (expansion guard)"
                return Replayed(True, f"written: {kind} row over {len(seg.records)} messages")
            if report.stale:
                return Replayed(False, "stale: the messages were distilled meanwhile")
            return Replayed(False, "rejected: the answer failed the observer checks")
        return Replayed(False, "stale: no undistilled messages render this prompt")

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
        self,
        seg: Segment,
        prior: str | None,
        *,
        project: str,
        urgent: bool,
        model: str | None,
        via: WorkerContext | None = None,
    ) -> _Result | None:
        """One observer call for ``seg``; ``via`` is the context the call goes through (default: ours)."""
        ctx = self._ctx
        session_id = seg.records[0].session_id
        key = (session_id, seg.records[0].id)
        prompt, observer_input = observer_call(seg, prior=prior, context=ctx)
        try:
            async with (via or ctx).run(
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
            user_texts, assertions = retention_inputs(seg, context=ctx)
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


def _runs_rendering(
    pending: list[MessageRecord], transcript: str | None, ctx: WorkerContext
) -> list[Segment]:
    """The runs of whole units of ``pending`` whose observer input is ``transcript`` (as the prompt carries
    it). A run starts with a unit whose own rendering opens the transcript and ends with one whose rendering
    closes it, so only those pairs are rendered in full."""
    if not transcript:
        return []
    units = units_of(pending)

    def rendered(records: list[MessageRecord]) -> str:
        text = render_observer_input(records, config=ctx.config, tz=ctx.tz, counter=ctx.counter)
        return text.replace("</transcript>", "</ transcript>").strip("\n")

    alone = [rendered(list(unit)) for unit in units]
    starts = [i for i, text in enumerate(alone) if transcript.startswith(text)]
    ends = [j for j, text in enumerate(alone) if transcript.endswith(text)]
    runs: list[Segment] = []
    for i in starts:
        for j in ends:
            if j < i:
                continue
            records = [record for unit in units[i : j + 1] for record in unit]
            if rendered(records) == transcript:
                runs.append(Segment(records=tuple(records), tokens=sum(r.tokens for r in records)))
    return runs
