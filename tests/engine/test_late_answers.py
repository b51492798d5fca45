"""Answers that arrive later (``Lore.apply_answer``): a worker call's answer lands in the store exactly as if the
coroutine that made the call had received it, and never triggers a model call of its own.

Each test makes a worker call during a normal run against a model that records calls and fails them (so
nothing is written), builds the answer with the emulator's default responder, and hands it to the engine the
way a durable batch result handler does. SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from lore_core import AnswerOutcome, ConfigError, LoreConfig
from lore_core.store.records import KnowledgeRecord, WorkerRunRecord, WorkerRunStatus

from .conftest import START
from .late import Rig, answer_for, open_rig

LOSSY = "<observations>\nDate: Feb 25, 2026\n* yellow (22:01) fixed tests\n</observations>"


@pytest.fixture
async def rig(migrated_url: str, config: LoreConfig) -> AsyncIterator[Rig]:
    async with open_rig(migrated_url, config) as opened:
        yield opened


async def runs(rig: Rig, worker: str, status: WorkerRunStatus) -> list[WorkerRunRecord]:
    return await rig.lore.store.list_worker_runs(session_id="s1", worker=worker, status=status)


# -- distill --------------------------------------------------------------------------------------------


async def test_a_late_distill_answer_lands_as_if_its_run_had_received_it(rig: Rig) -> None:
    await rig.store_turns(3)
    report = await rig.lore.scheduler.distiller.run("s1", force=True)
    assert report.failures == 1
    assert await rig.lore.store.list_distillations("s1") == []
    (call,) = rig.llm.of("distill")
    version = rig.lore.scheduler.context.versions.get("s1", 0)

    outcome = await rig.apply(call)

    assert outcome == AnswerOutcome(
        applied=True, worker="distill", session_id="s1", detail="written: observer row over 12 messages"
    )
    (row,) = await rig.lore.store.list_distillations("s1")
    assert (row.kind, row.generation, row.route) == ("observer", 0, "batch")
    assert row.observations in answer_for(call).text
    assert set(row.source_ids) == {m.id for m in await rig.lore.store.list_messages("s1")}
    assert await rig.lore.store.count_messages("s1", undistilled_only=True) == 0
    assert rig.lore.scheduler.context.versions["s1"] == version + 1  # live sessions re-read their snapshot
    (ok,) = await rig.lore.store.list_worker_runs(session_id="s1", worker="distill", status="ok")
    assert ok.route == "batch"
    assert ok.input_tokens == answer_for(call).usage.total_input_tokens
    assert ok.urgent is False
    await rig.lore.scheduler.run_until_idle()
    (row,) = await rig.lore.store.list_distillations("s1")
    assert row.retention_score is not None  # the retention check followed, as after any write
    assert rig.llm.of("distill") == [call]  # no distill call was made for the answer


@pytest.mark.parametrize("config", [LoreConfig(max_segment_tokens=160)])
async def test_only_the_matching_segment_is_written_and_a_rounds_answers_apply_in_any_order(rig: Rig) -> None:
    await rig.store_turns(6)
    await rig.lore.scheduler.distiller.run("s1", force=True)
    calls = rig.llm.of("distill")
    assert len(calls) >= 3  # one round, its segments distilled concurrently, every call failed
    messages = await rig.lore.store.list_messages("s1")

    middle = await rig.apply(calls[1])
    assert middle.applied
    (row,) = await rig.lore.store.list_distillations("s1")
    others = {m.id for m in messages} - set(row.source_ids)
    undistilled = {m.id for m in await rig.lore.store.list_messages("s1", undistilled_only=True)}
    assert undistilled == others  # the segments before and after stay for a later run (or their answers)

    # The others' prompts carry the round's prior ("session start"), and the pending messages now split
    # differently: each answer still finds its own segment.
    for call in [calls[-1], *calls[2:-1], calls[0]]:
        assert (await rig.apply(call)).applied
    rows = await rig.lore.store.list_distillations("s1")
    assert len(rows) == len(calls)
    assert await rig.lore.store.count_messages("s1", undistilled_only=True) == 0
    assert rig.llm.of("distill") == calls


async def test_a_stale_distill_answer_writes_nothing_but_its_cost(rig: Rig) -> None:
    await rig.store_turns(3)
    await rig.lore.scheduler.distiller.run("s1", force=True)
    (late,) = rig.llm.of("distill")
    rig.llm.answering = True  # the model is back: a normal run distills the messages first
    assert (await rig.lore.scheduler.distiller.run("s1", force=True)).observer_rows == 1
    await rig.lore.scheduler.run_until_idle()
    before = await rig.lore.store.list_distillations("s1")
    sent = len(rig.llm.sent)

    outcome = await rig.apply(late)

    assert not outcome.applied
    assert outcome.detail.startswith("stale:")
    assert await rig.lore.store.list_distillations("s1") == before
    assert len(rig.llm.sent) == sent
    (stale,) = await rig.lore.store.list_worker_runs(session_id="s1", worker="distill", status="stale")
    assert stale.input_tokens == answer_for(late).usage.total_input_tokens  # the tokens paid stay visible
    assert stale.error_detail is not None
    assert late.user not in stale.error_detail


async def test_an_answer_to_another_prompt_never_reaches_a_model_and_writes_nothing(rig: Rig) -> None:
    await rig.store_turns(3)
    await rig.lore.scheduler.distiller.run("s1", force=True)
    (call,) = rig.llm.of("distill")
    sent = len(rig.llm.sent)
    response = answer_for(call)
    for worker, user in [("distill", call.user + "\n"), ("curate", call.user), ("validate", call.user)]:
        outcome = await rig.lore.apply_answer(
            worker=worker, session_id="s1", system=call.system, user=user, response=response
        )
        assert not outcome.applied
        assert outcome.detail.startswith("stale:"), outcome.detail
    assert len(rig.llm.sent) == sent
    assert await rig.lore.store.list_distillations("s1") == []
    assert await rig.lore.store.count_messages("s1", undistilled_only=True) == 12
    assert await rig.lore.store.list_knowledge("proj") == []
    assert await rig.lore.store.count_worker_runs(session_id="s1", status="stale") == 3
    # The real answer still applies afterwards.
    assert (await rig.apply(call)).applied


async def test_unknown_workers_raise_and_unknown_sessions_are_not_applied(rig: Rig) -> None:
    await rig.store_turns(3)
    await rig.lore.scheduler.distiller.run("s1", force=True)
    (call,) = rig.llm.of("distill")
    with pytest.raises(ConfigError):
        await rig.lore.apply_answer(
            worker="recall", session_id="s1", system=call.system, user=call.user, response=answer_for(call)
        )
    outcome = await rig.apply(call, session_id="nope")
    assert outcome == AnswerOutcome(
        applied=False, worker="distill", session_id="nope", detail="unknown session"
    )


async def test_an_answer_arriving_during_a_run_of_its_session_is_not_waited_on(rig: Rig) -> None:
    await rig.store_turns(3)
    await rig.lore.scheduler.distiller.run("s1", force=True)
    (call,) = rig.llm.of("distill")
    lock = rig.lore.scheduler.distiller._locks["s1"]
    async with lock:  # a run of the session holds it (it may itself be waiting on a batch)
        outcome = await asyncio.wait_for(rig.apply(call), timeout=5)
    assert not outcome.applied
    assert outcome.detail.startswith("busy:")
    # Nothing is recorded yet: a busy answer is offered again later (the pool's HandlerRetry).
    assert await rig.lore.store.count_worker_runs(session_id="s1", worker="distill", status="stale") == 0
    assert (await rig.apply(call)).applied is True  # offered again once the step is free, it lands
    assert await rig.lore.store.count_worker_runs(session_id="s1", worker="distill", status="stale") == 0


# -- meta-distill ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [LoreConfig(max_segment_tokens=100, min_segment_tokens=32, meta_threshold=4, keep_recent_segments=1)],
)
async def test_a_late_meta_answer_folds_its_rows_even_after_newer_rows_arrived(rig: Rig) -> None:
    rig.llm.answering = True
    await rig.store_turns(5)
    await rig.lore.scheduler.distiller.run("s1", force=True)  # several gen-0 rows, meta skipped
    await rig.lore.scheduler.run_until_idle()
    gen0 = await rig.lore.store.list_distillations("s1")
    assert len(gen0) >= 4
    rig.llm.answering = False
    assert await rig.lore.scheduler.meta.run("s1") is False
    (call,) = rig.llm.of("meta-distill")
    rig.llm.answering = True  # meanwhile new turns are distilled: the plan now would merge more rows
    await rig.store_turns(7)
    await rig.lore.scheduler.distiller.run("s1", force=True)
    await rig.lore.scheduler.run_until_idle()
    newer = [row for row in await rig.lore.store.list_distillations("s1") if row not in gen0]
    assert newer
    version = rig.lore.scheduler.context.versions.get("s1", 0)

    outcome = await rig.apply(call)

    assert outcome.applied, outcome
    live = await rig.lore.store.list_distillations("s1")
    (meta,) = [row for row in live if row.generation > 0]
    assert (meta.kind, meta.generation, meta.route) == ("reflector", 1, "batch")
    archived = {row.id for row in await rig.lore.store.list_distillations("s1", include_archived=True)} - {
        row.id for row in live
    }
    assert archived == {row.id for row in gen0[:-1]}  # the plan the prompt was built from: all but the newest
    assert {row.id for row in newer} <= {row.id for row in live}
    assert rig.lore.scheduler.context.versions["s1"] == version + 1
    assert len(await runs(rig, "meta-distill", "ok")) == 1
    assert len(rig.llm.of("meta-distill")) == 1
    assert (await rig.apply(call)).detail.startswith("stale:")


# -- curate ---------------------------------------------------------------------------------------------


async def test_a_late_curation_answer_creates_entries_and_moves_the_watermark(rig: Rig) -> None:
    await rig.store_turns(3)
    await rig.lore.store.save_state("s1", turns_since_curation=4)
    report = await rig.lore.scheduler.curator.curate("s1")
    assert report.skipped == "call failed"
    (call,) = rig.llm.of("curate")
    assert await rig.lore.store.list_knowledge("proj") == []

    outcome = await rig.apply(call)

    assert outcome.applied, outcome
    assert outcome.detail.startswith("written: curation applied")
    entries = await rig.lore.store.list_knowledge("proj")
    assert entries
    assert {entry.source_session for entry in entries} == {"s1"}
    state = await rig.lore.store.load_state("s1")
    assert state is not None
    assert state.last_curated_at == rig.lore.now_datetime()
    assert state.turns_since_curation == 0
    assert len(await runs(rig, "curate", "ok")) == 1
    again = await rig.apply(call)  # the watermark moved: nothing asks that prompt any more
    assert again.detail.startswith("stale:")
    assert len(await rig.lore.store.list_knowledge("proj")) == len(entries)
    assert len(rig.llm.of("curate")) == 1


async def test_a_late_consolidation_answer_merges_the_project_entries(rig: Rig) -> None:
    await rig.store_turns(1)
    for index in range(30):
        await rig.lore.store.upsert_knowledge(
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
    report = await rig.lore.scheduler.curator.consolidate("proj", session_id="s1")
    assert report.skipped == "call failed"
    (call,) = rig.llm.of("curate")

    outcome = await rig.apply(call)

    assert outcome.applied, outcome
    assert outcome.detail.startswith("written: consolidation applied")
    own = await rig.lore.store.list_knowledge("proj", include_global=False)
    assert len(own) <= rig.lore.config.consolidate_max_entries
    assert len(await runs(rig, "curate", "ok")) == 1


# -- validate -------------------------------------------------------------------------------------------


async def test_a_late_validate_answer_revises_the_row_it_was_asked_for(rig: Rig) -> None:
    await rig.store_turns(3)
    await rig.lore.scheduler.distiller.run("s1", force=True)
    (distill,) = rig.llm.of("distill")
    assert (await rig.apply(distill, answer_for(distill, text=LOSSY))).applied
    await rig.lore.scheduler.run_until_idle()  # the retention check asks for a repair; that call fails too
    (call,) = rig.llm.of("validate")
    (row,) = await rig.lore.store.list_distillations("s1")
    assert row.revision == 0
    assert row.retention_score is not None
    assert row.retention_score < rig.lore.config.retention_threshold

    outcome = await rig.apply(call)

    assert outcome == AnswerOutcome(
        applied=True, worker="validate", session_id="s1", detail="written: revision 1 of the row"
    )
    (row,) = await rig.lore.store.list_distillations("s1")
    assert row.revision == 1
    assert "tests/test_mod0.py" in row.observations
    assert row.retention_score is not None
    assert row.retention_initial is not None
    assert row.retention_score > row.retention_initial
    assert len(await runs(rig, "validate", "ok")) == 1
    assert (await rig.apply(call)).detail.startswith("stale:")
    assert len(rig.llm.of("validate")) == 1
