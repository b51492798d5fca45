"""A worker call that fails loses nothing: the messages stay undistilled, the failure is recorded and
visible, and the next run succeeds."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from lore_batch.emulator import ResponderOutput
from lore_batch.emulator.workers import distill_responder, matches_distill
from lore_core.ingest import MessageLog
from lore_core.inspection import inspect_session

from .conftest import START, Engine


def coding_turns(count: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for turn in range(count):
        tool_id = f"toolu_{turn:03d}"
        messages += [
            {"role": "user", "content": f"Fix the failing test in tests/test_mod{turn}.py, please."},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Running the tests."},
                    {"type": "tool_use", "id": tool_id, "name": "bash", "input": {"command": "pytest -x"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": tool_id,
                        "content": f"FAILED tests/test_mod{turn}.py::test_value - AssertionError: 3 != 4\n"
                        "1 failed in 0.42s",
                    }
                ],
            },
            {"role": "assistant", "content": f"The fixture in src/mod{turn}.py returns 3; fixed it to 4."},
        ]
    return messages


async def stored_session(engine: Engine, session_id: str = "s1") -> None:
    await engine.store.ensure_session(session_id, "proj", "claude-sonnet-4-6", START)
    await MessageLog(engine.store).record(session_id, coding_turns(3), now=START + timedelta(minutes=1))


def distill_garbage(params: Mapping[str, Any]) -> ResponderOutput:
    return ResponderOutput.text("I could not find anything worth noting.")


async def test_a_500_leaves_the_messages_undistilled_and_the_next_run_succeeds(engine: Engine) -> None:
    await stored_session(engine)
    engine.emulator.faults.fail_next("messages", 500, count=1)
    report = await engine.scheduler.distiller.run("s1", force=True)
    assert report.failures == 1
    assert report.observer_rows == 0
    assert await engine.store.count_messages("s1", undistilled_only=True) == 12
    assert await engine.store.list_distillations("s1") == []
    errors = await engine.store.list_worker_runs(session_id="s1", status="error")
    assert [(run.worker, run.error_type) for run in errors] == [("distill", "LLMUnavailableError")]
    assert errors[0].error_detail is not None
    assert "status=500" in errors[0].error_detail
    # visible in the inspect report
    inspected = await inspect_session(engine.store, "s1")
    assert [run.error_type for run in inspected.worker_errors] == ["LLMUnavailableError"]

    again = await engine.scheduler.distiller.run("s1", force=True)
    assert again.observer_rows == 1
    assert await engine.store.count_messages("s1", undistilled_only=True) == 0


async def test_a_malformed_output_is_rejected_recorded_and_retried(engine: Engine) -> None:
    await stored_session(engine)
    answers = {"garbage": 1}

    def garbage_once(params: Mapping[str, Any]) -> ResponderOutput:
        if answers["garbage"]:
            answers["garbage"] -= 1
            return distill_garbage(params)
        return distill_responder(params)

    engine.emulator.add_responder(matches_distill, garbage_once)
    report = await engine.scheduler.distiller.run("s1", force=True)
    assert report.failures == 1
    assert await engine.store.count_messages("s1", undistilled_only=True) == 12
    rejected = await engine.store.list_worker_runs(session_id="s1", status="rejected")
    assert [run.error_type for run in rejected] == ["no_observations_block"]

    again = await engine.scheduler.distiller.run("s1", force=True)
    assert again.observer_rows == 1
    assert await engine.store.count_messages("s1", undistilled_only=True) == 0


async def test_three_failed_observer_calls_turn_the_segment_into_a_digest(engine: Engine) -> None:
    await stored_session(engine)
    engine.emulator.add_responder(matches_distill, distill_garbage)
    config = engine.context.config
    for _ in range(config.observer_failures_before_digest):
        report = await engine.scheduler.distiller.run("s1")
        assert report.observer_rows == 0
    final = await engine.scheduler.distiller.run("s1")
    assert final.digest_rows == 1
    rows = await engine.store.list_distillations("s1")
    assert [row.kind for row in rows] == ["digest"]
    assert await engine.store.count_messages("s1", undistilled_only=True) == 0


async def test_a_rate_limit_pauses_background_calls(engine: Engine) -> None:
    await stored_session(engine)
    engine.emulator.faults.fail_next("messages", 429, count=1, retry_after=30)
    report = await engine.scheduler.distiller.run("s1", force=True)
    assert report.failures == 1
    gate = engine.context.gate
    assert gate.paused_for >= 60  # the backoff schedule's first step beats retry-after 30
    before = engine.clock.monotonic()
    again = await engine.scheduler.distiller.run("s1", force=True)
    assert again.observer_rows == 1
    assert engine.clock.monotonic() - before >= 60  # the run waited out the pause (on the injected clock)
