"""Meta-distillation (ENGINE.md section 5): fold older gen-0 rows into one anchored summary.

Runs only from idle work and urgent runs (meta rewrites the prefix, so incremental runs never call it). The
write is one transaction: insert the meta row and archive the merged gen-0 rows **and the superseded meta
row**, so a session keeps exactly one current meta row.
"""

from __future__ import annotations

import logging
import uuid

from lore_core.errors import LLMError
from lore_core.outputs import OutputRejected
from lore_core.reflector import (
    build_meta_prompt,
    check_meta_output,
    meta_archive_ids,
    meta_input_tokens,
    meta_source_ids,
    next_generation,
    plan_meta,
)
from lore_core.store.records import DistillationRecord
from lore_core.workers.runtime import WorkerContext

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
        input_tokens = meta_input_tokens(plan, counter=ctx.counter)
        model = await ctx.model_for(session_id)
        try:
            async with ctx.run(
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
                    return False
                ctx.bump(session_id)
                return True
        except (LLMError, OutputRejected):
            return False
