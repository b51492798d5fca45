"""The recall tool: its definition, and ``answer_recall`` turning a ``tool_use`` (dict or SDK block) into the
matching ``tool_result`` that the Messages API accepts (checked against the emulator's request validation)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from anthropic.types import ToolUseBlock

from lore_batch.emulator import AnthropicEmulator
from lore_core import ConfigError, LoreSession, answer_recall, recall_tool, render_recall
from lore_core.annotations import RECALL_TOOL
from lore_core.clock import ManualClock
from lore_core.errors import StoreError
from lore_core.store import KnowledgeRecord

from .conftest import START, Rig

MODEL = "claude-sonnet-4-6"


async def _session(rig: Rig) -> LoreSession:
    session = rig.lore.session("s1", model=MODEL, project="alpha")
    await session.transform(
        [
            {"role": "user", "content": "run the deploy"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "bash", "input": {"cmd": "deploy --env staging"}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "rollout id r-7781 finished in 93 s"},
            ]},
            {"role": "assistant", "content": "Deployed."},
            {"role": "user", "content": "thanks"},
        ]
    )  # fmt: skip
    await rig.lore.store.upsert_knowledge(
        KnowledgeRecord(
            id="0190c000-0000-7000-8000-000000000001", project="alpha", category="gotcha",
            title="Rollout timing", content="a rollout takes about 90 s", confidence=0.9,
            created_at=START, updated_at=START,
        )
    )  # fmt: skip
    return session


def test_the_tool_definition_is_a_complete_anthropic_tool_schema() -> None:
    tool = recall_tool()
    assert tool["name"] == RECALL_TOOL == "recall"
    assert "[output omitted: ...]" in tool["description"]
    assert "condensed" in tool["description"]
    schema = tool["input_schema"]
    assert schema["type"] == "object"
    assert schema["required"] == ["query"]
    assert schema["properties"]["query"]["type"] == "string"
    assert schema["properties"]["limit"] == {
        "type": "integer", "minimum": 1, "maximum": 20, "description": "How many results to return (default 10).",
    }  # fmt: skip
    # a fresh dict every call: a host may add cache_control without changing the next one
    tool["cache_control"] = {"type": "ephemeral"}
    assert "cache_control" not in recall_tool()
    assert recall_tool() == recall_tool()


async def test_a_tool_use_round_trips_into_its_tool_result(rig: Rig) -> None:
    session = await _session(rig)
    block = {"type": "tool_use", "id": "toolu_recall_1", "name": "recall", "input": {"query": "rollout id"}}
    before = copy.deepcopy(block)
    result = await answer_recall(session, block)
    assert block == before
    assert set(result) == {"type", "tool_use_id", "content"}
    assert (result["type"], result["tool_use_id"]) == ("tool_result", "toolu_recall_1")
    text = result["content"]
    assert text.startswith('2 results for "rollout id" in this session, best first:')
    stored = await rig.lore.store.list_messages("s1")
    assert f"[1] message m:{stored[2].id[:8]}, user, tool output, " in text
    assert "[result:bash] rollout id r-7781 finished in 93 s" in text
    assert "[2] knowledge k:0190c000, gotcha, project alpha, 2026-05-01 14:00 UTC" in text
    assert "Rollout timing: a rollout takes about 90 s" in text

    # the SDK's block object works the same way, and limit is honoured
    sdk = ToolUseBlock(
        id="toolu_recall_2", name="recall", input={"query": "rollout", "limit": 1}, type="tool_use"
    )
    one = await answer_recall(session, sdk)
    assert one["tool_use_id"] == "toolu_recall_2"
    assert one["content"].startswith('1 result for "rollout"')


async def test_the_messages_api_accepts_the_tool_and_the_result(rig: Rig) -> None:
    session = await _session(rig)
    call = {"type": "tool_use", "id": "toolu_recall_9", "name": "recall", "input": {"query": "rollout id"}}
    result = await answer_recall(session, call)
    emulator = AnthropicEmulator(clock=ManualClock(auto_advance=True))
    async with emulator.client() as client:
        reply = await client.messages.create(
            model=MODEL,
            max_tokens=64,
            tools=[recall_tool()],
            messages=[
                {"role": "user", "content": "what was the rollout id?"},
                {"role": "assistant", "content": [call]},
                {"role": "user", "content": [result]},
            ],  # type: ignore[list-item]
        )
    assert reply.type == "message"


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        ({}, "non-empty 'query'"),
        ({"query": "   "}, "non-empty 'query'"),
        ({"query": 42}, "non-empty 'query'"),
        ({"query": "x" * 1_001}, "too long"),
        ({"query": "rollout", "limit": "5"}, "'limit' must be an integer"),
        ({"query": "rollout", "limit": True}, "'limit' must be an integer"),
        ({"query": "rollout", "limit": 0}, "between 1 and 20"),
        ({"query": "rollout", "limit": 21}, "between 1 and 20"),
        ("rollout", "object input"),
    ],
)
async def test_bad_input_is_answered_with_an_error_result(rig: Rig, arguments: Any, says: str) -> None:
    session = await _session(rig)
    result = await answer_recall(
        session, {"type": "tool_use", "id": "t1", "name": "recall", "input": arguments}
    )
    assert result["is_error"] is True
    assert result["tool_use_id"] == "t1"
    assert result["type"] == "tool_result"
    assert says in result["content"]


async def test_a_block_that_is_not_a_recall_call_is_a_host_error(rig: Rig) -> None:
    session = await _session(rig)
    with pytest.raises(ConfigError):
        await answer_recall(
            session, {"type": "tool_use", "id": "t1", "name": "bash", "input": {"query": "x"}}
        )
    with pytest.raises(ConfigError):
        await answer_recall(session, {"type": "tool_use", "name": "recall", "input": {"query": "x"}})


async def test_no_hits_and_store_failures_give_useful_results(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = await _session(rig)
    empty = await answer_recall(session, {"id": "t1", "name": "recall", "input": {"query": "kubernetes"}})
    assert "is_error" not in empty
    assert empty["content"].startswith('No results for "kubernetes" in this session.')

    async def broken(*args: object, **kwargs: object) -> None:
        raise StoreError("search text")

    monkeypatch.setattr(session, "recall", broken)
    failed = await answer_recall(session, {"id": "t2", "name": "recall", "input": {"query": "rollout"}})
    assert failed["is_error"] is True
    assert "unavailable" in failed["content"]


async def test_render_names_other_sessions_and_budget_cuts(rig: Rig) -> None:
    session = await _session(rig)
    other = rig.lore.session("s2", model=MODEL, project="alpha")
    await other.transform([{"role": "user", "content": "the rollout id of yesterday was r-7700"}])
    result = await session.recall("rollout id", scope="project", max_chars=120)
    text = render_recall(result)
    assert "in project alpha, best first:" in text
    assert ", session s2" in text
    assert result.omitted >= 1
    assert "more left out to keep this short" in text
    full = render_recall(result, full_ids=True)
    assert result.hits[0].source.message_id in full  # type: ignore[union-attr]
