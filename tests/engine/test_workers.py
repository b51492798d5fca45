"""The worker services' rules (ENGINE.md 4-7 and the pitfalls), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import bindparam, text

from lore_batch.emulator import ResponderOutput
from lore_batch.emulator.workers import matches_curate, matches_distill
from lore_core.config import LoreConfig
from lore_core.ingest import MessageLog
from lore_core.store.records import KnowledgeRecord
from lore_core.workers import WorkerContext, WorkerScheduler

from .conftest import START, Engine
from .test_failures import coding_turns


async def store_turns(engine: Engine, turns: int, session_id: str = "s1") -> None:
    """Store ``turns`` coding turns, stamped with the engine clock's time, as a transform would."""
    if await engine.store.get_session(session_id) is None:
        await engine.store.ensure_session(session_id, "proj", "claude-sonnet-4-6", engine.context.now())
    await MessageLog(engine.store).record(session_id, coding_turns(turns), now=engine.context.now())


# -- triggers -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("config", [LoreConfig(max_segment_tokens=400, min_messages=5)])
async def test_the_incremental_trigger_fires_on_undistilled_tokens_only(engine: Engine) -> None:
    await store_turns(engine, 1)  # about 100 tokens: under the trigger
    await engine.scheduler.after_store("s1")
    await engine.scheduler.run_until_idle()
    assert engine.llm.calls == []
    await store_turns(engine, 6)  # now well past 400 undistilled tokens
    await engine.scheduler.after_store("s1")
    await engine.scheduler.run_until_idle()
    assert [call.worker for call in engine.llm.calls if call.worker == "distill"]
    assert {call.urgent for call in engine.llm.calls} == {False}
    assert "meta-distill" not in {call.worker for call in engine.llm.calls}  # incremental runs never run meta


async def test_a_non_forced_run_waits_for_min_messages(engine: Engine) -> None:
    await engine.store.ensure_session("s1", "proj", "claude-sonnet-4-6", START)
    await MessageLog(engine.store).record("s1", coding_turns(1)[:3], now=START)  # 3 messages < 5
    report = await engine.scheduler.distiller.run("s1")
    assert report.rounds == 0
    assert engine.llm.calls == []


@pytest.mark.parametrize("config", [LoreConfig(max_segment_tokens=300)])
async def test_one_oversized_message_triggers_and_is_distilled_alone(engine: Engine) -> None:
    await engine.store.ensure_session("s1", "proj", "claude-sonnet-4-6", START)
    huge = "Please review src/app/service.py carefully. " * 60  # one message over the cap
    await MessageLog(engine.store).record("s1", [{"role": "user", "content": huge}], now=START)
    report = await engine.scheduler.distiller.run("s1")
    assert report.observer_rows == 1
    assert await engine.store.count_messages("s1", undistilled_only=True) == 0


async def test_a_forced_run_turns_a_tiny_remainder_into_a_digest(engine: Engine) -> None:
    await engine.store.ensure_session("s1", "proj", "claude-sonnet-4-6", START)
    await MessageLog(engine.store).record(
        "s1", [{"role": "user", "content": "ok"}, {"role": "assistant", "content": "Sure."}], now=START
    )
    assert (await engine.scheduler.distiller.run("s1")).digest_rows == 0  # not forced: left to grow
    report = await engine.scheduler.distiller.run("s1", force=True)
    assert report.digest_rows == 1
    assert engine.llm.calls == []  # a digest needs no model call
    (row,) = await engine.store.list_distillations("s1")
    assert row.kind == "digest"
    assert row.observations.startswith("Date: ")


async def test_an_urgent_run_passes_urgent_to_distill_and_meta_but_never_to_validate(
    engine: Engine,
) -> None:
    await store_turns(engine, 3)

    def lossy(params: Mapping[str, Any]) -> ResponderOutput:
        return ResponderOutput.text(
            "<observations>\nDate: Feb 25, 2026\n* green (22:01) chatted\n</observations>"
        )

    engine.emulator.add_responder(matches_distill, lossy)
    engine.scheduler.request_distillation("s1", urgent=True)
    engine.scheduler.request_distillation("s1", urgent=True)  # at most one urgent run pending
    await engine.scheduler.run_until_idle()
    distills = [call for call in engine.llm.calls if call.worker == "distill"]
    assert len(distills) == 1
    assert distills[0].urgent is True
    validates = [call for call in engine.llm.calls if call.worker == "validate"]
    assert validates, "the lossy observation triggered a validate call"
    assert {call.urgent for call in validates} == {False}


async def test_a_trigger_during_a_run_sets_a_rerun_instead_of_a_second_run(engine: Engine) -> None:
    await store_turns(engine, 3)
    gate = asyncio.Event()
    real = engine.llm.inner

    class Held:
        background_slots = None

        async def prompt(self, *args: Any, **kwargs: Any) -> Any:
            await gate.wait()
            return await real.prompt(*args, **kwargs)

    engine.llm.inner = Held()  # type: ignore[assignment]
    engine.scheduler.request_distillation("s1")
    for _ in range(50):  # let the run reach its held call
        await asyncio.sleep(0)
    assert engine.scheduler.distiller.is_running("s1")
    engine.scheduler.request_distillation("s1")
    engine.scheduler.request_distillation("s1")
    assert len(engine.scheduler._tasks) == 1  # one run; the triggers became a rerun bit
    gate.set()
    await engine.scheduler.run_until_idle()
    assert await engine.store.count_messages("s1", undistilled_only=True) == 0


async def test_another_process_holding_the_lease_skips_the_run(engine: Engine) -> None:
    await store_turns(engine, 3)
    now = engine.context.now()
    assert await engine.store.try_take_lease("s1", "other-host:1:abc", now + timedelta(minutes=10), now)
    report = await engine.scheduler.distiller.run("s1", force=True)
    assert report.skipped == "lease held by another process"
    assert engine.llm.calls == []
    assert await engine.store.release_lease("s1", "other-host:1:abc")
    assert (await engine.scheduler.distiller.run("s1", force=True)).observer_rows == 1


async def test_two_engines_on_one_store_never_distill_a_message_twice(engine: Engine) -> None:
    await store_turns(engine, 6)
    second = WorkerScheduler(
        WorkerContext(store=engine.store, llm=engine.llm, config=engine.context.config, clock=engine.clock)
    )
    await asyncio.gather(
        engine.scheduler.distiller.run("s1", force=True), second.distiller.run("s1", force=True)
    )
    rows = await engine.store.list_distillations("s1")
    sources = [source for row in rows for source in row.source_ids]
    assert len(sources) == len(set(sources)) == 24
    assert await engine.store.count_messages("s1", undistilled_only=True) == 0


async def test_crash_repair_reopens_distilled_messages_no_row_references(engine: Engine) -> None:
    await store_turns(engine, 3)
    messages = await engine.store.list_messages("s1", with_blocks=False)
    orphans = [m.id for m in messages[4:8]]
    # Fault injection: marks without a row (what a crash between two separate writes would leave).
    async with engine.store.engine.begin() as connection:
        await connection.execute(
            text("UPDATE messages SET distilled = :yes WHERE session_id = 's1' AND id IN :ids").bindparams(
                bindparam("ids", expanding=True)
            ),
            {"yes": True, "ids": orphans},
        )
    assert await engine.store.count_messages("s1", undistilled_only=True) == 8
    await engine.scheduler.distiller.run("s1", force=True)
    assert await engine.store.count_messages("s1", undistilled_only=True) == 0
    rows = await engine.store.list_distillations("s1")
    assert set(orphans) <= {source for row in rows for source in row.source_ids}


# -- validation -----------------------------------------------------------------------------------------


async def test_a_low_retention_row_gets_one_validate_call_that_appends_the_missing_facts(
    engine: Engine,
) -> None:
    await store_turns(engine, 3)

    def lossy(params: Mapping[str, Any]) -> ResponderOutput:
        return ResponderOutput.text(
            "<observations>\nDate: Feb 25, 2026\n* yellow (22:01) fixed tests\n</observations>"
        )

    engine.emulator.add_responder(matches_distill, lossy)
    report = await engine.scheduler.distiller.run("s1", force=True)
    await engine.scheduler.run_until_idle()
    assert report.observer_rows == 1
    (row,) = await engine.store.list_distillations("s1")
    assert row.retention_initial is not None
    assert row.retention_initial < engine.context.config.retention_threshold
    assert row.revision == 1
    assert row.retention_score is not None
    assert row.retention_score > row.retention_initial
    assert "tests/test_mod0.py" in row.observations
    assert [call.worker for call in engine.llm.calls].count("validate") == 1


@pytest.mark.parametrize("config", [LoreConfig(validate_enabled=False)])
async def test_validation_can_be_turned_off_but_the_score_is_still_stored(engine: Engine) -> None:
    await store_turns(engine, 3)

    def lossy(params: Mapping[str, Any]) -> ResponderOutput:
        return ResponderOutput.text(
            "<observations>\nDate: Feb 25, 2026\n* yellow (22:01) fixed tests\n</observations>"
        )

    engine.emulator.add_responder(matches_distill, lossy)
    await engine.scheduler.distiller.run("s1", force=True)
    await engine.scheduler.run_until_idle()
    (row,) = await engine.store.list_distillations("s1")
    assert row.retention_score is not None
    assert row.retention_score < 0.8
    assert row.revision == 0
    assert "validate" not in {call.worker for call in engine.llm.calls}


# -- curation -------------------------------------------------------------------------------------------


async def test_curation_applies_valid_ops_rejects_bad_ones_and_moves_the_watermark(engine: Engine) -> None:
    await store_turns(engine, 3)
    await engine.store.upsert_knowledge(
        KnowledgeRecord(
            id=str(uuid.uuid4()),
            project="proj",
            category="gotcha",
            title="Fixture values drift",
            content="Fixtures in src/ return stale values.",
            confidence=0.9,
            created_at=START,
            updated_at=START,
        )
    )
    ops = (
        '[{"op": "create", "category": "decision", "title": "Use pytest -x", "content": "Stop at the first '
        'failure.", "confidence": 0.8},'
        ' {"op": "create", "category": "nonsense", "title": "Bad", "content": "x"},'
        ' {"op": "delete", "id": "no-such-id"},'
        ' {"op": "create", "category": "gotcha", "title": "fixture values drift",'
        ' "content": "Updated text."}]'
    )
    engine.emulator.add_responder(matches_curate, lambda p: ResponderOutput.text(ops))
    report = await engine.scheduler.curator.curate("s1")
    assert (report.created, report.updated, report.deleted) == (1, 1, 0)
    assert sorted(item.reason for item in report.rejected) == ["bad_category", "unknown_id"]
    entries = {entry.title: entry for entry in await engine.store.list_knowledge("proj")}
    assert entries["Use pytest -x"].confidence == 0.8
    assert entries["Fixture values drift"].content == "Updated text."  # the dedup guard updated it
    state = await engine.store.load_state("s1")
    assert state is not None
    assert state.last_curated_at == engine.context.now()
    assert state.turns_since_curation == 0
    # nothing new since the watermark: no call at all
    calls = len(engine.llm.calls)
    assert (await engine.scheduler.curator.curate("s1")).skipped == "nothing new"
    assert len(engine.llm.calls) == calls


async def test_curation_runs_in_flight_after_six_human_turns(engine: Engine) -> None:
    await store_turns(engine, 3)
    await engine.scheduler.after_store("s1", new_human_turns=5)
    await engine.scheduler.run_until_idle()
    assert "curate" not in {call.worker for call in engine.llm.calls}
    await engine.scheduler.after_store("s1", new_human_turns=1)
    await engine.scheduler.run_until_idle()
    assert "curate" in {call.worker for call in engine.llm.calls}
    assert {call.urgent for call in engine.llm.calls} == {False}


async def test_consolidation_runs_over_the_entry_limit_and_never_touches_global_entries(
    engine: Engine,
) -> None:
    await store_turns(engine, 1)
    for index in range(30):
        await engine.store.upsert_knowledge(
            KnowledgeRecord(
                id=str(uuid.uuid4()),
                project="proj",
                category="pattern",
                title=f"Pattern number {index}",
                content=f"Use helper_{index} for module {index}.",
                confidence=0.5,
                created_at=START,
                updated_at=START,
            )
        )
    global_entry = KnowledgeRecord(
        id=str(uuid.uuid4()),
        project=None,
        category="preference",
        title="Prefer uv",
        content="Install with uv.",
        confidence=0.9,
        created_at=START,
        updated_at=START,
    )
    await engine.store.upsert_knowledge(global_entry)
    report = await engine.scheduler.curator.consolidate("proj", session_id="s1")
    assert report.skipped is None
    own = [entry for entry in await engine.store.list_knowledge("proj", include_global=False)]
    assert len(own) <= engine.context.config.consolidate_max_entries
    assert global_entry.id in {entry.id for entry in await engine.store.list_knowledge("proj")}
    (call,) = [call for call in engine.llm.calls if call.worker == "curate"]
    assert call.session_id == "s1"
    assert call.max_tokens == engine.context.config.consolidate_max_tokens


async def test_idle_work_is_isolated_per_step_and_sets_idle_done_at(engine: Engine) -> None:
    await store_turns(engine, 3)
    await engine.store.save_state("s1", turns_since_curation=3)
    engine.emulator.faults.fail_next("messages", 500, count=1)  # the distill call fails
    report = await engine.scheduler.idle_work("s1")
    assert report.distill is not None
    assert report.distill.failures == 1
    assert report.curation is not None  # the next step still ran
    state = await engine.store.load_state("s1")
    assert state is not None
    assert state.idle_done_at == engine.context.now()


async def test_worker_traffic_is_never_stored_as_messages(engine: Engine) -> None:
    await store_turns(engine, 3)
    await engine.store.save_state("s1", turns_since_curation=3)
    await engine.scheduler.idle_work("s1")
    assert engine.llm.calls
    assert await engine.store.count_messages("s1") == 12
    texts = " ".join(m.text for m in await engine.store.list_messages("s1", with_blocks=False))
    assert "[lore-memory:" not in texts


def test_replace_keeps_records_frozen() -> None:
    row = KnowledgeRecord(
        id="x", project=None, category="gotcha", title="t", content="c", confidence=1.0,
        created_at=START, updated_at=START,
    )  # fmt: skip
    assert replace(row, content="d").content == "d"
