"""Retention check of every gen-0 row, and the one ``validate`` repair call (ENGINE.md section 7b).

The score is computed from the observer input actually sent (artefacts cut by truncation are not expected
back) and stored on the row. Below the threshold, or with a pinned assertion missing, one non-urgent
``validate`` call asks for the missing facts; bullets that carry none of them are dropped, the rest are
appended and the row's ``revision`` goes up (compare-and-set, so a concurrent change wins and ours is stale).
:meth:`Validator.replay` applies a late ``validate`` answer to the row whose check produced its prompt.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from lore_core.artifacts import Artifact
from lore_core.errors import LLMError
from lore_core.outputs import OutputRejected
from lore_core.prompting import Prompt
from lore_core.retention import (
    Retention,
    build_validate_prompt,
    extract_artifacts,
    merge_validation,
    needs_validation,
    score_retention,
)
from lore_core.store.records import DistillationRecord
from lore_core.workers.runtime import Replay, Replayed, WorkerContext

__all__ = ["Validator"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Assessment:
    """A row's retention, and the repair call it needs (None when it needs none or validation is off)."""

    artifacts: list[Artifact]
    retention: Retention
    prompt: Prompt | None


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
        assessed = self._assess(row, observer_input, user_texts, assertions)
        await self._ctx.store.record_retention(row.id, assessed.retention.score)
        if assessed.prompt is None:
            return assessed.retention.score
        score, _ = await self._repair(row, assessed, assessed.prompt, model=model, via=self._ctx)
        return score

    async def replay(
        self,
        row: DistillationRecord,
        replay: Replay,
        *,
        observer_input: str,
        user_texts: Sequence[str],
        assertions: Sequence[str],
    ) -> Replayed | None:
        """Apply a late ``validate`` answer to ``row`` when ``row``'s check asks exactly that prompt.

        Returns None when it does not (another row's answer, or ``row`` changed since), else what the
        repair did, as :meth:`check` would have done it. Never raises for a rejected answer.

        Example: ``await validator.replay(row, replay, observer_input=text, user_texts=[], assertions=[])``.
        """
        assessed = self._assess(row, observer_input, user_texts, assertions)
        if assessed.prompt is None or not replay.wants(assessed.prompt):
            return None
        await self._ctx.store.record_retention(row.id, assessed.retention.score)
        model = await self._ctx.model_for(row.session_id)
        _, outcome = await self._repair(row, assessed, assessed.prompt, model=model, via=replay.context)
        return outcome

    def _assess(
        self,
        row: DistillationRecord,
        observer_input: str,
        user_texts: Sequence[str],
        assertions: Sequence[str],
    ) -> _Assessment:
        config = self._ctx.config
        artifacts = extract_artifacts(
            observer_input, user_texts=user_texts, assertions=assertions, config=config
        )
        retention = score_retention(artifacts, row.observations)
        prompt = None
        if config.validate_enabled and needs_validation(retention, config):
            prompt = build_validate_prompt(
                retention.missing, transcript=observer_input, observations=row.observations, config=config
            )
        return _Assessment(artifacts, retention, prompt)

    async def _repair(
        self,
        row: DistillationRecord,
        assessed: _Assessment,
        prompt: Prompt,
        *,
        model: str | None,
        via: WorkerContext,
    ) -> tuple[float, Replayed]:
        """The ``validate`` call through ``via`` and the compare-and-set revision: (final score, outcome)."""
        ctx, missing = self._ctx, assessed.retention.missing
        try:
            async with via.run(
                "validate", session_id=row.session_id, project=row.project, urgent=False, model=model
            ) as run:
                response = await run.call(prompt)
                merged = merge_validation(row.observations, response.text, missing)
                if merged is None:
                    raise OutputRejected("no_new_facts")
                score = score_retention(assessed.artifacts, merged).score
                revised = await ctx.store.revise_distillation(
                    row.id,
                    observations=merged,
                    token_count=ctx.counter(merged),
                    retention_score=score,
                    expected_revision=row.revision,
                )
                if not revised:
                    run.stale(f"distillation {row.id} changed meanwhile")
                    return assessed.retention.score, Replayed(False, "stale: the row changed meanwhile")
                return score, Replayed(True, f"written: revision {row.revision + 1} of the row")
        except (LLMError, OutputRejected) as exc:
            logger.info("validate call for distillation %s did not improve it", row.id)
            code = (
                f"rejected: {exc.reason}"
                if isinstance(exc, OutputRejected)
                else f"failed: {type(exc).__name__}"
            )
            return assessed.retention.score, Replayed(False, code)
