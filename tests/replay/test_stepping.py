"""Simulated time for background work: the stepping clock jumps from deadline to deadline, in order."""

from __future__ import annotations

import asyncio

import pytest

from lore_batch.replay.stepping import SteppingClock, run_stepping


async def test_sleepers_wake_in_deadline_order_without_wall_time() -> None:
    clock = SteppingClock(start=1_000.0)
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.monotonic()))

    async def work() -> str:
        await asyncio.gather(sleeper("late", 3_600), sleeper("early", 30), sleeper("middle", 95))
        return "done"

    assert await asyncio.wait_for(run_stepping(clock, work(), busy=lambda: False), timeout=10) == "done"
    assert woke == [("early", 30.0), ("middle", 95.0), ("late", 3_600.0)]
    assert clock.now() == 4_600.0


async def test_the_clock_holds_still_while_work_is_busy() -> None:
    clock = SteppingClock()
    state = {"busy": True}

    async def work() -> float:
        await clock.sleep(10)
        return clock.monotonic()

    task = asyncio.ensure_future(run_stepping(clock, work(), busy=lambda: state["busy"]))
    await asyncio.sleep(0.05)
    assert clock.monotonic() == 0.0  # a thread or a transaction is under way: no jump
    state["busy"] = False
    assert await asyncio.wait_for(task, timeout=10) == 10.0


async def test_advance_to_never_moves_back() -> None:
    clock = SteppingClock(start=100.0)
    clock.advance_to(160.0)
    clock.advance_to(120.0)
    assert clock.now() == 160.0


async def test_errors_of_the_awaited_work_propagate() -> None:
    clock = SteppingClock()

    async def failing() -> None:
        await clock.sleep(5)
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await asyncio.wait_for(run_stepping(clock, failing(), busy=lambda: False), timeout=10)
