"""Idle: the post-idle compact after a gap of the cache TTL, and the idle watcher's once-per-period work."""

from __future__ import annotations

from typing import Any

from lore_core.tokens import estimate_message

from .conftest import Rig
from .test_lore import chat

TTL = 300.0  # the 5-minute prompt cache


async def warmed(rig: Rig, turns: int = 30) -> tuple[Any, list[dict[str, Any]]]:
    """A session with history, usage reported and distillations made (idle work ran once)."""
    session = rig.lore.session("s1", model="claude-sonnet-4-6")
    messages = chat(turns, words=40, tool_output_lines=30)
    await session.transform(messages)
    await session.record_usage({"input_tokens": 20_000, "output_tokens": 100}, stop_reason="end_turn")
    await rig.lore.run_idle_work("s1")
    assert await rig.lore.store.list_distillations("s1"), "idle work distilled the history"
    return session, messages


async def test_after_an_idle_gap_the_next_turn_compacts_to_20_percent_raw(rig: Rig) -> None:
    session, messages = await warmed(rig)
    rig.clock.advance(TTL + 1)
    resumed = session.on_idle_resume()
    assert resumed.triggered is True
    assert resumed.idle_ms >= TTL * 1000
    view = session.inspect()
    assert view is not None
    assert view.post_idle_compact is True
    assert view.came_out_of_idle is True

    messages = [*messages, {"role": "assistant", "content": "Done."}, {"role": "user", "content": "And now?"}]
    result = await session.transform(messages)
    assert result.layer >= 1
    current_turn = estimate_message(messages[-1])
    assert result.raw_tokens - current_turn <= 0.20 * result.usable
    after = session.inspect()
    assert after is not None
    assert after.post_idle_compact is False  # one-shot: consumed
    assert after.came_out_of_idle is False


async def test_transform_runs_the_idle_check_itself(rig: Rig) -> None:
    session, messages = await warmed(rig)
    rig.clock.advance(TTL + 1)
    messages = [*messages, {"role": "assistant", "content": "Done."}, {"role": "user", "content": "Next?"}]
    result = await session.transform(messages)  # no on_idle_resume call by the host
    assert result.layer >= 1


async def test_skip_compact_keeps_housekeeping_without_the_compact_layer(rig: Rig) -> None:
    session, messages = await warmed(rig, turns=3)
    rig.clock.advance(TTL + 1)
    resumed = session.on_idle_resume(skip_compact=True)
    assert resumed.triggered is True
    view = session.inspect()
    assert view is not None
    assert view.post_idle_compact is False
    assert view.came_out_of_idle is True
    messages = [*messages, {"role": "assistant", "content": "Done."}, {"role": "user", "content": "Next?"}]
    result = await session.transform(messages)
    assert result.layer == 0


async def test_a_short_gap_does_not_trigger(rig: Rig) -> None:
    session, _ = await warmed(rig, turns=3)
    rig.clock.advance(TTL - 10)
    assert session.on_idle_resume().triggered is False


async def test_the_watcher_runs_idle_work_once_per_idle_period(rig: Rig) -> None:
    session = rig.lore.session("s1", model="claude-sonnet-4-6")
    messages = chat(4)
    await session.transform(messages)
    await session.record_usage({"input_tokens": 3_000, "output_tokens": 40}, stop_reason="end_turn")
    config = rig.lore.config
    rig.clock.advance(config.idle_timeout_seconds - 1)
    assert await rig.lore.watch_once() == []
    rig.clock.advance(2)
    assert await rig.lore.watch_once() == ["s1"]
    await rig.lore.scheduler.run_until_idle()
    assert await rig.lore.store.count_messages("s1", undistilled_only=True) == 0
    assert await rig.lore.watch_once() == []  # not again in the same idle period
    assert {call.urgent for call in rig.llm.calls} == {False}
    # a new turn, a little later, opens a new period
    rig.clock.advance(5)
    messages = [*messages, {"role": "assistant", "content": "ok"}, {"role": "user", "content": "more"}]
    await session.transform(messages)
    await session.record_usage({"input_tokens": 3_100, "output_tokens": 40}, stop_reason="end_turn")
    rig.clock.advance(config.idle_timeout_seconds + 1)
    assert await rig.lore.watch_once() == ["s1"]
    await rig.lore.scheduler.run_until_idle()


async def test_the_watcher_waits_while_a_tool_call_is_pending(rig: Rig) -> None:
    session = rig.lore.session("s1", model="claude-sonnet-4-6")
    await session.transform(chat(4))
    await session.record_usage({"input_tokens": 3_000, "output_tokens": 40}, stop_reason="tool_use")
    config = rig.lore.config
    rig.clock.advance(config.idle_timeout_seconds + 5)
    assert await rig.lore.watch_once() == []
    rig.clock.advance(config.tool_use_idle_seconds)
    assert await rig.lore.watch_once() == ["s1"]
    await rig.lore.scheduler.run_until_idle()


async def test_flushing_state_keeps_what_idle_work_wrote(rig: Rig, migrated_url: str) -> None:
    from lore_core.store import SqlSessionStore

    session = rig.lore.session("s1", model="claude-sonnet-4-6")
    await session.transform(chat(4))  # 5 human turns: curation is due at idle
    await session.record_usage({"input_tokens": 3_000, "output_tokens": 40}, stop_reason="end_turn")
    report = await rig.lore.run_idle_work("s1")
    assert report.curation is not None
    assert report.curation.skipped is None
    view = session.inspect()
    assert view is not None
    assert view.turns_since_curation == 0
    assert view.last_curated_at is not None
    await rig.lore.close()  # flushes the in-memory state
    async with await SqlSessionStore.open(migrated_url) as store:
        state = await store.load_state("s1")
    assert state is not None
    assert state.last_curated_at is not None
    assert state.turns_since_curation == 0
    assert state.idle_done_at is not None
