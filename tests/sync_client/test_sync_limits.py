"""Pure limits: Retry-After parsing, backoff, the retry policy, the concurrency limit and the token bucket."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from lore_batch.clock import ManualClock
from lore_batch.limits import ConcurrencyLimit, RetryPolicy, TokenBucket, backoff_delay, parse_retry_after
from lore_core.errors import ConfigError

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "2500"}, 2.5),
        ({"retry-after-ms": "2500", "retry-after": "9"}, 2.5),
        ({"retry-after-ms": "nope", "retry-after": "9"}, 9.0),
        ({"retry-after": "-3"}, 0.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "inf"}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers, now=NOW) == expected


def test_parse_retry_after_http_date() -> None:
    when = datetime.fromtimestamp(NOW + 30, tz=UTC)
    assert parse_retry_after({"retry-after": format_datetime(when, usegmt=True)}, now=NOW) == pytest.approx(
        30
    )
    past = datetime.fromtimestamp(NOW - 30, tz=UTC)
    assert parse_retry_after({"retry-after": format_datetime(past, usegmt=True)}, now=NOW) == 0.0


def test_backoff_is_exponential_and_jitter_only_shortens() -> None:
    exact = [backoff_delay(n, base=1.0, multiplier=2.0, jitter=0.0, rand=0.9) for n in range(1, 5)]
    assert exact == [1.0, 2.0, 4.0, 8.0]
    assert backoff_delay(3, base=1.0, multiplier=2.0, jitter=0.5, rand=0.5) == 3.0


def test_policy_budgets_and_caps() -> None:
    policy = RetryPolicy(jitter=0.0, urgent_max_wait=5.0, background_max_wait=120.0)
    assert policy.attempts(urgent=True) == 3
    assert policy.attempts(urgent=False) == 5
    assert [policy.delay(n, urgent=False) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]
    assert policy.delay(1, urgent=False, retry_after=30.0) == 30.0
    assert policy.delay(1, urgent=True, retry_after=30.0) == 5.0
    assert policy.delay(8, urgent=True) == 5.0
    assert policy.cap_retry_after(500.0, urgent=False) == 120.0
    assert policy.cap_retry_after(None, urgent=False) is None


def test_policy_jitter_is_reproducible_with_a_seeded_rng() -> None:
    first = RetryPolicy(jitter=0.5, rng=random.Random(7))
    second = RetryPolicy(jitter=0.5, rng=random.Random(7))
    delays = [first.delay(n, urgent=False) for n in (1, 2, 3)]
    assert delays == [second.delay(n, urgent=False) for n in (1, 2, 3)]
    assert all(0.5 * 2 ** (n - 1) <= d <= 2 ** (n - 1) for n, d in zip((1, 2, 3), delays, strict=True))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"urgent_attempts": 0},
        {"background_attempts": 0},
        {"base_delay": -1.0},
        {"multiplier": 0.5},
        {"jitter": 1.5},
        {"urgent_max_wait": -1.0},
    ],
)
def test_policy_rejects_bad_values(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


async def test_concurrency_limit_holds_the_third_caller() -> None:
    limit = ConcurrencyLimit(2)
    release = asyncio.Event()
    inside: list[int] = []

    async def job(n: int) -> None:
        async with limit.slot():
            inside.append(n)
            await release.wait()

    tasks = [asyncio.create_task(job(n)) for n in range(3)]
    for _ in range(5):
        await asyncio.sleep(0)
    assert inside == [0, 1]
    assert limit.active == 2
    release.set()
    await asyncio.gather(*tasks)
    assert inside == [0, 1, 2]
    assert limit.active == 0
    with pytest.raises(ConfigError):
        ConcurrencyLimit(0)


async def test_token_bucket_refills_on_the_clock() -> None:
    clock = ManualClock(auto_advance=True)
    bucket = TokenBucket(60, capacity=2, clock=clock)
    assert bucket.try_acquire(2)
    assert not bucket.try_acquire()
    assert await bucket.acquire() == pytest.approx(1.0)
    assert await bucket.acquire(2) == pytest.approx(2.0)
    bucket.pause(30)
    assert await bucket.acquire() == pytest.approx(31.0)
    assert clock.sleeps == pytest.approx([1.0, 2.0, 31.0])
    with pytest.raises(ConfigError):
        await bucket.acquire(3)
    with pytest.raises(ConfigError):
        TokenBucket(0)


async def test_manual_clock_blocks_until_advanced() -> None:
    clock = ManualClock()
    done = asyncio.Event()

    async def sleeper() -> None:
        await clock.sleep(10)
        done.set()

    task = asyncio.create_task(sleeper())
    await clock.wait_for_sleepers(1)
    clock.advance(9)
    await asyncio.sleep(0)
    assert not done.is_set()
    clock.advance(1)
    await task
    assert clock.monotonic() == 10.0
    assert clock() == clock.now() == 1_700_000_010.0
    assert clock.sleepers == 0
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)
