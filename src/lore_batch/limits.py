"""How hard we press a provider: retry policy, backoff, circuit breaker, concurrency and rate budgets.

Everything here is provider-agnostic. Time comes from an injected :class:`~lore_batch.clock.Clock`, randomness
from an injectable :class:`random.Random`, so tests pin every wait exactly.

- :class:`RetryPolicy` decides how many attempts a call gets and how long to wait between them, with separate
  budgets for urgent and background calls.
- :class:`CircuitBreaker` pauses background calls after a 429, with an escalating schedule; urgent calls never
  trip it and are never held by it.
- :class:`ConcurrencyLimit` caps how many background calls are on the wire at once.
- :class:`TokenBucket` spreads requests over a per-minute budget (batch endpoints share one RPM limit).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

from lore_batch.clock import Clock, SystemClock
from lore_core.errors import ConfigError, RateLimitedError

__all__ = [
    "BREAKER_SCHEDULE",
    "RETRYABLE_STATUSES",
    "BreakerState",
    "CircuitBreaker",
    "ConcurrencyLimit",
    "RetryPolicy",
    "TokenBucket",
    "backoff_delay",
    "parse_retry_after",
]

logger = logging.getLogger(__name__)

# Statuses worth sending again: rate limited, request timeout, and the transient server family
# (500 api_error, 502/503 gateway trouble, 504 timeout_error, 529 overloaded_error).
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 529})

# Breaker pauses after the 1st, 2nd, ... 5th and later consecutive trips (BATCH.md 5.5, ENGINE.md 1.2).
BREAKER_SCHEDULE: tuple[float, ...] = (60.0, 120.0, 240.0, 480.0, 600.0)

_shared_rng = random.Random()


def parse_retry_after(headers: Mapping[str, str], *, now: float) -> float | None:
    """Seconds the server asked us to wait, from ``retry-after-ms`` or ``retry-after``; ``None`` if absent.

    ``retry-after-ms`` (milliseconds) wins; ``retry-after`` may be seconds (float allowed) or an HTTP date,
    read against ``now`` (epoch seconds). Unparsable values count as absent; past dates give 0.

    Example::

        parse_retry_after({"retry-after": "7"}, now=0.0)  # 7.0
    """
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            value = float(raw_ms) / 1000.0
        except ValueError:
            value = math.nan
        if math.isfinite(value):
            return max(0.0, value)
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(raw).timestamp() - now)
        except (TypeError, ValueError):
            return None
    return max(0.0, value) if math.isfinite(value) else None


def backoff_delay(attempt: int, *, base: float, multiplier: float, jitter: float, rand: float) -> float:
    """Exponential backoff after failed attempt number ``attempt`` (1-based), shortened by up to ``jitter``.

    The delay is ``base * multiplier ** (attempt - 1) * (1 - jitter * rand)`` with ``rand`` in [0, 1); with
    ``jitter=0`` it is exact. Pure: the caller supplies the random draw.

    Example::

        backoff_delay(3, base=1.0, multiplier=2.0, jitter=0.0, rand=0.5)  # 4.0
    """
    return base * multiplier ** max(0, attempt - 1) * (1.0 - jitter * rand)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How often, and after how long, a failed call is tried again.

    ``urgent_attempts``/``background_attempts`` count every try, the first included. A wait is the larger of
    the exponential backoff (``base_delay``, ``multiplier``, shortened by up to ``jitter``) and the server's
    Retry-After, capped at ``urgent_max_wait`` or ``background_max_wait``. ``rng`` makes jitter reproducible.
    Raises :class:`~lore_core.errors.ConfigError` on invalid values.

    Example::

        policy = RetryPolicy(urgent_attempts=2, jitter=0.0)
        policy.delay(1, urgent=True, retry_after=3.0)  # 3.0
    """

    urgent_attempts: int = 3
    background_attempts: int = 5
    base_delay: float = 1.0
    multiplier: float = 2.0
    jitter: float = 0.2
    urgent_max_wait: float = 10.0
    background_max_wait: float = 120.0
    rng: random.Random | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.urgent_attempts < 1 or self.background_attempts < 1:
            raise ConfigError("retry attempts must be at least 1")
        if self.base_delay < 0 or self.urgent_max_wait < 0 or self.background_max_wait < 0:
            raise ConfigError("retry delays must not be negative")
        if self.multiplier < 1:
            raise ConfigError("retry multiplier must be at least 1")
        if not 0 <= self.jitter <= 1:
            raise ConfigError("retry jitter must be between 0 and 1")

    def attempts(self, *, urgent: bool) -> int:
        """The total number of tries for an urgent or a background call."""
        return self.urgent_attempts if urgent else self.background_attempts

    def max_wait(self, *, urgent: bool) -> float:
        """The longest single wait between tries."""
        return self.urgent_max_wait if urgent else self.background_max_wait

    def cap_retry_after(self, retry_after: float | None, *, urgent: bool) -> float | None:
        """The server's Retry-After, capped at this policy's longest wait."""
        return None if retry_after is None else min(retry_after, self.max_wait(urgent=urgent))

    def delay(self, attempt: int, *, urgent: bool, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based) before the next one."""
        rand = (self.rng or _shared_rng).random() if self.jitter else 0.0
        wait = backoff_delay(
            attempt, base=self.base_delay, multiplier=self.multiplier, jitter=self.jitter, rand=rand
        )
        if retry_after is not None:
            wait = max(wait, retry_after)
        return min(wait, self.max_wait(urgent=urgent))


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerState:
    """A snapshot of a :class:`CircuitBreaker`.

    ``open_until`` is the wall time (epoch seconds) at which background calls resume, ``None`` when closed;
    ``remaining`` the seconds until then; ``trips`` the consecutive trips counted toward escalation.
    """

    open_until: float | None
    remaining: float
    trips: int

    @property
    def is_open(self) -> bool:
        """True while background calls are held."""
        return self.open_until is not None


class CircuitBreaker:
    """Pauses background calls after a rate limit, escalating while the provider keeps refusing.

    A trip opens the breaker for ``max(retry_after, schedule[min(trips, len(schedule) - 1)])`` seconds, where
    ``trips`` counts the consecutive trips before this one. The count resets once the breaker has expired
    naturally and either a call sent after the last trip succeeds (:meth:`record_success`) or ``reset_after``
    seconds pass with no new trip. A 429 on a request sent *before* the latest trip (an older ``epoch``) is
    the same episode: it may lengthen the pause to its Retry-After but does not escalate. Background callers
    :meth:`wait` while it is open; urgent callers must neither trip nor wait on it. One instance may be shared
    by several clients.

    Example::

        breaker = CircuitBreaker(clock=ManualClock(auto_advance=True))
        breaker.trip(retry_after=5.0)   # opens for 60 s
        await breaker.wait()            # returns once it closes
    """

    def __init__(
        self,
        schedule: tuple[float, ...] = BREAKER_SCHEDULE,
        *,
        clock: Clock | None = None,
        max_wait: float | None = None,
        reset_after: float | None = None,
    ) -> None:
        if not schedule or any(step < 0 for step in schedule):
            raise ConfigError("breaker schedule must be a non-empty tuple of non-negative seconds")
        if max_wait is not None and max_wait < 0:
            raise ConfigError("breaker max_wait must not be negative")
        self.schedule = tuple(float(step) for step in schedule)
        self.clock: Clock = clock or SystemClock()
        self.max_wait = max_wait
        self.reset_after = max(self.schedule) if reset_after is None else reset_after
        self._open_until: float | None = None  # monotonic; kept after expiry to time the reset
        self._trips = 0
        self._epoch = 0

    @property
    def epoch(self) -> int:
        """Grows by one at each escalating trip; read it before sending to tell episodes apart."""
        return self._epoch

    @property
    def trips(self) -> int:
        """Consecutive trips counted toward escalation."""
        self._maybe_reset()
        return self._trips

    def remaining(self) -> float:
        """Seconds until background calls may go again (0.0 when closed)."""
        if self._open_until is None:
            return 0.0
        return max(0.0, self._open_until - self.clock.monotonic())

    @property
    def is_open(self) -> bool:
        """True while background calls are held."""
        return self.remaining() > 0.0

    def state(self) -> BreakerState:
        """A snapshot for logs and dashboards."""
        remaining = self.remaining()
        return BreakerState(
            open_until=self.clock.now() + remaining if remaining > 0 else None,
            remaining=remaining,
            trips=self.trips,
        )

    def trip(self, retry_after: float | None = None, *, sent_epoch: int | None = None) -> float:
        """Record a rate limit on a background call; returns the seconds the breaker now stays open.

        ``retry_after`` is the server's (already capped) wait. ``sent_epoch`` is :attr:`epoch` as read when
        the failed request was sent; a stale one extends the pause without escalating.
        """
        now = self.clock.monotonic()
        asked = max(0.0, retry_after or 0.0)
        if sent_epoch is not None and sent_epoch < self._epoch:
            self._open_until = max(self._open_until or now, now + asked)
            return self.remaining()
        self._maybe_reset()
        pause = max(asked, self.schedule[min(self._trips, len(self.schedule) - 1)])
        self._trips += 1
        self._epoch += 1
        self._open_until = max(self._open_until or now, now + pause)
        logger.warning("rate-limit breaker tripped: trips=%d pause=%.1fs", self._trips, self.remaining())
        return self.remaining()

    def record_success(self, *, sent_epoch: int | None = None) -> None:
        """Record a background call that went through; after a natural expiry this resets the trip count."""
        if self._trips and not self.is_open and (sent_epoch is None or sent_epoch >= self._epoch):
            logger.info("rate-limit breaker reset after %d trips", self._trips)
            self._trips = 0

    def reset(self) -> None:
        """Close the breaker now and forget all trips."""
        self._open_until = None
        self._trips = 0

    async def wait(self, *, max_wait: float | None = None) -> float:
        """Wait while the breaker is open; returns the seconds waited.

        ``max_wait`` (default: the breaker's own) bounds the wait: if the breaker would stay open longer,
        :class:`~lore_core.errors.RateLimitedError` is raised at once with ``retry_after`` set to the time
        left.
        """
        budget = self.max_wait if max_wait is None else max_wait
        waited = 0.0
        while (remaining := self.remaining()) > 0.0:
            if budget is not None and waited + remaining > budget:
                raise RateLimitedError(
                    f"rate-limit breaker open for another {remaining:.1f}s", retry_after=remaining
                )
            await self.clock.sleep(remaining)
            waited += remaining
        return waited

    def _maybe_reset(self) -> None:
        if (
            self._trips
            and self._open_until is not None
            and self.clock.monotonic() >= self._open_until + self.reset_after
        ):
            self._trips = 0

    def __repr__(self) -> str:
        state = self.state()
        return f"CircuitBreaker(open={state.is_open}, remaining={state.remaining:.1f}, trips={state.trips})"


class ConcurrencyLimit:
    """At most ``limit`` holders at once; the rest wait in arrival order. Share one instance to share the cap.

    Raises :class:`~lore_core.errors.ConfigError` when ``limit`` is below 1.

    Example::

        limit = ConcurrencyLimit(2)
        async with limit.slot():
            ...  # at most two tasks are here at once
    """

    def __init__(self, limit: int = 2) -> None:
        if limit < 1:
            raise ConfigError("a concurrency limit must be at least 1")
        self.limit = limit
        self._semaphore = asyncio.Semaphore(limit)
        self._active = 0

    @property
    def active(self) -> int:
        """Slots currently held."""
        return self._active

    async def acquire(self) -> None:
        """Take a slot, waiting for one if all are held."""
        await self._semaphore.acquire()
        self._active += 1

    def release(self) -> None:
        """Give back a slot taken with :meth:`acquire`."""
        self._active -= 1
        self._semaphore.release()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a slot for the body of an ``async with``."""
        await self.acquire()
        try:
            yield
        finally:
            self.release()

    def __repr__(self) -> str:
        return f"ConcurrencyLimit(limit={self.limit}, active={self._active})"


class TokenBucket:
    """A per-minute request budget: ``rate_per_minute`` tokens refill evenly, up to ``capacity`` banked.

    :meth:`acquire` waits (on the injected clock) until enough tokens are there; :meth:`pause` empties the
    bucket for a server-given Retry-After. Raises :class:`~lore_core.errors.ConfigError` for a non-positive
    rate or a capacity below 1.

    Example::

        bucket = TokenBucket(50)          # tier 1 batch RPM
        await bucket.acquire()            # one create or poll
        await bucket.acquire(2)           # a results download costs two
    """

    def __init__(
        self, rate_per_minute: float, *, capacity: float | None = None, clock: Clock | None = None
    ) -> None:
        if rate_per_minute <= 0:
            raise ConfigError("a token bucket needs a positive rate")
        self.rate = rate_per_minute / 60.0
        self.capacity = float(rate_per_minute if capacity is None else capacity)
        if self.capacity < 1:
            raise ConfigError("a token bucket needs a capacity of at least 1")
        self.clock: Clock = clock or SystemClock()
        self._tokens = self.capacity
        self._stamp = self.clock.monotonic()
        self._lock = asyncio.Lock()

    @property
    def tokens(self) -> float:
        """Tokens available now (negative while paused)."""
        self._refill()
        return self._tokens

    def try_acquire(self, tokens: float = 1.0) -> bool:
        """Take ``tokens`` if they are there now; never waits."""
        self._refill()
        if self._tokens >= tokens:
            self._tokens -= tokens
            return True
        return False

    async def acquire(self, tokens: float = 1.0) -> float:
        """Take ``tokens``, waiting for the refill if needed; returns the seconds waited.

        Raises :class:`~lore_core.errors.ConfigError` if ``tokens`` exceeds the capacity (it could never fit).
        """
        if tokens > self.capacity:
            raise ConfigError("cannot acquire more tokens than the bucket holds")
        waited = 0.0
        async with self._lock:
            while not self.try_acquire(tokens):
                wait = (tokens - self._tokens) / self.rate
                await self.clock.sleep(wait)
                waited += wait
        return waited

    def pause(self, seconds: float) -> None:
        """Hold every acquirer for at least ``seconds`` (a Retry-After from the server)."""
        self._refill()
        self._tokens = min(self._tokens, 0.0) - seconds * self.rate

    def _refill(self) -> None:
        now = self.clock.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def __repr__(self) -> str:
        return f"TokenBucket(rate_per_minute={self.rate * 60:g}, tokens={self.tokens:.2f})"
