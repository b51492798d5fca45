"""Meta-distillation (ENGINE.md section 5): fold older gen-0 rows into one anchored summary.

Runs only from idle work and urgent runs (meta rewrites the prefix, so incremental runs never call it). The
write is one transaction: insert the meta row and archive the merged gen-0 rows **and the superseded meta
row**, so a session keeps exactly one current meta row. :meth:`MetaWorker.replay` applies a late answer to the
plan whose prompt it answers (the current prior meta with some prefix of the live gen-0 rows).
"""

from __future__ import annotations

import logging
import uuid

from lore_core.errors import LLMError
from lore_core.outputs import OutputRejected
from lore_core.prompting import Prompt
from lore_core.reflector import (
    MetaPlan,
    build_meta_prompt,
    check_meta_output,
    meta_archive_ids,
    meta_candidates,
    meta_input_tokens,
    meta_source_ids,
    next_generation,
    plan_meta,
)
from lore_core.store.records import DistillationRecord, SessionRecord
from lore_core.workers.runtime import Replay, Replayed, WorkerContext

__all__ = ["MetaWorker"]

logger = logging.getLogger(__name__)


class MetaWorker:
    """Checks the meta threshold and runs the reflector."""

    def __init__(self, context: WorkerContext) -> None:
        self._ctx = context

    async def run(self, session_id: str, *, urgent: bool = False, bust_pressure: bool = False) -> bool:
        """Run meta-distillation if the threshold holds; return whether a meta row was written.

        Never raises for a failed call or a rejected output: nothing is archived, the next trigger retries.
        """
        ctx = self._ctx
        session = await ctx.store.get_session(session_id)
        if session is None:
            return False
        rows = await ctx.store.list_distillations(session_id)
        plan = plan_meta(rows, config=ctx.config, bust_pressure=bust_pressure)
        if plan is None:
            return False
        prompt = build_meta_prompt(plan, counter=ctx.counter, config=ctx.config)
        return (await self._fold(session, plan, prompt, urgent=urgent, via=ctx)).applied

    async def replay(self, session_id: str, replay: Replay) -> Replayed:
        """Apply a late meta answer to the plan whose prompt it answers, as :meth:`run` would have.

        The plan is the current prior meta with the oldest k live gen-0 rows merged, for the k whose prompt
        is the answer's (newer rows may have arrived since). ``stale`` when none is; the archive's
        compare-and-set still guards the write. Never raises for a rejected answer.

        Example: ``(await meta.replay("s1", replay)).applied``.
        """
        ctx = self._ctx
        session = await ctx.store.get_session(session_id)
        if session is None:
            return Replayed(False, "unknown session")
        for plan in meta_candidates(await ctx.store.list_distillations(session_id)):
            if plan.merge[-1].observations.strip() not in replay.user:
                break  # every merged row is in the prompt: a longer merge cannot match either
            prompt = build_meta_prompt(plan, counter=ctx.counter, config=ctx.config)
            if replay.wants(prompt):
                return await self._fold(session, plan, prompt, urgent=False, via=replay.context)
        return Replayed(False, "stale: no plan over the live rows gives this prompt")

    async def _fold(
        self, session: SessionRecord, plan: MetaPlan, prompt: Prompt, *, urgent: bool, via: WorkerContext
    ) -> Replayed:
        """Make the call through ``via``, check it, write the meta row and archive what it folds."""
        ctx, session_id = self._ctx, session.session_id
        input_tokens = meta_input_tokens(plan, counter=ctx.counter)
        model = await ctx.model_for(session_id)
        try:
            async with via.run(
                "meta-distill", session_id=session_id, project=session.project, urgent=urgent, model=model
            ) as run:
                response = await run.call(prompt)
                observations, warnings = check_meta_output(
                    response.text, input_tokens=input_tokens, counter=ctx.counter
                )
                for warning in warnings:
                    logger.info("meta-distill for session %s: %s", session_id, warning)
                tokens = ctx.counter(observations)
                sources = meta_source_ids(plan)
                source_tokens = sum(row.source_tokens for row in plan.merge) + (
                    plan.prior.source_tokens if plan.prior is not None else 0
                )
                meta = DistillationRecord(
                    id=str(uuid.uuid4()),
                    session_id=session_id,
                    project=session.project,
                    generation=next_generation(plan),
                    kind="reflector",
                    observations=observations,
                    source_ids=sources,
                    source_tokens=source_tokens,
                    token_count=tokens,
                    r_compression=tokens / max(1.0, source_tokens**0.5),
                    created_at=ctx.now(),
                    supersedes=plan.prior.id if plan.prior is not None else None,
                    route=response.route,
                )
                stored = await ctx.store.insert_meta_and_archive(meta, meta_archive_ids(plan))
                if stored is None:
                    run.stale("rows to archive changed meanwhile")
                    return Replayed(False, "stale: the rows to archive changed meanwhile")
                ctx.bump(session_id)
                return Replayed(True, f"written: meta row folding {len(plan.merge)} rows")
        except OutputRejected as exc:
            return Replayed(False, f"rejected: {exc.reason}")
        except LLMError as exc:
            return Replayed(False, f"failed: {type(exc).__name__}")
