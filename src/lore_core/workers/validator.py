"""Retention check of every gen-0 row, and the one ``validate`` repair call (ENGINE.md section 7b).

The score is computed from the observer input actually sent (artefacts cut by truncation are not expected
back) and stored on the row. Below the threshold, or with a pinned assertion missing, one non-urgent
``validate`` call asks for the missing facts; bullets that carry none of them are dropped, the rest are
appended and the row's ``revision`` goes up (compare-and-set, so a concurrent change wins and ours is stale).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from lore_core.errors import LLMError
from lore_core.outputs import OutputRejected
from lore_core.retention import (
    build_validate_prompt,
    extract_artifacts,
    merge_validation,
    needs_validation,
    score_retention,
)
from lore_core.store.records import DistillationRecord
from lore_core.workers.runtime import WorkerContext

__all__ = ["Validator"]

logger = logging.getLogger(__name__)


class Validator:
    """Scores gen-0 rows and repairs the ones that lost too much."""

    def __init__(self, context: WorkerContext) -> None:
        self._ctx = context

    async def check(
        self,
        row: DistillationRecord,
        *,
        observer_input: str,
        user_texts: Sequence[str],
        assertions: Sequence[str],
        model: str | None,
    ) -> float:
        """Score ``row``, store the score, and repair it once when it is below the threshold.

        Returns the final score. A failed repair call is recorded and leaves the row as it was.
        """
        ctx = self._ctx
        artifacts = extract_artifacts(
            observer_input, user_texts=user_texts, assertions=assertions, config=ctx.config
        )
        retention = score_retention(artifacts, row.observations)
        await ctx.store.record_retention(row.id, retention.score)
        if not (ctx.config.validate_enabled and needs_validation(retention, ctx.config)):
            return retention.score
        prompt = build_validate_prompt(
            retention.missing, transcript=observer_input, observations=row.observations, config=ctx.config
        )
        try:
            async with ctx.run(
                "validate", session_id=row.session_id, project=row.project, urgent=False, model=model
            ) as run:
                response = await run.call(prompt)
                merged = merge_validation(row.observations, response.text, retention.missing)
                if merged is None:
                    raise OutputRejected("no_new_facts")
                score = score_retention(artifacts, merged).score
                revised = await ctx.store.revise_distillation(
                    row.id,
                    observations=merged,
                    token_count=ctx.counter(merged),
                    retention_score=score,
                    expected_revision=row.revision,
                )
                if not revised:
                    run.stale(f"distillation {row.id} changed meanwhile")
                    return retention.score
                return score
        except (LLMError, OutputRejected):
            logger.info("validate call for distillation %s did not improve it", row.id)
            return retention.score
