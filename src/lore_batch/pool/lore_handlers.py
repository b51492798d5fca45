"""Result handlers that land the engine's late worker answers in its store (BATCH.md 6.2).

A durable pool delivers an answer whose caller is gone (a crash, a restart, a cancelled run) to the handler of
its worker label. :func:`lore_handlers` maps the engine's four labels to ``Lore.apply_answer``, which re-runs
the worker step with that answer, so a distillation, meta-distillation, curation or validation paid for
before a crash is written as if its run had received it.
"""

from __future__ import annotations

import logging
from typing import Protocol

from lore_batch.errors import HandlerRetry
from lore_core.llm import LLMResponse
from lore_core.workers.replay import REPLAYABLE_WORKERS, AnswerOutcome

from .records import HandledResult, ResultHandler

__all__ = ["BUSY_RETRY", "AnswerSink", "lore_handlers"]

logger = logging.getLogger(__name__)

BUSY_RETRY = 60.0
"""Seconds before a late answer whose step was busy is offered again (``HandlerRetry``)."""


class AnswerSink(Protocol):
    """What :func:`lore_handlers` needs: ``lore_core.Lore.apply_answer``."""

    async def apply_answer(
        self, *, worker: str, session_id: str, system: str, user: str, response: LLMResponse
    ) -> AnswerOutcome: ...


def lore_handlers(lore: AnswerSink) -> dict[str, ResultHandler]:
    """A handler per engine worker label (``distill``, ``meta-distill``, ``curate``, ``validate``).

    Each applies a succeeded answer through ``lore.apply_answer`` and logs what became of it; a failed call
    (an errored result, a failed fallback) or a call without a session is logged and dropped: the engine's
    next run asks again. When the step is busy (running here, or its session lease held elsewhere, possibly by
    a process that died holding it), it raises :class:`~lore_batch.errors.HandlerRetry` so the pool offers the
    answer again every :data:`BUSY_RETRY` seconds. A store failure raises, so the pool retries the handler.

    Example::

        for worker, handler in lore_handlers(lore).items():
            llm.register_handler(worker, handler)
    """

    async def handle(result: HandledResult) -> None:
        if result.response is None or result.session_id is None or result.worker is None:
            logger.info(
                "late %s result for item %s not applied: %s",
                result.worker,
                result.item_id,
                type(result.error).__name__ if result.error is not None else "no session",
            )
            return
        outcome = await lore.apply_answer(
            worker=result.worker,
            session_id=result.session_id,
            system=result.call.system,
            user=result.call.user,
            response=result.response,
        )
        if not outcome.applied and outcome.detail.startswith("busy"):
            # The same step holds the session (a lease a dead process may still hold for its full term):
            # try again later rather than drop an answer that was paid for.
            raise HandlerRetry(BUSY_RETRY, reason=outcome.detail)
        logger.info(
            "late %s answer for session %s: %s",
            result.worker,
            result.session_id,
            "applied" if outcome.applied else outcome.detail,
        )

    return dict.fromkeys(REPLAYABLE_WORKERS, handle)
