"""Simulated time for background work: a manual clock moved from one sleeper's deadline to the next.

:func:`run_stepping` awaits something (the engine's background jobs) while moving a :class:`SteppingClock`:
whenever the event loop has settled (no callback ready, no database transaction open, no call running in
the loop's executor threads), the clock jumps to the earliest pending ``sleep`` deadline. A batch that
"takes" minutes, a 30 s flush window and the poll backoff all cost no wall time, and every timer fires in
deadline order, so the run is reproducible.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Final, TypeVar

from lore_core.clock import ManualClock

__all__ = ["CountingExecutor", "SteppingClock", "install_counting_executor", "run_stepping"]

T = TypeVar("T")

_QUIET_ROUNDS: Final = 3  # consecutive loop turns with nothing ready before the loop counts as settled
_MAX_ROUNDS: Final = 2_000  # loop turns per settling pass when the loop's ready queue cannot be seen
_REAL_WAIT: Final = 0.001  # seconds of real time to wait for a thread or a transaction to finish
_STUCK_AFTER: Final = 30_000  # real waits in a row with no deadline to jump to (30 s): a bug, not a wait


class SteppingClock(ManualClock):
    """A :class:`ManualClock` (``auto_advance=False``) that knows its sleepers' deadlines."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        super().__init__(start=start)
        self._deadlines: dict[int, float] = {}
        self._keys = itertools.count()

    async def sleep(self, seconds: float) -> None:
        """Sleep on the clock, with the deadline visible to :meth:`next_deadline`."""
        key = next(self._keys)
        self._deadlines[key] = self.monotonic() + max(0.0, float(seconds))
        try:
            await super().sleep(seconds)
        finally:
            self._deadlines.pop(key, None)

    def next_deadline(self) -> float | None:
        """The earliest pending deadline (on :meth:`monotonic`), or None when nothing sleeps."""
        return min(self._deadlines.values(), default=None)

    def advance_to(self, wall: float) -> None:
        """Move the clock forward to wall time ``wall`` (never back)."""
        self.advance(max(0.0, wall - self.now()))


class CountingExecutor(ThreadPoolExecutor):
    """A thread pool that counts the calls still running, so settling can wait for them."""

    def __init__(self) -> None:
        super().__init__(max_workers=4, thread_name_prefix="lore-replay")
        self._lock = threading.Lock()
        self.pending = 0

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        with self._lock:
            self.pending += 1
        future = super().submit(fn, *args, **kwargs)
        future.add_done_callback(self._done)
        return future

    def _done(self, _future: Future[Any]) -> None:
        with self._lock:
            self.pending -= 1


def install_counting_executor() -> CountingExecutor:
    """Make a :class:`CountingExecutor` the running loop's default executor (the SDK resolves its platform
    headers there) and return it."""
    executor = CountingExecutor()
    asyncio.get_running_loop().set_default_executor(executor)
    return executor


async def _settle(busy: Callable[[], bool]) -> None:
    loop = asyncio.get_running_loop()
    while True:
        quiet = 0
        for _ in range(_MAX_ROUNDS):
            await asyncio.sleep(0)
            ready = getattr(loop, "_ready", None)
            if ready is None:
                continue
            quiet = quiet + 1 if not ready else 0
            if quiet >= _QUIET_ROUNDS:
                break
        if not busy():
            return
        await asyncio.sleep(_REAL_WAIT)


async def run_stepping(clock: SteppingClock, awaitable: Awaitable[T], *, busy: Callable[[], bool]) -> T:
    """Await ``awaitable`` while jumping ``clock`` to each next sleeper deadline once the loop has settled.

    ``busy()`` says whether work outside the loop is under way (a transaction, a thread); the clock holds
    still while it is true.

    Raises:
        RuntimeError: nothing sleeps on the clock and nothing finishes for 30 s of real time.
    """
    task = asyncio.ensure_future(awaitable)
    waits = 0
    try:
        while True:
            await _settle(busy)
            if task.done():
                return task.result()
            deadline = clock.next_deadline()
            if deadline is None:
                waits += 1
                if waits > _STUCK_AFTER:
                    raise RuntimeError("stuck: the work waits, but nothing sleeps on the simulated clock")
                await asyncio.sleep(_REAL_WAIT)
                continue
            waits = 0
            clock.advance(max(0.0, deadline - clock.monotonic()))
    finally:
        if not task.done():
            task.cancel()
