"""The prompt-cache cost simulator, against costs computed by hand.

Prices (USD per million tokens): input 3, output 15, cache write 5m 3.75, cache write 1h 6, cache read 0.30;
batch columns half of each.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from lore_batch.pricing import PriceRow
from lore_batch.replay.simulate import (
    PromptCacheSimulator,
    Segment,
    SimRequest,
    WorkerCall,
    min_cacheable_tokens,
    price_worker_calls,
    simulate_requests,
)
from lore_core.errors import ConfigError
from lore_core.llm import Usage

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
ROW = PriceRow(
    provider="anthropic",
    model="claude-test",
    effective_at=datetime(2026, 1, 1, tzinfo=UTC),
    input=Decimal("3"),
    output=Decimal("15"),
    cache_write_5m=Decimal("3.75"),
    cache_write_1h=Decimal("6"),
    cache_read=Decimal("0.30"),
    batch_input=Decimal("1.5"),
    batch_output=Decimal("7.5"),
    batch_cache_write_5m=Decimal("1.875"),
    batch_cache_write_1h=Decimal("3"),
    batch_cache_read=Decimal("0.15"),
)

SYSTEM = Segment("system", 1_500, breakpoint=True)
FIRST = Segment("user:1", 1_000)
SECOND = Segment("assistant:2", 300)
THIRD = Segment("user:3", 200)


def sim() -> PromptCacheSimulator:
    return PromptCacheSimulator(prices=lambda at: ROW)


def request(seconds: float, *segments: Segment, output: int = 100) -> SimRequest:
    """A request whose last segment carries the agent's breakpoint."""
    marked = (*segments[:-1], segments[-1].marked())
    return SimRequest(at=T0 + timedelta(seconds=seconds), segments=marked, output_tokens=output)


def test_the_first_request_writes_its_whole_prefix_at_the_5_minute_rate() -> None:
    cost = sim().request(request(0, SYSTEM, FIRST))
    assert (cost.cache_write_tokens, cost.cache_read_tokens, cost.input_tokens) == (2_500, 0, 0)
    # 2,500 x 3.75 + 100 x 15, per million
    assert cost.cost_usd == Decimal("0.0108750")


def test_a_request_within_the_ttl_reads_the_cached_prefix_and_writes_the_rest() -> None:
    cache = sim()
    cache.request(request(0, SYSTEM, FIRST))
    cost = cache.request(request(120, SYSTEM, FIRST, SECOND, THIRD))
    assert (cost.cache_read_tokens, cost.cache_write_tokens, cost.input_tokens) == (2_500, 500, 0)
    # 2,500 x 0.30 + 500 x 3.75 + 100 x 15 = 750 + 1,875 + 1,500 millionths
    assert cost.cost_usd == Decimal("0.004125")
    assert cost.prompt_tokens == 3_000


def test_the_cache_expires_after_the_ttl() -> None:
    cache = sim()
    cache.request(request(0, SYSTEM, FIRST))
    cost = cache.request(request(300, SYSTEM, FIRST, SECOND, THIRD))  # exactly the 5-minute TTL later
    assert (cost.cache_read_tokens, cost.cache_write_tokens) == (0, 3_000)
    # 3,000 x 3.75 + 100 x 15
    assert cost.cost_usd == Decimal("0.012750")


def test_a_read_refreshes_the_ttl() -> None:
    cache = sim()
    cache.request(request(0, SYSTEM, FIRST))
    cache.request(request(240, SYSTEM, FIRST, SECOND))  # reads the first entry: it now lives until 540 s
    cost = cache.request(request(480, SYSTEM, FIRST, THIRD))  # 480 s after the write, 240 s after the read
    assert (cost.cache_read_tokens, cost.cache_write_tokens) == (2_500, 200)


def test_a_changed_message_is_read_up_to_the_last_shared_breakpoint() -> None:
    cache = sim()
    cache.request(request(0, SYSTEM, FIRST))
    cost = cache.request(request(10, SYSTEM, Segment("user:1-edited", 1_000)))
    # only the system prompt's entry matches: its breakpoint made it an entry of its own
    assert (cost.cache_read_tokens, cost.cache_write_tokens) == (1_500, 1_000)


def test_without_breakpoints_nothing_is_cached() -> None:
    cache = sim()
    plain = SimRequest(at=T0, segments=(Segment("system", 1_500), FIRST), output_tokens=100)
    assert cache.request(plain).input_tokens == 2_500
    again = SimRequest(at=T0 + timedelta(seconds=1), segments=plain.segments, output_tokens=100)
    cost = cache.request(again)
    assert (cost.cache_read_tokens, cost.cache_write_tokens, cost.input_tokens) == (0, 0, 2_500)
    assert cost.cost_usd == Decimal("0.009")  # 2,500 x 3 + 100 x 15


def test_a_prompt_under_the_minimum_is_plain_input() -> None:
    cost = sim().request(request(0, Segment("short", 800)))
    assert (cost.input_tokens, cost.cache_write_tokens) == (800, 0)
    assert min_cacheable_tokens("claude-sonnet-4-6") == 1_024
    assert min_cacheable_tokens("claude-haiku-4-5") == 2_048


def test_simulate_requests_is_a_fresh_simulator_over_a_sequence() -> None:
    costs = simulate_requests(
        [request(0, SYSTEM, FIRST), request(60, SYSTEM, FIRST, SECOND)], prices=lambda at: ROW
    )
    assert [c.cache_read_tokens for c in costs] == [0, 2_500]
    # the second: 2,500 x 0.30 + 300 x 3.75 + 100 x 15 = 750 + 1,125 + 1,500 millionths
    assert sum(c.cost_usd for c in costs) == Decimal("0.0108750") + Decimal("0.003375")


def test_requests_must_come_in_time_order() -> None:
    cache = sim()
    cache.request(request(60, SYSTEM, FIRST))
    with pytest.raises(ConfigError):
        cache.request(request(0, SYSTEM, FIRST))


def test_worker_calls_answered_by_a_batch_are_priced_at_batch_rates() -> None:
    usage = Usage(input_tokens=10_000, output_tokens=1_000, cache_write_1h_tokens=2_000)
    calls = [
        WorkerCall(at=T0, model="claude-test", worker="distill", route=route, usage=usage)
        for route in ("batch", "sync", "fallback", "batch_superseded")
    ]
    batch, sync, fallback, superseded = price_worker_calls(calls, prices=lambda model, at: ROW)
    # batch: 10,000 x 1.5 + 1,000 x 7.5 + 2,000 x 3 = 15,000 + 7,500 + 6,000 millionths
    assert batch.cost_usd == Decimal("0.0285")
    # list price: 10,000 x 3 + 1,000 x 15 + 2,000 x 6 = 30,000 + 15,000 + 12,000 millionths
    assert batch.sync_cost_usd == Decimal("0.057")
    assert sync.cost_usd == sync.sync_cost_usd == Decimal("0.057")
    assert fallback.cost_usd == Decimal("0.057")
    assert superseded.cost_usd == Decimal("0.0285")  # paid for at batch rates, though nobody used it
