"""The 429 circuit breaker on its own: schedule, escalation, reset, waiting and visibility."""

from __future__ import annotations

import asyncio

import pytest

from lore_batch.clock import ManualClock
from lore_batch.limits import BREAKER_SCHEDULE, CircuitBreaker
from lore_core.errors import ConfigError, RateLimitedError


def make() -> tuple[CircuitBreaker, ManualClock]:
    clock = ManualClock()
    return CircuitBreaker(clock=clock), clock


def test_first_trip_uses_the_schedule_or_a_longer_retry_after() -> None:
    breaker, clock = make()
    assert breaker.trip(retry_after=5.0) == 60.0
    state = breaker.state()
    assert state.is_open
    assert state.trips == 1
    assert state.remaining == 60.0
    assert state.open_until == clock.now() + 60.0
    breaker.reset()
    assert breaker.trip(retry_after=90.0) == 90.0


def test_trips_escalate_while_it_keeps_re_tripping_and_cap_at_the_last_step() -> None:
    breaker, clock = make()
    pauses = []
    for _ in range(7):
        epoch = breaker.epoch  # a request sent after the breaker reopened
        pauses.append(breaker.trip(sent_epoch=epoch))
        clock.advance(breaker.remaining())  # natural expiry, then the next background call is refused again
    assert pauses == [60.0, 120.0, 240.0, 480.0, 600.0, 600.0, 600.0]
    assert BREAKER_SCHEDULE == (60.0, 120.0, 240.0, 480.0, 600.0)
    assert breaker.trips == 7


def test_count_resets_after_natural_expiry_and_a_success() -> None:
    breaker, clock = make()
    breaker.trip()
    breaker.trip(sent_epoch=breaker.epoch)  # 120 s, trips=2
    epoch = breaker.epoch
    breaker.record_success(sent_epoch=epoch)  # still open: no reset
    assert breaker.trips == 2
    clock.advance(breaker.remaining())
    breaker.record_success(sent_epoch=epoch)
    assert breaker.trips == 0
    assert breaker.trip() == 60.0


def test_count_resets_after_a_quiet_spell_with_no_new_trip() -> None:
    breaker, clock = make()
    breaker.trip()
    breaker.trip(sent_epoch=breaker.epoch)
    clock.advance(breaker.remaining() + 599.0)
    assert breaker.trip() == 240.0  # not quiet long enough: escalates
    clock.advance(breaker.remaining() + 600.0)
    assert breaker.trips == 0
    assert breaker.trip() == 60.0


def test_a_stale_429_extends_but_does_not_escalate() -> None:
    breaker, clock = make()
    sent = breaker.epoch  # two requests go out before any trip
    breaker.trip(sent_epoch=sent)
    clock.advance(10)
    assert breaker.trip(retry_after=20.0, sent_epoch=sent) == 50.0  # same episode: no new step
    assert breaker.trips == 1
    assert breaker.trip(retry_after=100.0, sent_epoch=sent) == 100.0  # but a longer Retry-After is honoured
    assert breaker.trips == 1


def test_a_success_sent_before_the_latest_trip_does_not_reset() -> None:
    breaker, clock = make()
    old = breaker.epoch
    breaker.trip()
    clock.advance(60)
    breaker.record_success(sent_epoch=old)
    assert breaker.trips == 1


async def test_background_waiters_are_held_until_expiry_and_never_dropped() -> None:
    breaker, clock = make()
    breaker.trip(retry_after=75.0)
    waiter = asyncio.create_task(breaker.wait())
    await clock.wait_for_sleepers(1)
    clock.advance(74)
    await asyncio.sleep(0)
    assert not waiter.done()
    clock.advance(1)
    assert await waiter == 75.0
    assert not breaker.is_open
    assert breaker.state().open_until is None


async def test_wait_follows_an_extension_while_waiting() -> None:
    clock = ManualClock(auto_advance=True)
    breaker = CircuitBreaker(clock=clock)
    breaker.trip()
    real_sleep = clock.sleep

    async def sleep_and_retrip(seconds: float) -> None:
        await real_sleep(seconds)
        if len(clock.sleeps) == 1:
            breaker.trip(sent_epoch=breaker.epoch)  # re-tripped just as it expired

    clock.sleep = sleep_and_retrip  # type: ignore[method-assign]
    assert await breaker.wait() == 180.0
    assert clock.sleeps == [60.0, 120.0]


async def test_max_wait_raises_rate_limited_at_once() -> None:
    clock = ManualClock(auto_advance=True)
    breaker = CircuitBreaker(clock=clock, max_wait=30.0)
    breaker.trip()
    with pytest.raises(RateLimitedError) as info:
        await breaker.wait()
    assert info.value.retry_after == 60.0
    assert clock.sleeps == []
    assert await breaker.wait(max_wait=60.0) == 60.0


def test_bad_configuration() -> None:
    with pytest.raises(ConfigError):
        CircuitBreaker(())
    with pytest.raises(ConfigError):
        CircuitBreaker(max_wait=-1)


def test_repr_shows_state() -> None:
    breaker, _ = make()
    breaker.trip()
    assert repr(breaker) == "CircuitBreaker(open=True, remaining=60.0, trips=1)"
