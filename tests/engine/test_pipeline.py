"""The whole worker pipeline on real components: a real coding session through storage, distillation,
meta-distillation, curation and validation, on the emulator, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from lore_core.config import LoreConfig
from lore_core.ingest import MessageLog
from lore_core.messages import has_tool_use
from lore_core.transcripts import load_shared_session

from .conftest import Engine

WORKERS = {"distill", "meta-distill", "curate", "validate"}


async def replay(engine: Engine, path: Path, session_id: str = "sentry") -> int:
    """Feed the session turn by turn at its recorded times; run idle work where the recording went idle.

    Returns the number of idle periods seen.
    """
    config = engine.context.config
    transcript = load_shared_session(path)
    timed = transcript.messages
    messages = transcript.anthropic_messages
    start = timed[0].at
    engine.clock.advance(max(0.0, start.timestamp() - engine.clock.now()))
    await engine.store.ensure_session(session_id, "sentry-cli", "claude-sonnet-4-6", start)
    log = MessageLog(engine.store)
    idles = 0
    for index, item in enumerate(timed):
        engine.clock.advance(max(0.0, item.at.timestamp() - engine.clock.now()))
        await log.record(session_id, messages[: index + 1], now=item.at)
        human = int(item.message["role"] == "user")
        await engine.scheduler.after_store(session_id, new_human_turns=human)
        await engine.scheduler.run_until_idle()
        following = timed[index + 1].at if index + 1 < len(timed) else None
        gap = (following - item.at) if following is not None else timedelta(0)
        # Idle as the watcher sees it: the model answered (no tool call pending) and nothing came for a while;
        # a pending tool call counts as idle only after tool_use_idle_seconds.
        waiting_on_tool = has_tool_use(item.message) or item.message["role"] == "user"
        limit = config.tool_use_idle_seconds if waiting_on_tool else config.idle_timeout_seconds
        if gap.total_seconds() >= limit:
            # The idle watcher's pass: meta waits until the prompt cache would be cold.
            idles += 1
            await engine.scheduler.idle_work(
                session_id, run_meta=gap.total_seconds() >= config.idle_resume_seconds
            )
    return idles


async def check_worker_calls(engine: Engine) -> None:
    """Every call carried the session id and a worker name, none was urgent, each was recorded."""
    calls = engine.llm.calls
    assert calls
    assert {call.worker for call in calls} <= WORKERS
    assert {call.session_id for call in calls} == {"sentry"}
    assert not any(call.urgent for call in calls)
    assert {call.temperature for call in calls} == {0}
    assert {call.model for call in calls} == {"claude-sonnet-4-6"}
    assert await engine.store.count_worker_runs(session_id="sentry") == len(calls)
    assert await engine.store.count_worker_runs(session_id="sentry", status="ok") == len(calls)


async def check_everything_distilled(engine: Engine) -> None:
    store = engine.store
    assert await store.count_messages("sentry") > 0
    assert await store.count_messages("sentry", undistilled_only=True) == 0
    every = await store.list_distillations("sentry", include_archived=True)
    # every message is referenced by some row (archived ones included): nothing was orphaned
    referenced = {source for row in every for source in row.source_ids}
    assert {m.id for m in await store.list_messages("sentry", with_blocks=False)} <= referenced
    # retention was scored on every gen-0 row
    assert all(row.retention_score is not None for row in every if row.generation == 0)


async def test_the_real_session_distills_completely_with_default_settings(
    engine: Engine, shared_session_path: Path
) -> None:
    idles = await replay(engine, shared_session_path)
    report = await engine.scheduler.idle_work("sentry")  # the forced idle run at the end
    await engine.scheduler.run_until_idle()
    assert report.errors == []
    assert idles > 0
    await check_everything_distilled(engine)
    await check_worker_calls(engine)
    rows = await engine.store.list_distillations("sentry")
    # 113K tokens make 17 gen-0 rows here: under the default meta threshold of 20, so no meta round yet
    assert all(row.generation == 0 for row in rows)
    assert len(rows) < engine.context.config.meta_threshold
    assert {"distill", "curate"} <= {call.worker for call in engine.llm.calls}
    assert await engine.store.list_knowledge("sentry-cli")


@pytest.mark.parametrize("config", [LoreConfig(meta_threshold=6)])
async def test_the_real_session_ends_with_one_meta_row_and_at_most_five_gen0_rows(
    engine: Engine, shared_session_path: Path
) -> None:
    # The session yields 17 gen-0 rows; a threshold of 6 makes the replay run several meta rounds.
    await replay(engine, shared_session_path)
    report = await engine.scheduler.idle_work("sentry")
    await engine.scheduler.run_until_idle()
    assert report.errors == []
    await check_everything_distilled(engine)
    await check_worker_calls(engine)
    store = engine.store
    current = await store.list_distillations("sentry")
    gen0 = [row for row in current if row.generation == 0]
    metas = [row for row in current if row.generation > 0]
    assert len(gen0) <= 5
    assert len(metas) == 1
    every = await store.list_distillations("sentry", include_archived=True)
    all_metas = sorted((row for row in every if row.generation > 0), key=lambda row: row.seq)
    assert len(all_metas) >= 2, "several meta rounds ran"
    # each round superseded the previous meta row, which is archived; generations grow
    assert all(row.archived for row in all_metas[:-1])
    assert [row.generation for row in all_metas] == sorted({row.generation for row in all_metas})
    assert all_metas[-1].supersedes == all_metas[-2].id
    # the current meta covers everything archived
    archived_sources = {s for row in every if row.archived and row.generation == 0 for s in row.source_ids}
    assert archived_sources <= set(metas[0].source_ids)
    assert "meta-distill" in {call.worker for call in engine.llm.calls}
