"""The sync fallback executor (BATCH.md 5.5).

A fallback answers synchronously a call meant for a batch. Each runs in its own task, so it never delays a
create or a poll, and replays the stored call exactly through ``inner.prompt(..., urgent=False)``: system,
user, model, max_tokens, temperature, session_id and worker. Synchronous does not mean urgent. At most
``limit`` (2 *default*) run at once per engine. They wait while the shared background
:class:`~lore_batch.limits.CircuitBreaker` is open and are never dropped: a 429 trips it (escalating) and the
call is sent again once it closes, up to :data:`RATE_LIMIT_ATTEMPTS` sends in all; only then does the caller
get the :class:`~lore_core.errors.RateLimitedError`. Urgent calls never pass through here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import TYPE_CHECKING, Final

from lore_batch.limits import CircuitBreaker, ConcurrencyLimit
from lore_core.errors import RateLimitedError
from lore_core.llm import LLMClient, LLMResponse

from .items import Item

if TYPE_CHECKING:
    from .core import Engine

__all__ = ["RATE_LIMIT_ATTEMPTS", "FallbackExecutor"]

logger = logging.getLogger(__name__)

# Sends of one fallback that a 429 may refuse before its caller gets the RateLimitedError.
RATE_LIMIT_ATTEMPTS: Final = 3


class FallbackExecutor:
    """Runs fallbacks through ``inner``, ``limit`` at a time, behind ``breaker``."""

    def __init__(self, engine: Engine, inner: LLMClient, *, limit: int, breaker: CircuitBreaker) -> None:
        self.engine = engine
        self.inner = inner
        self.breaker = breaker
        self.limit = ConcurrencyLimit(limit)
        self.tasks: set[asyncio.Task[None]] = set()
        self.peak = 0

    def submit(self, item: Item) -> None:
        """Start the fallback of ``item`` in its own task."""
        task = self.engine.spawn(self._run(item), name="lore_batch.fallback")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def replay(self, item: Item) -> LLMResponse:
        """Send ``item``'s original call through ``inner`` (non-urgent); returns its answer as route fallback."""
        call = item.call
        response = await self.inner.prompt(
            call.system,
            call.user,
            model=call.model,
            max_tokens=call.max_tokens,
            temperature=call.temperature,
            urgent=False,
            session_id=call.session_id,
            worker=call.worker,
        )
        return dataclasses.replace(response, route="fallback")

    async def _run(self, item: Item) -> None:
        engine = self.engine
        async with self.limit.slot():
            self.peak = max(self.peak, self.limit.active)
            for attempt in range(1, RATE_LIMIT_ATTEMPTS + 1):
                await self.breaker.wait()
                epoch = self.breaker.epoch
                if item.future.done():  # the caller left while this waited
                    engine.settle(item, "abandoned")
                    return
                try:
                    response = await self.replay(item)
                except RateLimitedError as exc:
                    self.breaker.trip(exc.retry_after, sent_epoch=epoch)
                    if attempt < RATE_LIMIT_ATTEMPTS:
                        logger.info(
                            "fallback of item %s rate limited (send %d): again after the breaker",
                            item.id,
                            attempt,
                        )
                        continue
                    await engine.fallback_failed(item, exc)
                except Exception as exc:  # noqa: BLE001 - the caller gets the fallback's own error
                    await engine.fallback_failed(item, exc)
                else:
                    await engine.fallback_done(item, response)
                return

    def __repr__(self) -> str:
        return f"FallbackExecutor(limit={self.limit!r}, running={len(self.tasks)}, breaker={self.breaker!r})"
