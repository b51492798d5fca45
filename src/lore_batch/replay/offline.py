"""What makes an offline replay reproducible: background work on simulated time, in a fixed order, with
seeded ids.

- :class:`BackgroundWaiter` waits for the engine's background jobs on the backend's stepping clock, brought up
  to the session's time first (live, it simply awaits them).
- :func:`serialize_jobs` runs the engine's jobs one at a time, in the order they were started.
- :func:`seeded_uuids` makes ``uuid.uuid4`` draw from a seeded generator while the run lasts.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import Awaitable, Coroutine, Iterator
from typing import Any, TypeVar

from lore_batch.replay.backend import Backend
from lore_batch.replay.stepping import SteppingClock, install_counting_executor, run_stepping
from lore_core.clock import ManualClock
from lore_core.lore import Lore

__all__ = ["BackgroundWaiter", "seeded_uuids", "serialize_jobs"]

T = TypeVar("T")


class BackgroundWaiter:
    """Waits for background work: offline, on the stepping clock (synced to the session's time first, so the
    workers' calls are never earlier than the turn that caused them); live, as it comes."""

    def __init__(self, backend: Backend, session_clock: ManualClock) -> None:
        self.backend = backend
        self.session_clock = session_clock
        self.lore: Lore | None = None
        self.executor = install_counting_executor() if isinstance(backend.clock, SteppingClock) else None

    def busy(self) -> bool:
        """Whether a store transaction or an executor thread is under way (the clock holds still then)."""
        store_busy = self.lore is not None and self.lore.store.busy > 0
        return store_busy or (self.executor is not None and self.executor.pending > 0)

    def sync(self) -> None:
        """Bring the workers' clock up to the session's time (offline), before anything of the turn runs."""
        clock = self.backend.clock
        if isinstance(clock, SteppingClock):
            clock.advance_to(self.session_clock.now())

    async def wait(self, awaitable: Awaitable[T]) -> T:
        """Await ``awaitable``, moving the stepping clock from deadline to deadline (offline)."""
        clock = self.backend.clock
        if isinstance(clock, SteppingClock):
            self.sync()
            return await run_stepping(clock, awaitable, busy=self.busy)
        return await awaitable


@contextlib.contextmanager
def seeded_uuids(seed: int) -> Iterator[None]:
    """``uuid.uuid4`` drawn from a generator seeded with ``seed`` while the block runs (process-wide).

    The workers name new rows with ``uuid4``, and the store orders knowledge entries of equal confidence and
    time by id: with random ids, the curator's prompt (and so its answer) would change from run to run.
    """
    rng = random.Random(f"lore-replay-ids-{seed}")
    original = uuid.uuid4

    def seeded() -> uuid.UUID:
        return uuid.UUID(int=rng.getrandbits(128), version=4)

    uuid.uuid4 = seeded
    try:
        yield
    finally:
        uuid.uuid4 = original


def serialize_jobs(lore: Lore) -> None:
    """Run the engine's background jobs one at a time, in the order they were started (offline runs).

    Jobs started together (a turn's message insert, an incremental distillation, a curation) would otherwise
    read and write the store concurrently, and which one sees the other's rows would depend on thread timing.
    The message inserts keep their own chain, and every other job waits for the inserts started before it;
    retention checks, which idle work waits for, are serialized among themselves. Every job still runs, in the
    order the engine asked for it.
    """
    scheduler = lore.scheduler
    spawn = scheduler.spawn
    jobs = asyncio.Lock()
    checks = asyncio.Lock()
    writes: list[asyncio.Task[Any]] = []

    def serial(
        coro: Coroutine[Any, Any, Any], *, job: str, session_id: str | None = None
    ) -> asyncio.Task[Any]:
        if job == "store-messages":
            task = spawn(coro, job=job, session_id=session_id)
            writes[:] = [task]
            return task
        lock = checks if job == "validate" else jobs
        before = list(writes)

        async def run() -> Any:
            try:
                await asyncio.gather(
                    *before, return_exceptions=True
                )  # failures are the scheduler's to record
                async with lock:
                    return await coro
            finally:
                coro.close()  # a no-op once it ran; a job cancelled while waiting is closed, never awaited

        return spawn(run(), job=job, session_id=session_id)

    scheduler.spawn = serial  # type: ignore[method-assign]
