"""``Lore`` and ``LoreSession`` end to end on real components (SQLite and PostgreSQL)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from lore_core import ClosedError, InvalidMessagesError, LoreConfig, SessionNotFoundError
from lore_core.invariants import check_context

from .conftest import Rig


def chat(turns: int, *, words: int = 20, tool_output_lines: int = 5) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for turn in range(turns):
        tool_id = f"toolu_{turn:04d}"
        messages += [
            {"role": "user", "content": f"Turn {turn}: fix src/mod{turn}.py " + "please " * words},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": f"Look at mod{turn}.", "signature": f"sig-{turn}"},
                    {
                        "type": "tool_use",
                        "id": tool_id,
                        "name": "read",
                        "input": {"path": f"src/mod{turn}.py"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": tool_id,
                        "content": "\n".join(f"line {n} of mod{turn}" for n in range(tool_output_lines)),
                    }
                ],
            },
            {"role": "assistant", "content": f"Fixed src/mod{turn}.py: the loop ran {turn + 2} times."},
        ]
    messages.append({"role": "user", "content": "What next?"})
    return messages


async def test_a_short_conversation_passes_through_at_layer_0(rig: Rig) -> None:
    session = rig.lore.session("s1", model="claude-sonnet-4-6")
    messages = chat(3)
    snapshot = copy.deepcopy(messages)
    result = await session.transform(messages, system="You are terse.")
    assert result.layer == 0
    assert result.messages is messages
    assert messages == snapshot
    assert result.system[0] == {"type": "text", "text": "You are terse."}
    assert result.distilled_tokens == 0
    assert result.raw_tokens > 0
    assert result.total_tokens == result.distilled_tokens + result.raw_tokens
    assert result.unsustainable is False
    assert await rig.lore.store.count_messages("s1") == len(messages)
    # the same history again stores nothing new
    await session.transform(messages, system="You are terse.")
    assert await rig.lore.store.count_messages("s1") == len(messages)


async def test_invalid_input_raises_a_typed_error_and_stores_nothing(rig: Rig) -> None:
    session = rig.lore.session("s1", model="claude-sonnet-4-6")
    bad = [{"role": "user", "content": "hi"}, {"role": "user", "content": "again"}]
    with pytest.raises(InvalidMessagesError) as caught:
        await session.transform(bad)
    assert caught.value.index == 1
    assert await rig.lore.store.count_messages("s1") == 0


async def test_record_usage_calibrates_per_session_and_model(rig: Rig) -> None:
    one = rig.lore.session("s1", model="claude-sonnet-4-6")
    two = rig.lore.session("s2", model="claude-sonnet-4-6")
    await one.transform(chat(2))
    await two.transform(chat(2))
    view = one.inspect()
    assert view is not None
    assert view.calibrated is False
    await one.record_usage({"input_tokens": 900, "output_tokens": 50}, stop_reason="end_turn")
    view = one.inspect()
    assert view is not None
    assert view.calibrated is True
    other = two.inspect()
    assert other is not None
    assert other.calibrated is False  # nothing shared between sessions
    rig.lore.session("s1", model="claude-opus-4-6")  # a model switch: uncalibrated until its usage
    switched = one.inspect()
    assert switched is not None
    assert switched.calibrated is False


# No incremental trigger here, so the distillation that follows is the urgent one.
@pytest.mark.parametrize("config", [LoreConfig(max_segment_tokens=10**9)])
async def test_a_tight_window_compresses_and_keeps_the_request_valid(rig: Rig) -> None:
    session = rig.lore.session(
        "s1", model="claude-sonnet-4-6", context_window=40_000, max_output_tokens=4_000
    )
    messages = chat(60, words=60, tool_output_lines=40)
    result = await session.transform(messages)
    assert result.layer >= 1
    check_context(result.messages)
    assert result.total_tokens < 40_000
    thinking = [
        block
        for message in result.messages
        if isinstance(message["content"], list)
        for block in message["content"]
        if block.get("type") == "thinking"
    ]
    originals = {id(block) for m in messages if isinstance(m["content"], list) for block in m["content"]}
    assert all(id(block) in originals for block in thinking)  # the caller's thinking blocks, untouched
    await rig.lore.scheduler.run_until_idle()
    calls = [call for call in rig.llm.calls if call.worker == "distill"]
    assert calls, "the high layer raised the urgent flag: an urgent run followed"
    assert all(call.urgent for call in calls)
    assert await rig.lore.store.count_messages("s1", undistilled_only=True) == 0


async def test_run_idle_work_of_an_unknown_session_is_an_error(rig: Rig) -> None:
    with pytest.raises(SessionNotFoundError):
        await rig.lore.run_idle_work("nope")


async def test_inspect_session_state_never_creates_state(rig: Rig) -> None:
    assert rig.lore.inspect_session_state("s9") is None
    session = rig.lore.session("s9", model="claude-sonnet-4-6")
    assert rig.lore.inspect_session_state("s9") is None  # not loaded until an awaited call
    await session.transform(chat(1))
    view = rig.lore.inspect_session_state("s9")
    assert view is not None
    assert view.last_layer == 0
    assert view.last_turn_at == rig.clock.now()


async def test_the_lore_refuses_use_after_close(migrated_url: str, rig: Rig) -> None:
    session = rig.lore.session("s1", model="claude-sonnet-4-6")
    await session.transform(chat(1))
    await rig.lore.close()
    with pytest.raises(ClosedError):
        await session.transform(chat(1))
    with pytest.raises(ClosedError):
        rig.lore.session("s2", model="claude-sonnet-4-6")


@pytest.mark.parametrize("config", [LoreConfig(knowledge_enabled=False)])
async def test_without_knowledge_the_system_is_the_callers(rig: Rig) -> None:
    session = rig.lore.session("s1", model="claude-sonnet-4-6")
    result = await session.transform(chat(1), system=[{"type": "text", "text": "Be brief."}])
    assert result.system == [{"type": "text", "text": "Be brief."}]


async def test_five_cache_busts_in_a_row_flag_the_session_unsustainable(rig: Rig) -> None:
    session = rig.lore.session("s1", model="claude-sonnet-4-6")
    messages = chat(2)
    result = await session.transform(messages)
    await session.record_usage({"input_tokens": 100, "cache_read_input_tokens": 9_000, "output_tokens": 5})
    busts = []
    for turn in range(5):
        messages = [
            *messages,
            {"role": "assistant", "content": f"ok {turn}"},
            {"role": "user", "content": "go"},
        ]
        result = await session.transform(messages)
        busts.append(result.unsustainable)
        await session.record_usage(
            {
                "input_tokens": 100,
                "cache_creation_input_tokens": 9_000,
                "cache_read_input_tokens": 0,
                "output_tokens": 5,
            }
        )
    view = session.inspect()
    assert view is not None
    assert view.consecutive_busts == 5
    messages = [*messages, {"role": "assistant", "content": "ok"}, {"role": "user", "content": "go"}]
    result = await session.transform(messages)
    assert busts == [False] * 5
    assert result.unsustainable is True
    assert result.layer == 0  # flagged on every return path, layer 0 included
