"""``session.recall`` and ``lore.recall`` end to end on SQLite and PostgreSQL: facts that only archived history
or a stripped tool output still holds, query expansion and its fallbacks, and scopes that never widen unless
asked."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from lore_core import (
    ConfigError,
    DistillationSource,
    KnowledgeSource,
    Lore,
    LoreConfig,
    LoreSession,
    MessageSource,
    SessionNotFoundError,
    recall_tool,
)
from lore_core.annotations import RECALL_HINT
from lore_core.errors import LLMUnavailableError
from lore_core.knowledge import LAYER_NOTE, LAYER_NOTE_RECALL
from lore_core.store import DistillationRecord, KnowledgeRecord, MessageRecord

from .conftest import START, Rig, ScriptedLLM

MODEL = "claude-sonnet-4-6"
FACT = "DEPLOY_KEY fingerprint SHA256:q9Zt7 for host build-7.internal"


def build_chat(*, fact_turn: int = 7, current_lines: int = 850) -> list[dict[str, Any]]:
    """Eight finished turns with 60-line tool outputs (``FACT`` in one of them), then a current turn whose
    large test run leaves room for older outputs only when they are stripped (layer 2 on a 40,000 window)."""
    messages: list[dict[str, Any]] = []
    for turn in range(8):
        tool_id = f"toolu_{turn:03d}"
        output = "\n".join(f"log line {n} of run {turn}" for n in range(60))
        if turn == fact_turn:
            output += "\n" + FACT
        messages += [
            {"role": "user", "content": f"step {turn}: run the build"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": tool_id, "name": "bash", "input": {"cmd": f"make step{turn}"}},
            ]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_id, "content": output}]},
            {"role": "assistant", "content": f"Step {turn} done."},
        ]  # fmt: skip
    run = "\n".join(f"tests/test_{n}.py::test_case_{n} PASSED" for n in range(current_lines))
    messages += [
        {"role": "user", "content": "now run the whole test suite"},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_big", "name": "bash", "input": {"cmd": "pytest"}},
        ]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_big", "content": run}]},
    ]  # fmt: skip
    return messages


def _result_of(messages: Any, tool_use_id: str) -> Any:
    for message in messages:
        for block in message["content"] if isinstance(message["content"], list) else ():
            if block.get("type") == "tool_result" and block["tool_use_id"] == tool_use_id:
                return block["content"]
    raise AssertionError(f"{tool_use_id} is not in the window")


async def test_a_fact_in_a_stripped_tool_output_is_found_with_its_message(rig: Rig) -> None:
    session = rig.lore.session("s1", model=MODEL, context_window=40_000, max_output_tokens=1_000)
    chat = build_chat()
    result = await session.transform(chat, tools=[recall_tool()])
    assert result.layer >= 2
    sent = json.dumps(list(result.messages))
    assert "q9Zt7" not in sent
    # the transform stripped that output and, since the model has the recall tool, says where to look
    assert _result_of(result.messages, "toolu_007") == f"[output omitted: bash, 61 lines]{RECALL_HINT}"
    assert result.system[-1] == {"type": "text", "text": LAYER_NOTE_RECALL}

    found = await session.recall("deploy key fingerprint for build-7")
    top = found.hits[0]
    assert isinstance(top.source, MessageSource)
    stored = {m.position: m for m in await rig.lore.store.list_messages("s1")}
    fact_message = stored[30]  # turn 7's tool_result
    assert top.source == MessageSource(
        session_id="s1", message_id=fact_message.id, position=30, role="user", kind="tool_results",
        created_at=fact_message.created_at, distilled=False,
    )  # fmt: skip
    assert FACT in top.text
    assert top.truncated
    assert found.expansion == "off"
    assert rig.llm.recall_calls == []


async def test_without_the_recall_tool_the_notes_do_not_mention_it(rig: Rig) -> None:
    session = rig.lore.session("s1", model=MODEL, context_window=40_000, max_output_tokens=1_000)
    result = await session.transform(build_chat())
    assert result.layer >= 2
    assert _result_of(result.messages, "toolu_007") == "[output omitted: bash, 61 lines]"
    assert result.system[-1] == {"type": "text", "text": LAYER_NOTE}


@pytest.mark.parametrize("config", [LoreConfig(strip_hint=" [see the host's log]")])
async def test_a_hint_the_host_configured_wins_over_the_recall_hint(rig: Rig) -> None:
    session = rig.lore.session("s1", model=MODEL, context_window=40_000, max_output_tokens=1_000)
    result = await session.transform(build_chat(), tools=[recall_tool()])
    assert _result_of(result.messages, "toolu_007") == "[output omitted: bash, 61 lines] [see the host's log]"


async def _archived_history(lore: Lore) -> tuple[LoreSession, DistillationRecord, DistillationRecord]:
    """Four messages, a generation-0 row over them (the fact), then a reflector row that archives it and
    keeps only a vague line: afterwards only archived history holds the port."""
    session = lore.session("s1", model=MODEL, project="alpha")
    await session.transform(
        [
            {"role": "user", "content": "where does the staging database listen?"},
            {"role": "assistant", "content": "It listens on port 6543 since the move."},
            {"role": "user", "content": "ok, and the cache?"},
            {"role": "assistant", "content": "Redis, default settings."},
            {"role": "user", "content": "thanks"},
        ]
    )
    stored = await lore.store.list_messages("s1")
    first = DistillationRecord(
        id="0190a000-0000-7000-8000-000000000001", session_id="s1", project="alpha", generation=0,
        kind="observer", observations="* red (14:01) staging database moved to port 6543",
        source_ids=tuple(m.id for m in stored[:4]), source_tokens=40, token_count=12, r_compression=1.0,
        created_at=START,
    )  # fmt: skip
    assert await lore.store.insert_distillation_and_mark(first) is not None
    meta = DistillationRecord(
        id="0190a000-0000-7000-8000-000000000002", session_id="s1", project="alpha", generation=1,
        kind="reflector", observations="## Current State\n* staging environment set up",
        source_ids=first.source_ids, source_tokens=12, token_count=8, r_compression=1.0, created_at=START,
    )  # fmt: skip
    assert await lore.store.insert_meta_and_archive(meta, [first.id]) is not None
    return session, first, meta


async def test_a_fact_only_in_archived_history_is_found_with_its_sources(rig: Rig) -> None:
    session, first, meta = await _archived_history(rig.lore)
    live = await rig.lore.store.list_distillations("s1")  # what the prefix can show
    assert [row.id for row in live] == [meta.id]
    assert "6543" not in live[0].observations

    found = await session.recall("staging database port")
    said = next(hit for hit in found.hits if "6543" in hit.text and hit.source_type == "message")
    assert isinstance(said.source, MessageSource)
    assert said.source.distilled
    assert said.source.position == 1
    assert said.source.role == "assistant"
    assert "port 6543" in said.text
    summary = next(hit for hit in found.hits if "6543" in hit.text and hit.source_type == "distillation")
    assert summary.source == DistillationSource(
        session_id="s1", distillation_id=first.id, generation=0, seq=1, kind="observer", archived=True,
        created_at=START,
    )  # fmt: skip
    assert [hit.score for hit in found.hits] == sorted((hit.score for hit in found.hits), reverse=True)


@pytest.mark.parametrize("config", [LoreConfig(recall_expand=True)])
async def test_expansion_that_never_answers_falls_back_to_the_original_query(rig: Rig) -> None:
    rig.llm.hang = True
    session, _first, _ = await _archived_history(rig.lore)
    found = await session.recall("staging database port")
    # the original query's hits come back, the call was made as an urgent recall call and cancelled
    assert found.expansion == "timeout"
    assert found.queries == ("staging database port",)
    assert any(hit.source_type == "distillation" and "6543" in hit.text for hit in found.hits)
    (call,) = rig.llm.recall_calls
    assert (call.worker, call.session_id, call.urgent, call.temperature) == ("recall", "s1", True, 0)
    assert "<query>\nstaging database port\n</query>" in call.user
    assert rig.llm.cancelled == 1
    assert rig.clock.sleeps[-1] == 3.0  # the 3 s timeout, on the engine's clock: no real waiting
    (run,) = await rig.lore.store.list_worker_runs(session_id="s1", worker="recall")
    assert (run.status, run.error_type, run.urgent) == ("error", "timeout", True)


@pytest.mark.parametrize("config", [LoreConfig(recall_expand=True)])
async def test_a_failed_expansion_call_falls_back_to_the_original_query(rig: Rig) -> None:
    rig.llm.failure = LLMUnavailableError("overloaded")
    session, _, _ = await _archived_history(rig.lore)
    found = await session.recall("staging database port")
    assert found.expansion == "error"
    assert found.queries == ("staging database port",)
    assert any("6543" in hit.text for hit in found.hits)
    (run,) = await rig.lore.store.list_worker_runs(session_id="s1", worker="recall")
    assert (run.status, run.error_type) == ("error", "LLMUnavailableError")


async def test_expansion_adds_the_hits_of_the_other_queries(rig: Rig) -> None:
    rig.clock.auto_advance = False  # the timeout never fires: only the answer ends the race
    rig.llm.answer = "<queries>\n- replica lag\n2. staging database port\n</queries>"
    session, _, _ = await _archived_history(rig.lore)
    await rig.lore.store.insert_messages(
        [
            MessageRecord(
                id="f" * 32, session_id="s1", position=9, role="assistant", kind="assistant",
                text="the read replica lag is 4 seconds", content_hash="f" * 64, tokens=8, created_at=START,
            )
        ]
    )  # fmt: skip
    plain = await session.recall("staging database port", expand=False)
    assert plain.expansion == "off"
    assert not any("replica" in hit.text for hit in plain.hits)

    found = await session.recall("staging database port", expand=True)
    assert found.expansion == "ok"
    assert found.queries == ("staging database port", "replica lag")  # the repeat of the original is dropped
    assert any("replica lag is 4 seconds" in hit.text for hit in found.hits)
    assert found.terms == ("staging", "database", "port")  # the original query's terms
    (run,) = await rig.lore.store.list_worker_runs(session_id="s1", worker="recall")
    assert (run.status, run.input_tokens, run.output_tokens) == ("ok", 50, 10)


@pytest.fixture
async def real_clock_lore(migrated_url: str) -> AsyncIterator[tuple[Lore, ScriptedLLM]]:
    llm = ScriptedLLM(hang=True)
    config = LoreConfig(recall_expand=True, recall_expand_timeout_seconds=0.05)
    async with Lore.open(migrated_url, llm=llm, config=config, watch_idle=False) as lore:
        yield lore, llm


async def test_the_expansion_timeout_also_holds_on_the_real_clock(
    real_clock_lore: tuple[Lore, ScriptedLLM],
) -> None:
    lore, llm = real_clock_lore
    session, _, _ = await _archived_history(lore)
    found = await session.recall("staging database port")
    assert found.expansion == "timeout"
    assert llm.cancelled == 1
    assert any("6543" in hit.text for hit in found.hits)


async def _three_sessions(lore: Lore) -> None:
    store = lore.store
    for session_id, project in (("a1", "alpha"), ("a2", "alpha"), ("b1", "beta")):
        session = lore.session(session_id, model=MODEL, project=project)
        await session.transform(
            [{"role": "user", "content": f"the shared secret phrase, said in {session_id}"}]
        )
    for title, project in (("alpha", "alpha"), ("beta", "beta"), ("global", None)):
        await store.upsert_knowledge(
            KnowledgeRecord(
                id=f"0190b000-0000-7000-8000-00000000000{len(title)}", project=project, category="gotcha",
                title=f"shared secret phrase ({title})", content="kept long-term", confidence=0.9,
                created_at=START, updated_at=START,
            )
        )  # fmt: skip


def _owners(found: Any) -> set[str]:
    owners = set()
    for hit in found.hits:
        if isinstance(hit.source, KnowledgeSource):
            owners.add(f"k:{hit.source.project or 'global'}")
        else:
            owners.add(f"{hit.source_type[0]}:{hit.source.session_id}")
    return owners


async def test_recall_never_crosses_sessions_or_projects_unless_asked(rig: Rig) -> None:
    await _three_sessions(rig.lore)
    a1 = rig.lore.session("a1", model=MODEL)
    assert _owners(await a1.recall("shared secret phrase")) == {"m:a1", "k:alpha", "k:global"}
    assert _owners(await a1.recall("shared secret phrase", scope="project")) == {
        "m:a1", "m:a2", "k:alpha", "k:global",
    }  # fmt: skip
    assert _owners(await a1.recall("shared secret phrase", scope="project", project="beta")) == {
        "m:b1", "k:beta", "k:global",
    }  # fmt: skip
    assert _owners(await a1.recall("shared secret phrase", scope="all")) == {
        "m:a1", "m:a2", "m:b1", "k:alpha", "k:beta", "k:global",
    }  # fmt: skip
    with pytest.raises(ConfigError):
        await a1.recall("shared", scope="session", project="beta")


async def test_lore_recall_reads_a_stored_session_and_refuses_an_unknown_one(migrated_url: str) -> None:
    async with Lore.open(migrated_url, llm=ScriptedLLM(), watch_idle=False) as lore:
        await _three_sessions(lore)
    async with Lore.open(migrated_url, llm=ScriptedLLM(), watch_idle=False) as lore:
        found = await lore.recall("b1", "shared secret phrase")  # no handle in this process
        assert _owners(found) == {"m:b1", "k:beta", "k:global"}
        assert found.project == "beta"
        assert found.session_id == "b1"
        with pytest.raises(SessionNotFoundError):
            await lore.recall("nobody", "shared")
        handle = lore.session("a2", model=MODEL)
        assert _owners(await lore.recall("a2", "shared secret phrase")) == _owners(
            await handle.recall("shared secret phrase")
        )
