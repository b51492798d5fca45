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
from collections.abc import Awaitable, Callable
from typing import Any, Final

import anthropic

from lore_batch.errors import BatchError
from lore_batch.limits import CircuitBreaker, ConcurrencyLimit, parse_retry_after
from lore_core.errors import RateLimitedError
from lore_core.llm import LLMClient, LLMResponse

from .items import PromptCall

__all__ = ["RATE_LIMIT_ATTEMPTS", "FallbackExecutor"]

logger = logging.getLogger(__name__)

# Sends of one fallback that a 429 may refuse before its caller gets the RateLimitedError.
RATE_LIMIT_ATTEMPTS: Final = 3


class FallbackExecutor:
    """Runs fallbacks through ``inner``, ``limit`` at a time, behind ``breaker``.

    ``spawn`` starts a background task (the owner's, so failures are recorded). Each fallback reports through
    its own callbacks, so the memory engine and the durable pool share this executor.
    """

    def __init__(
        self,
        inner: LLMClient | None,
        *,
        limit: int,
        breaker: CircuitBreaker,
        spawn: Callable[..., asyncio.Task[Any]],
    ) -> None:
        self.inner = inner
        self.breaker = breaker
        self.limit = ConcurrencyLimit(limit)
        self.tasks: set[asyncio.Task[None]] = set()
        self.peak = 0
        self._spawn = spawn

    def submit(
        self,
        key: str,
        send: Callable[[], Awaitable[Any]],
        *,
        done: Callable[[Any], Awaitable[None]],
        failed: Callable[[BaseException], Awaitable[None]],
        abandoned: Callable[[], Awaitable[bool]],
    ) -> asyncio.Task[None]:
        """Start a fallback (``key`` names it in logs) in its own task: ``send()`` makes the synchronous call.

        ``abandoned()`` is asked just before sending (the caller may have left while it waited); then
        ``done(result)`` or ``failed(error)`` reports the outcome.
        """
        task: asyncio.Task[None] = self._spawn(
            self._run(key, send, done, failed, abandoned), name="lore_batch.fallback"
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def prompt_sender(self, call: PromptCall) -> Callable[[], Awaitable[LLMResponse]]:
        """The fallback of an ``LLMClient.prompt`` call: :meth:`replay` of ``call``."""
        return lambda: self.replay(call)

    async def replay(self, call: PromptCall) -> LLMResponse:
        """Send the original call through ``inner`` (non-urgent); returns its answer as route fallback."""
        if self.inner is None:
            raise BatchError("this engine has no inner LLMClient to replay prompt calls through")
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

    async def _run(
        self,
        key: str,
        send: Callable[[], Awaitable[Any]],
        done: Callable[[Any], Awaitable[None]],
        failed: Callable[[BaseException], Awaitable[None]],
        abandoned: Callable[[], Awaitable[bool]],
    ) -> None:
        async with self.limit.slot():
            self.peak = max(self.peak, self.limit.active)
            for attempt in range(1, RATE_LIMIT_ATTEMPTS + 1):
                await self.breaker.wait()
                epoch = self.breaker.epoch
                if await abandoned():  # the caller left while this waited
                    return
                try:
                    response = await send()
                except (RateLimitedError, anthropic.RateLimitError) as exc:
                    self.breaker.trip(_retry_after(exc, self.breaker.clock.now()), sent_epoch=epoch)
                    if attempt < RATE_LIMIT_ATTEMPTS:
                        logger.info(
                            "fallback of %s rate limited (send %d): again after the breaker", key, attempt
                        )
                        continue
                    await failed(exc)
                except Exception as exc:  # noqa: BLE001 - the caller gets the fallback's own error
                    await failed(exc)
                else:
                    await done(response)
                return

    def __repr__(self) -> str:
        return f"FallbackExecutor(limit={self.limit!r}, running={len(self.tasks)}, breaker={self.breaker!r})"


def _retry_after(exc: Exception, now: float) -> float | None:
    """The Retry-After of a rate limit: ours carries it, the SDK's has it in the response headers."""
    if isinstance(exc, RateLimitedError):
        return exc.retry_after
    if isinstance(exc, anthropic.RateLimitError):
        return parse_retry_after(exc.response.headers, now=now)
    return None
