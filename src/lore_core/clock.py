"""Time as an injected dependency, so no test waits on real time (``lore_batch.clock`` re-exports it).

:class:`Clock` is the port: wall time for timestamps, a monotonic reading for intervals, and an awaitable
sleep. :class:`SystemClock` is the real one; :class:`ManualClock` is the test double whose time moves only
when told to (or, with ``auto_advance=True``, jumps forward by every requested sleep at once).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "ManualClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """A source of time and a way to wait for it.

    ``now()`` is wall time in epoch seconds, ``monotonic()`` a reading for measuring intervals, and ``sleep``
    waits for a number of seconds on this clock.
    """

    def now(self) -> float: ...

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock: :func:`time.time`, :func:`time.monotonic` and :func:`asyncio.sleep`.

    Example::

        clock = SystemClock()
        await clock.sleep(0.1)
    """

    def now(self) -> float:
        """Wall time in epoch seconds."""
        return time.time()

    def monotonic(self) -> float:
        """A monotonic reading in seconds."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of real time (negative values count as zero)."""
        await asyncio.sleep(max(0.0, seconds))

    def __repr__(self) -> str:
        return "SystemClock()"


class ManualClock:
    """A clock that moves only when the test says so.

    ``sleep`` records each requested duration in :attr:`sleeps`. With ``auto_advance=False`` (the default) a
    sleeper waits until :meth:`advance` moves time past its deadline; with ``auto_advance=True`` every sleep
    moves time forward by its own duration and returns at once, so code under test runs straight through. The
    instance is also callable and returns :meth:`now`, so it can drive anything that takes a ``() -> float``
    clock.

    Example::

        clock = ManualClock(auto_advance=True)
        await clock.sleep(60)
        assert clock.sleeps == [60.0] and clock.monotonic() == 60.0
    """

    def __init__(self, start: float = 1_700_000_000.0, *, auto_advance: bool = False) -> None:
        self._start = start
        self._elapsed = 0.0
        self.auto_advance = auto_advance
        self.sleeps: list[float] = []
        self._waiters: dict[int, tuple[float, asyncio.Future[None]]] = {}
        self._ids = itertools.count()
        self._sleeper_added: asyncio.Event | None = None

    def now(self) -> float:
        """Wall time in epoch seconds: ``start`` plus everything advanced so far."""
        return self._start + self._elapsed

    def monotonic(self) -> float:
        """Seconds advanced since the clock was made."""
        return self._elapsed

    def __call__(self) -> float:
        return self.now()

    @property
    def sleepers(self) -> int:
        """How many ``sleep`` calls are waiting for time to move."""
        return len(self._waiters)

    async def sleep(self, seconds: float) -> None:
        """Record ``seconds`` and wait until the clock has advanced that far (or advance it, in auto mode)."""
        seconds = max(0.0, float(seconds))
        self.sleeps.append(seconds)
        if self.auto_advance or seconds == 0.0:
            self.advance(seconds)
            await asyncio.sleep(0)
            return
        key = next(self._ids)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[key] = (self._elapsed + seconds, future)
        if self._sleeper_added is not None:
            self._sleeper_added.set()
        try:
            await future
        finally:
            self._waiters.pop(key, None)

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` and wake every sleeper whose deadline has come.

        Raises ``ValueError`` for a negative amount: time never runs backwards.
        """
        if seconds < 0:
            raise ValueError("a clock cannot move backwards")
        self._elapsed += seconds
        for deadline, future in list(self._waiters.values()):
            if deadline <= self._elapsed and not future.done():
                future.set_result(None)

    async def wait_for_sleepers(self, count: int = 1) -> None:
        """Return once at least ``count`` sleeps are waiting (event driven; pair it with a test timeout)."""
        while len(self._waiters) < count:
            self._sleeper_added = asyncio.Event()
            await self._sleeper_added.wait()
        # Let the sleepers that just registered reach their await before the caller moves time.
        await asyncio.sleep(0)

    def __repr__(self) -> str:
        return (
            f"ManualClock(now={self.now()!r}, auto_advance={self.auto_advance!r}, sleepers={self.sleepers})"
        )
