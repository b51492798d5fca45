"""FleetDispatcher on the real SDK against the emulator: routing, windows, thresholds, lazy start, deadline
moves, typed errors, and ``Message`` on both routes (BATCH.md 3.2, behaviours 13-17, 31)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
from anthropic.types import Message

from lore_batch import (
    BatchItemErrored,
    DispatcherClosed,
    FleetDispatcher,
    PendingBatch,
    RoutingPolicy,
    UnsupportedParams,
)
from lore_batch.costlog import MemoryCostLog, SqlCostLog
from lore_batch.dispatcher import choose_route
from lore_batch.emulator import AnthropicEmulator
from tests.batch.conftest import Capture, StepClock, advance, creates, endpoint, run_until

HOUR_MS = 3_600_000


def _params(text: str = "hello", **extra: Any) -> dict[str, Any]:
    return {
        "model": "claude-haiku-4-5",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }


@pytest.mark.parametrize(
    ("budget", "kwargs", "route", "reason"),
    [
        (None, {}, "sync", "no_budget"),
        (5_000, {}, "sync", "tight_budget"),
        (
            154_999,
            {},
            "sync",
            "budget_below_turnaround",
        ),  # 30,000 window + 120,000 turnaround + 5,000 reserve
        (155_000, {}, "batch", "budget"),
        (HOUR_MS, {"force_sync": True}, "sync", "force_sync"),
        (None, {"force_batch": True}, "batch", "force_batch"),
    ],
)
def test_routing_rules(budget: float | None, kwargs: dict[str, bool], route: str, reason: str) -> None:
    decision = choose_route(
        _params(),
        latency_budget_ms=budget,
        force_sync=kwargs.get("force_sync", False),
        force_batch=kwargs.get("force_batch", False),
        policy=RoutingPolicy(),
        disabled=False,
        turnaround_s=120.0,
    )
    assert (decision.route, decision.reason) == (route, reason)
    if route == "batch":
        assert decision.deadline_s == (86_400.0 if reason == "force_batch" else budget / 1000)  # type: ignore[operator]


def test_unbatchable_params_and_a_slow_turnaround_go_sync() -> None:
    policy = RoutingPolicy()
    common: dict[str, Any] = {"force_sync": False, "force_batch": False, "policy": policy, "disabled": False}
    assert (
        choose_route(_params(max_tokens=0), latency_budget_ms=HOUR_MS, turnaround_s=120, **common).route
        == "sync"
    )
    assert (
        choose_route(_params(speed="fast"), latency_budget_ms=HOUR_MS, turnaround_s=120, **common).route
        == "sync"
    )
    # An observed turnaround of an hour makes an hour's budget too short for a batch.
    assert choose_route(_params(), latency_budget_ms=HOUR_MS, turnaround_s=3600, **common).route == "sync"
    with pytest.raises(UnsupportedParams):
        choose_route(_params(stream=True), latency_budget_ms=HOUR_MS, turnaround_s=120, **common)
    disabled = {**common, "disabled": True}
    assert (
        choose_route(_params(), latency_budget_ms=HOUR_MS, turnaround_s=120, **disabled).reason == "disabled"
    )


@pytest.mark.parametrize(
    "kwargs",
    [{"batch_min_size": 0}, {"batch_max_size": 100_001}, {"poll_interval_s": 1.0}, {"batch_window_ms": 0}],
)
def test_policy_validates(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must"):
        RoutingPolicy(**kwargs)


async def test_both_routes_return_messages_with_equal_fields(
    make_fleet: Callable[..., FleetDispatcher], emu: AnthropicEmulator, clock: StepClock
) -> None:
    fleet = make_fleet()
    direct = await fleet.submit(**_params("same question"))
    batched = await run_until(clock, fleet.submit(latency_budget_ms=HOUR_MS, **_params("same question")))
    assert isinstance(direct, Message)
    assert isinstance(batched, Message)
    assert (batched.content, batched.model, batched.role, batched.stop_reason) == (
        direct.content,
        direct.model,
        direct.role,
        direct.stop_reason,
    )
    assert len(creates(emu)) == 1
    stats = fleet.stats
    assert (stats.sync_calls, stats.batched_calls, stats.fallbacks, stats.errors) == (1, 1, 0, 0)
    assert stats.total == 2


async def test_the_window_opens_at_the_first_item_and_min_size_flushes_at_once(
    make_fleet: Callable[..., FleetDispatcher], emu: AnthropicEmulator, clock: StepClock
) -> None:
    fleet = make_fleet(policy=RoutingPolicy(batch_min_size=3, batch_window_ms=30_000))
    await advance(clock, 500.0)  # an idle spell: the window has not been running meanwhile
    two = [asyncio.ensure_future(fleet.submit_batch(**_params(f"w{i}"))) for i in range(2)]
    await advance(clock, 29.0)
    assert creates(emu) == []
    await advance(clock, 1.0)
    (first,) = creates(emu)
    assert first.batch_request_count == 2
    three = [asyncio.ensure_future(fleet.submit_batch(**_params(f"m{i}"))) for i in range(3)]
    await advance(clock, 0.0)
    _, second = creates(emu)
    assert second.batch_request_count == 3
    assert second.at == first.at  # no wait: the third call reached batch_min_size
    replies = await run_until(clock, asyncio.gather(*two, *three))
    assert all(isinstance(reply, Message) for reply in replies)


async def test_batch_max_size_splits(
    make_fleet: Callable[..., FleetDispatcher], emu: AnthropicEmulator, clock: StepClock
) -> None:
    fleet = make_fleet(policy=RoutingPolicy(batch_min_size=5, batch_max_size=2))
    replies = await run_until(
        clock, asyncio.gather(*(fleet.submit_batch(**_params(f"s{i}")) for i in range(5)))
    )
    assert [r.content[0].text[-2:] for r in replies] == [f"s{i}" for i in range(5)]  # type: ignore[union-attr]
    assert [c.batch_request_count for c in creates(emu)] == [2, 2, 1]


async def test_without_async_with_it_starts_lazily_then_refuses_after_close(
    emu: AnthropicEmulator, clock: StepClock, sdk: Any
) -> None:
    fleet = FleetDispatcher(sdk, clock=clock, jitter=0.0)
    reply = await run_until(clock, fleet.submit_batch(**_params("lazy")))
    assert isinstance(reply, Message)
    await run_until(clock, fleet.aclose())
    with pytest.raises(DispatcherClosed):
        await fleet.submit(**_params())


async def test_stream_is_refused_on_both_routes(make_fleet: Callable[..., FleetDispatcher]) -> None:
    fleet = make_fleet()
    for budget in (None, HOUR_MS):
        with pytest.raises(UnsupportedParams):
            await fleet.submit(latency_budget_ms=budget, **_params(stream=True))


async def test_a_queued_call_leaves_early_when_the_observed_turnaround_grows(
    make_fleet: Callable[..., FleetDispatcher], emu: AnthropicEmulator, clock: StepClock
) -> None:
    emu.batch_delay = 190.0
    fleet = make_fleet(policy=RoutingPolicy(batch_min_size=2, batch_window_ms=300_000))
    earlier = [asyncio.ensure_future(fleet.submit_batch(**_params(f"e{i}"))) for i in range(2)]  # at once
    await advance(clock, 10.0)
    # 300 s window + 120 s turnaround + 5 s reserve = 425 s: a 430 s budget may batch; its window ends at 310 s.
    late = asyncio.ensure_future(fleet.submit(latency_budget_ms=430_000, **_params("late")))
    await run_until(clock, asyncio.gather(*earlier))  # that batch ends after ~195 s: the turnaround grows
    reply = await run_until(clock, late)
    assert isinstance(reply, Message)
    first, second = creates(emu)
    assert second.at - first.at < 300.0  # it left before its window closed, to still make its deadline
    assert fleet.stats.batched_calls == 3


async def test_a_call_that_can_no_longer_make_it_goes_sync_before_its_deadline(
    make_fleet: Callable[..., FleetDispatcher], emu: AnthropicEmulator, clock: StepClock, capture: Capture
) -> None:
    emu.batch_delay = 3000.0  # the batch will not end in time
    fleet = make_fleet(policy=RoutingPolicy(batch_min_size=1))
    start = clock.monotonic()
    params = _params("urgent-ish", temperature=0.3, system="be brief", metadata={"user_id": "u1"})
    reply = await run_until(clock, fleet.submit(latency_budget_ms=200_000, **params))
    assert isinstance(reply, Message)
    assert clock.monotonic() - start < 200.0
    assert fleet.stats.fallbacks == 1
    assert len(endpoint(emu, "batch_cancel")) == 1  # nobody waits on that batch any more
    # The cancelled batch never ran it; the fallback replayed every create kwarg, model and temperature included.
    (sync,) = [p for p in capture.params if p.get("metadata") == {"user_id": "u1"}]
    assert sync == params


async def test_errored_results_are_typed_errors(
    make_fleet: Callable[..., FleetDispatcher], emu: AnthropicEmulator, clock: StepClock
) -> None:
    emu.faults.item_outcomes(errored=1.0, error_type="invalid_request_error")
    fleet = make_fleet()
    with pytest.raises(BatchItemErrored) as caught:
        await run_until(clock, fleet.submit_batch(**_params("bad")))
    assert caught.value.error_type == "invalid_request_error"
    stats = fleet.stats
    assert (stats.errors, stats.batched_calls, stats.fallbacks) == (1, 0, 0)


async def test_canceled_results_fall_back_to_a_message(
    make_fleet: Callable[..., FleetDispatcher], emu: AnthropicEmulator, clock: StepClock
) -> None:
    emu.faults.item_outcomes(canceled=1.0)
    fleet = make_fleet()
    reply = await run_until(clock, fleet.submit_batch(**_params("canceled")))
    assert isinstance(reply, Message)
    assert (fleet.stats.fallbacks, fleet.stats.batched_calls) == (1, 0)


async def test_on_batch_submitted_is_called_and_its_failure_is_logged(
    make_fleet: Callable[..., FleetDispatcher],
    emu: AnthropicEmulator,
    clock: StepClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[PendingBatch] = []

    def callback(pending: PendingBatch) -> None:
        seen.append(pending)
        raise RuntimeError("observer bug")

    fleet = make_fleet(on_batch_submitted=callback)
    with caplog.at_level(logging.ERROR, logger="lore_batch"):
        reply = await run_until(clock, fleet.submit_batch(**_params("observed")))
    assert isinstance(reply, Message)
    (pending,) = seen
    assert (pending.batch_id, pending.request_count) == (creates(emu)[0].batch_id, 1)
    assert "on_batch_submitted callback failed" in caplog.text
    assert "RuntimeError: observer bug" in caplog.text  # with its traceback


async def test_sync_errors_pass_through_and_every_call_is_logged(
    make_fleet: Callable[..., FleetDispatcher],
    emu: AnthropicEmulator,
    clock: StepClock,
    cost_log: MemoryCostLog,
) -> None:
    import anthropic

    emu.faults.fail_next("messages", 400)
    fleet = make_fleet()
    with pytest.raises(anthropic.BadRequestError):
        await fleet.submit(**_params("refused"))
    await fleet.submit(tag="interactive", **_params("fine"))
    await run_until(clock, fleet.submit_batch(**_params("later")))
    rows = [(row.route, row.status, row.tag) for row in cost_log.entries]
    assert rows == [("sync", "error", None), ("sync", "ok", "interactive"), ("batch", "ok", "background")]
    assert fleet.stats.errors == 1


async def test_with_a_store_every_call_lands_in_the_request_log_table(
    emu: AnthropicEmulator, clock: StepClock, sdk: Any, migrated_url: str
) -> None:
    fleet = FleetDispatcher(sdk, clock=clock, jitter=0.0, store=migrated_url)
    log = fleet.cost_log
    assert isinstance(log, SqlCostLog)
    clock.busy = lambda: log.busy > 0  # type: ignore[attr-defined]  # hold the clock while a row is written
    await fleet.submit(tag="chat", **_params("now"))
    await run_until(clock, fleet.submit_batch(**_params("later")))
    await run_until(clock, fleet.aclose())
    async with SqlCostLog(migrated_url) as log:
        rows = await log.rows()
    assert sorted((row.route, row.tag) for row in rows) == [("batch", "background"), ("sync", "chat")]
