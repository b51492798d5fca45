"""Memory-mode shutdown (BATCH.md 6.3): what happens to queued, submitting and in-flight items at close.

Queued items drain through the fallback executor (2 at a time). In-flight batches get ``shutdown_grace``
seconds, polled every 5 s, to end; then they are cancelled upstream and their waiters fail with
:class:`~lore_batch.errors.BatchAbandoned`. The engine's ``aclose(timeout=...)`` bounds all of it; when the
timeout cuts the steps short, :func:`cancel_unfinished` still asks the provider to cancel every batch left
running (at most :data:`CANCEL_BOUND` seconds more), so nothing keeps billing after close.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Final

from lore_batch.errors import BatchAbandoned

from .waits import sleep_or_wake

if TYPE_CHECKING:
    from .core import Engine

__all__ = ["CANCEL_BOUND", "NO_BATCH", "cancel_unfinished", "drain"]

logger = logging.getLogger(__name__)

# The batch id in a BatchAbandoned for an item that never reached a batch.
NO_BATCH: Final = "-"
# Seconds (engine clock) the upstream cancels after a close timeout may take.
CANCEL_BOUND: Final = 10.0


def _awaited(engine: Engine) -> bool:
    return bool(engine.flusher.creating) or any(batch.waiting() for batch in engine.poller.batches.values())


async def drain(engine: Engine) -> None:
    """Run the memory-mode close steps on ``engine`` (already marked closing)."""
    engine.stop_flusher()
    for item in list(engine.flusher.queue):
        engine.fallback(item, None)
    await _grace(engine)
    await _give_up(engine)
    while engine.fallbacks.tasks:
        await asyncio.gather(*list(engine.fallbacks.tasks), return_exceptions=True)


async def _grace(engine: Engine) -> None:
    """Let creates finish and in-flight batches end, for at most ``shutdown_grace`` seconds."""
    if not _awaited(engine):
        return
    engine.poller.poll_soon()
    deadline = engine.clock.monotonic() + engine.settings.shutdown_grace
    while _awaited(engine) and (left := deadline - engine.clock.monotonic()) > 0:
        engine.changed.clear()
        await sleep_or_wake(engine.clock, left, engine.changed)


async def _give_up(engine: Engine) -> None:
    """Cancel what is still creating or in flight; its waiters get ``BatchAbandoned``."""
    creating = list(engine.flusher.creating)
    for task in creating:
        task.cancel()
    await asyncio.gather(*creating, return_exceptions=True)
    cancels = []
    for batch in list(engine.poller.batches.values()):
        waiting = batch.waiting()
        if waiting:
            logger.warning("close: giving up on batch %s with %d waiting item(s)", batch.id, len(waiting))
        for item in waiting:
            engine.fail(item, BatchAbandoned(batch.id, item.custom_id or item.id))
        if not batch.cancel_sent:
            cancels.append(engine.poller.cancel_upstream(batch))
        engine.poller.forget(batch)
    if cancels:
        await asyncio.gather(*cancels, return_exceptions=True)
    for item in list(engine.live.values()):
        if item.state == "submitting":
            engine.fail(item, BatchAbandoned(NO_BATCH, item.custom_id or item.id))


async def cancel_unfinished(engine: Engine) -> None:
    """Cancel upstream every in-flight batch not cancelled yet, for at most :data:`CANCEL_BOUND` seconds."""
    batches = [batch for batch in engine.poller.batches.values() if not batch.cancel_sent]
    if not batches:
        return
    logger.warning("close timed out with %d batch(es) unfinished: cancelling them upstream", len(batches))
    cancels = asyncio.ensure_future(
        asyncio.gather(*(engine.poller.cancel_upstream(batch) for batch in batches), return_exceptions=True)
    )
    bound = asyncio.ensure_future(engine.clock.sleep(CANCEL_BOUND))
    waits: set[asyncio.Future[Any]] = {cancels, bound}
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for waiter in (cancels, bound):
        waiter.cancel()
    await asyncio.gather(cancels, bound, return_exceptions=True)
    for batch in batches:
        engine.poller.forget(batch)
