"""Waiting on the injected clock or an event, whichever comes first (the engine's loops never busy-wait)."""

from __future__ import annotations

import asyncio

from lore_batch.clock import Clock

__all__ = ["sleep_or_wake"]


async def sleep_or_wake(clock: Clock, seconds: float | None, wake: asyncio.Event) -> None:
    """Return after ``seconds`` on ``clock`` or as soon as ``wake`` is set; ``None`` waits for ``wake`` only.

    The caller clears ``wake`` before computing ``seconds``, so a set that races the computation is not lost.
    """
    if wake.is_set() or (seconds is not None and seconds <= 0):
        return
    waker = asyncio.ensure_future(wake.wait())
    if seconds is None:
        try:
            await waker
        finally:
            waker.cancel()
        return
    sleeper = asyncio.ensure_future(clock.sleep(seconds))
    try:
        await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        sleeper.cancel()
        waker.cancel()
