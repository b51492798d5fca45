"""Curation and consolidation of long-term knowledge (ENGINE.md section 6).

The curator reads what the session added since its watermark (the messages rendered as observer input when
there are at least 3 and they fit ``curator_input_cap_tokens``, else the distillations made since, newest
first within the cap) plus the visible entries, and answers with create / update / delete ops. Each op is
validated and applied on its own: a bad op is rejected with its reason and the others still apply.
Consolidation asks for update/delete ops only when a project's own entries exceed the limit; global entries
are never consolidated. Neither call is ever urgent. :meth:`Curator.replay` applies a late ``curate`` answer
to whichever of the two calls the stored state still asks exactly.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from lore_core.curation import (
    CreateOp,
    DeleteOp,
    RejectedOp,
    UpdateOp,
    build_consolidation_prompt,
    build_curation_prompt,
    dedup_target,
    parse_ops,
    validate_ops,
)
from lore_core.errors import LLMError
from lore_core.observer import render_observer_input
from lore_core.outputs import OutputRejected
from lore_core.prompting import Prompt
from lore_core.store.records import KnowledgeRecord
from lore_core.workers.runtime import Replay, Replayed, WorkerContext

__all__ = ["CurationReport", "Curator"]

logger = logging.getLogger(__name__)

# Below this many new messages the curator reads distillations instead (too little raw text to judge).
MIN_RAW_MESSAGES = 3


@dataclass(slots=True, kw_only=True)
class CurationReport:
    """What one curation or consolidation did."""

    skipped: str | None = None
    created: int = 0
    updated: int = 0
    deleted: int = 0
    rejected: list[RejectedOp] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Job:
    """One curation or consolidation call, decided: its project, the entries it shows, its prompt."""

    project: str
    entries: list[KnowledgeRecord]
    prompt: Prompt


class Curator:
    """Keeps each project's knowledge entries; one curation at a time per session."""

    def __init__(self, context: WorkerContext) -> None:
        self._ctx = context
        self._active: set[str] = set()
        self._consolidating: set[str] = set()

    def is_active(self, session_id: str) -> bool:
        """Whether a curation of this session is running in this process."""
        return session_id in self._active

    async def curate(self, session_id: str) -> CurationReport:
        """Curate what the session added since its watermark; skip (never queue) when one is running."""
        ctx = self._ctx
        if not (ctx.config.knowledge_enabled and ctx.config.curator_enabled):
            return CurationReport(skipped="disabled")
        if session_id in self._active:
            return CurationReport(skipped="busy")
        self._active.add(session_id)
        try:
            return await self._curate(session_id)
        finally:
            self._active.discard(session_id)

    async def replay(self, session_id: str, replay: Replay) -> Replayed:
        """Apply a late ``curate`` answer: to the session's curation when the stored state still asks exactly
        that prompt, else to the consolidation of its project when that one does; else ``stale``. Does not
        wait for a curation or consolidation running in this process (``busy``). Never raises for a failed
        or rejected answer.

        Example: ``(await curator.replay("s1", replay)).applied``.
        """
        ctx = self._ctx
        if not (ctx.config.knowledge_enabled and ctx.config.curator_enabled):
            return Replayed(False, "disabled: curation is off")
        if session_id in self._active:
            return Replayed(False, "busy: a curation of the session is running")
        self._active.add(session_id)
        try:
            job = await self._curation_job(session_id)
            if isinstance(job, _Job) and replay.wants(job.prompt):
                return _replayed("curation", await self._curate_with(session_id, job, via=replay.context))
        finally:
            self._active.discard(session_id)
        session = await ctx.store.get_session(session_id)
        if session is None:
            return Replayed(False, "unknown session")
        if session.project in self._consolidating:
            return Replayed(False, "busy: a consolidation of the project is running")
        job = await self._consolidation_job(session.project)
        if isinstance(job, _Job) and replay.wants(job.prompt):
            report = await self._consolidate_with(job, session_id=session_id, via=replay.context)
            return _replayed("consolidation", report)
        return Replayed(False, "stale: neither curation nor consolidation asks this prompt now")

    async def _curate(self, session_id: str) -> CurationReport:
        job = await self._curation_job(session_id)
        if not isinstance(job, _Job):
            return job
        return await self._curate_with(session_id, job, via=self._ctx)

    async def _curation_job(self, session_id: str) -> _Job | CurationReport:
        """The curation call the stored state asks for now, or the report of why there is none."""
        ctx = self._ctx
        session = await ctx.store.get_session(session_id)
        state = await ctx.store.load_state(session_id)
        if session is None or state is None:
            return CurationReport(skipped="unknown session")
        inputs = await self._inputs(session_id, state.last_curated_at)
        if not inputs:
            return CurationReport(skipped="nothing new")
        visible = await ctx.store.list_knowledge(
            session.project, include_global=True, min_confidence=ctx.config.knowledge_min_confidence
        )
        return _Job(session.project, visible, build_curation_prompt(inputs, visible, config=ctx.config))

    async def _curate_with(self, session_id: str, job: _Job, *, via: WorkerContext) -> CurationReport:
        """Make the curation call through ``via``, apply its ops and move the watermark."""
        ctx = self._ctx
        now = ctx.now()
        report = CurationReport()
        try:
            async with via.run(
                "curate",
                session_id=session_id,
                project=job.project,
                urgent=False,
                model=await ctx.model_for(session_id),
            ) as run:
                response = await run.call(job.prompt)
                ops, rejected = validate_ops(
                    parse_ops(response.text), visible=job.entries, project=job.project, config=ctx.config
                )
        except (LLMError, OutputRejected):
            return CurationReport(skipped="call failed")
        report.rejected = rejected
        await self._apply(
            ops, job.entries, project=job.project, session_id=session_id, now=now, report=report
        )
        await ctx.store.save_state(session_id, last_curated_at=now, turns_since_curation=0)
        for item in rejected:
            logger.info("curation op %d rejected: %s", item.index, item.reason)
        return report

    async def _inputs(self, session_id: str, since: datetime | None) -> str:
        ctx, config = self._ctx, self._ctx.config
        floor = since if since is not None else datetime.min.replace(tzinfo=ctx.now().tzinfo)
        messages = await ctx.store.messages_after(session_id, floor)
        if len(messages) >= MIN_RAW_MESSAGES:
            rendered = render_observer_input(messages, config=config, tz=ctx.tz, counter=ctx.counter)
            if ctx.counter(rendered) <= config.curator_input_cap_tokens:
                return rendered
        rows = await ctx.store.distillations_after(session_id, floor, include_archived=True)
        picked: list[str] = []
        budget = config.curator_input_cap_tokens
        for row in sorted(rows, key=lambda r: r.seq, reverse=True):  # newest first, within the cap
            if row.token_count > budget:
                break
            picked.append(row.observations)
            budget -= row.token_count
        return "\n\n".join(reversed(picked))

    async def consolidate(self, project: str, *, session_id: str) -> CurationReport:
        """Merge a project's own entries down to ``consolidate_max_entries`` when they exceed it.

        ``session_id`` is the session whose idle work asked for it: the call carries it (credentials and
        request logs are per session), and the run is recorded under it.
        """
        config = self._ctx.config
        if not (config.knowledge_enabled and config.curator_enabled):
            return CurationReport(skipped="disabled")
        if project in self._consolidating:
            return CurationReport(skipped="busy")
        job = await self._consolidation_job(project)
        if not isinstance(job, _Job):
            return job
        return await self._consolidate_with(job, session_id=session_id, via=self._ctx)

    async def _consolidation_job(self, project: str) -> _Job | CurationReport:
        """The consolidation call the project's entries ask for now, or the report of why there is none."""
        ctx, config = self._ctx, self._ctx.config
        entries = [
            entry
            for entry in await ctx.store.list_knowledge(
                project, include_global=False, min_confidence=config.knowledge_min_confidence
            )
            if entry.project == project
        ]
        if len(entries) <= config.consolidate_max_entries:
            return CurationReport(skipped="under the limit")
        prompt = build_consolidation_prompt(entries, target=config.consolidate_max_entries, config=config)
        return _Job(project, entries, prompt)

    async def _consolidate_with(self, job: _Job, *, session_id: str, via: WorkerContext) -> CurationReport:
        """Make the consolidation call through ``via`` and apply its update/delete ops."""
        ctx, project = self._ctx, job.project
        self._consolidating.add(project)
        report = CurationReport()
        try:
            async with via.run(
                "curate",
                session_id=session_id,
                project=project,
                urgent=False,
                model=await ctx.model_for(session_id),
            ) as run:
                response = await run.call(job.prompt)
                ops, rejected = validate_ops(
                    parse_ops(response.text),
                    visible=job.entries,
                    project=project,
                    config=ctx.config,
                    allow_create=False,
                )
            report.rejected = rejected
            await self._apply(
                ops, job.entries, project=project, session_id=session_id, now=ctx.now(), report=report
            )
        except (LLMError, OutputRejected):
            report.skipped = "call failed"
        finally:
            self._consolidating.discard(project)
        return report

    async def _apply(
        self,
        ops: Sequence[CreateOp | UpdateOp | DeleteOp],
        visible: Sequence[KnowledgeRecord],
        *,
        project: str,
        session_id: str | None,
        now: datetime,
        report: CurationReport,
    ) -> None:
        store, config = self._ctx.store, self._ctx.config
        entries = {entry.id: entry for entry in visible}
        for op in ops:
            if isinstance(op, CreateOp):
                target = dedup_target(op, list(entries.values()), project=project, config=config)
                if target is not None and target in entries:
                    updated = replace(
                        entries[target], content=op.content, confidence=op.confidence, updated_at=now
                    )
                    await store.upsert_knowledge(updated)
                    entries[target] = updated
                    report.updated += 1
                    continue
                entry = KnowledgeRecord(
                    id=str(uuid.uuid4()),
                    project=None if op.scope == "global" else project,
                    category=op.category,
                    title=op.title,
                    content=op.content,
                    confidence=op.confidence,
                    created_at=now,
                    updated_at=now,
                    source_session=session_id,
                )
                await store.upsert_knowledge(entry)
                entries[entry.id] = entry
                report.created += 1
            elif isinstance(op, UpdateOp):
                current = entries.get(op.id)
                if current is None:
                    continue
                updated = replace(
                    current,
                    content=op.content if op.content is not None else current.content,
                    confidence=op.confidence if op.confidence is not None else current.confidence,
                    updated_at=now,
                )
                await store.upsert_knowledge(updated)
                entries[op.id] = updated
                report.updated += 1
            elif await store.delete_knowledge(op.id):
                entries.pop(op.id, None)
                report.deleted += 1


def _replayed(step: str, report: CurationReport) -> Replayed:
    if report.skipped is not None:
        return Replayed(False, f"rejected: the {step} answer was not usable ({report.skipped})")
    counts = f"{report.created} created, {report.updated} updated, {report.deleted} deleted"
    return Replayed(True, f"written: {step} applied ({counts}, {len(report.rejected)} ops rejected)")
