"""The cost of a conversation's model calls under Anthropic prompt caching: a pure, deterministic simulator.

A request is a sequence of :class:`Segment` (tools, system blocks, then messages; each with a key for its
content, its token count and whether the request puts a ``cache_control`` breakpoint after it), the output
tokens, and the time it is sent. The rules, as the Messages API applies them:

- The longest prefix of the request that an earlier request cached (at one of its breakpoints) and that has
  not expired is a **cache read**, up to the request's last breakpoint. A read refreshes the lifetime of
  the entries it covers (``ttl_seconds`` from the read).
- What follows, up to the last breakpoint, is a **cache write** at the 5-minute rate; each breakpoint of the
  request becomes a cache entry (the prefix up to it) expiring ``ttl_seconds`` after the request.
- A prefix shorter than ``min_cacheable_tokens`` is not cached; tokens after the last cacheable breakpoint
  (all of them, without a breakpoint) are plain input.
- Output tokens are priced at the output rate.

One simplification, on purpose: the service looks back at most 20 blocks from a breakpoint for a hit; we
find an earlier entry anywhere before the last breakpoint. Every policy of a comparison is simulated with
the same rules.

Worker calls (distill, curate, ...) are priced from their own usage: answered by a batch at the catalog's
batch columns, synchronously (or by fallback) at list price.

Time and prices are arguments: ``prices(at)`` returns the :class:`~lore_batch.pricing.PriceRow` in force.

Example::

    row = PricingCatalog.default().price("anthropic", "claude-sonnet-4-6")
    sim = PromptCacheSimulator(prices=lambda at: row)
    first = sim.request(SimRequest(at=t0, segments=(Segment("sys", 2_000, breakpoint=True),), output_tokens=9))
    first.cache_write_tokens   # 2000
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Final, Literal

from lore_batch.pricing import PriceRow
from lore_core.errors import ConfigError
from lore_core.llm import Usage

__all__ = [
    "DEFAULT_TTL_SECONDS",
    "PriceLookup",
    "PromptCacheSimulator",
    "RequestCost",
    "Segment",
    "SimRequest",
    "WorkerCall",
    "WorkerCallCost",
    "WorkerPriceLookup",
    "min_cacheable_tokens",
    "price_worker_calls",
    "simulate_requests",
]

DEFAULT_TTL_SECONDS: Final = 300.0
"""The prompt cache's default lifetime (the 5-minute TTL, refreshed by every read)."""

# The service caches nothing shorter than this (Sonnet and Opus); Haiku models need twice as much.
_MIN_CACHEABLE: Final = 1_024
_MIN_CACHEABLE_HAIKU: Final = 2_048

PriceLookup = Callable[[datetime], PriceRow]
"""``prices(at)``: the price row of the conversation's model in force at ``at``."""
WorkerPriceLookup = Callable[[str, datetime], PriceRow]
"""``prices(model, at)``: the price row of ``model`` in force at ``at``."""


def min_cacheable_tokens(model: str) -> int:
    """The shortest prompt the service caches for ``model`` (1,024 tokens; 2,048 for Haiku models).

    Example: ``min_cacheable_tokens("claude-haiku-4-5") == 2048``.
    """
    return _MIN_CACHEABLE_HAIKU if "haiku" in model else _MIN_CACHEABLE


@dataclass(frozen=True, slots=True)
class Segment:
    """One cacheable unit of a request: ``key`` identifies its content, ``tokens`` is its size, and
    ``breakpoint`` says whether the request carries a ``cache_control`` breakpoint on it."""

    key: str
    tokens: int
    breakpoint: bool = False

    def marked(self) -> Segment:
        """The same segment with a breakpoint."""
        return self if self.breakpoint else Segment(self.key, self.tokens, True)


@dataclass(frozen=True, slots=True, kw_only=True)
class SimRequest:
    """One model call: what it sends (in order), what it gets back, and when."""

    at: datetime
    segments: tuple[Segment, ...]
    output_tokens: int

    @property
    def input_tokens(self) -> int:
        """Every token of the prompt."""
        return sum(segment.tokens for segment in self.segments)


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestCost:
    """The priced usage of one request."""

    at: datetime
    input_tokens: int
    cache_write_tokens: int
    cache_read_tokens: int
    output_tokens: int
    cost_usd: Decimal

    @property
    def prompt_tokens(self) -> int:
        """Everything the prompt held: plain input, cache writes and cache reads."""
        return self.input_tokens + self.cache_write_tokens + self.cache_read_tokens

    @property
    def usage(self) -> Usage:
        """The same numbers as a :class:`~lore_core.llm.Usage` (writes at the 5-minute TTL)."""
        return Usage(
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cache_read_tokens=self.cache_read_tokens,
            cache_write_5m_tokens=self.cache_write_tokens,
        )


class PromptCacheSimulator:
    """The prompt cache of one credential, fed requests in time order (see the module docstring).

    Raises:
        ConfigError: a negative TTL or minimum, or a request earlier than the previous one.
    """

    def __init__(
        self,
        *,
        prices: PriceLookup,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        min_cacheable_tokens: int = _MIN_CACHEABLE,
    ) -> None:
        if ttl_seconds < 0 or min_cacheable_tokens < 0:
            raise ConfigError("the cache TTL and minimum must not be negative")
        self._prices = prices
        self.ttl_seconds = ttl_seconds
        self.min_cacheable_tokens = min_cacheable_tokens
        # Cached prefixes: key tuple -> (expiry in epoch seconds, tokens).
        self._entries: dict[tuple[str, ...], tuple[float, int]] = {}
        self._last: float | None = None

    def request(self, request: SimRequest) -> RequestCost:
        """Price one request and update the cache."""
        now = request.at.timestamp()
        if self._last is not None and now < self._last:
            raise ConfigError("requests must be simulated in time order")
        self._last = now
        self._entries = {key: entry for key, entry in self._entries.items() if entry[0] > now}
        segments = request.segments
        keys = tuple(segment.key for segment in segments)
        cumulative = [0]
        for segment in segments:
            cumulative.append(cumulative[-1] + segment.tokens)
        cacheable = [
            end
            for end, segment in enumerate(segments, start=1)
            if segment.breakpoint and cumulative[end] >= self.min_cacheable_tokens
        ]
        last = cacheable[-1] if cacheable else 0
        covered = self._prefixes(keys, limit=last)
        hit = max((len(cached) for cached in covered), default=0)
        expires = now + self.ttl_seconds
        for cached in covered:  # a read refreshes every entry it covers
            self._entries[cached] = (expires, self._entries[cached][1])
        for end in cacheable:
            self._entries[keys[:end]] = (expires, cumulative[end])
        read = cumulative[hit]
        write = cumulative[last] - read
        plain = cumulative[-1] - cumulative[last]
        usage = Usage(
            input_tokens=plain,
            output_tokens=request.output_tokens,
            cache_read_tokens=read,
            cache_write_5m_tokens=write,
        )
        return RequestCost(
            at=request.at,
            input_tokens=plain,
            cache_write_tokens=write,
            cache_read_tokens=read,
            output_tokens=request.output_tokens,
            cost_usd=self._prices(request.at).cost(usage, batch=False),
        )

    def _prefixes(self, keys: tuple[str, ...], *, limit: int) -> list[tuple[str, ...]]:
        """The live entries that are prefixes of ``keys`` no longer than ``limit``."""
        return [cached for cached in self._entries if len(cached) <= limit and keys[: len(cached)] == cached]


def simulate_requests(
    requests: Iterable[SimRequest],
    *,
    prices: PriceLookup,
    ttl_seconds: float = DEFAULT_TTL_SECONDS,
    min_cacheable_tokens: int = _MIN_CACHEABLE,
) -> list[RequestCost]:
    """Price a time-ordered sequence of requests on a fresh cache (see :class:`PromptCacheSimulator`).

    Example::

        costs = simulate_requests(requests, prices=lambda at: row)
        sum(cost.cost_usd for cost in costs)
    """
    sim = PromptCacheSimulator(
        prices=prices, ttl_seconds=ttl_seconds, min_cacheable_tokens=min_cacheable_tokens
    )
    return [sim.request(request) for request in requests]


WorkerRoute = Literal["sync", "batch", "fallback", "batch_superseded"]


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerCall:
    """A background call as the request log has it: when, which model and worker, which route, its usage.

    ``batch_superseded`` is a batch answer paid for after a fallback had already answered the call.
    """

    at: datetime
    model: str
    worker: str | None
    route: WorkerRoute
    usage: Usage


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerCallCost:
    """A worker call priced: ``cost_usd`` on its route, ``sync_cost_usd`` what list price would have been."""

    call: WorkerCall
    cost_usd: Decimal
    sync_cost_usd: Decimal


def price_worker_calls(calls: Sequence[WorkerCall], *, prices: WorkerPriceLookup) -> list[WorkerCallCost]:
    """Price each call at batch rates when a batch answered it (superseded answers too), else at list price.

    Raises:
        ConfigError: a batch call whose price row has no batch price for a token kind it used.

    Example::

        call = WorkerCall(at=t, model="claude-sonnet-4-6", worker="distill", route="batch", usage=u)
        [cost] = price_worker_calls([call], prices=lambda model, at: row)
        cost.cost_usd * 2 == cost.sync_cost_usd   # Anthropic's batch columns are half the list price
    """
    priced: list[WorkerCallCost] = []
    for call in calls:
        row = prices(call.model, call.at)
        sync = row.cost(call.usage, batch=False)
        batched = call.route in ("batch", "batch_superseded")
        cost = row.cost(call.usage, batch=True) if batched else sync
        priced.append(WorkerCallCost(call=call, cost_usd=cost, sync_cost_usd=sync))
    return priced
