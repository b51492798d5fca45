"""The replay client and its pieces: ``StoredAnswers`` answers only the exact prompts it holds, once each, and
never calls a model; ``Replay`` matches prompts exactly; ``meta_candidates`` lists every plan a round may have
sent."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

import pytest

from lore_core import LLMClient, LLMError, LLMResponse, LoreConfig, NoStoredAnswerError, StoredAnswers, Usage
from lore_core.prompting import Prompt
from lore_core.reflector import meta_candidates
from lore_core.store.port import SessionStore
from lore_core.store.records import DistillationRecord
from lore_core.workers import Replay, WorkerContext

SYSTEM = "[lore-memory:distill]\nYou compress transcripts."
USER = "<transcript>\n[user] (09:30) secret-project-name is failing\n</transcript>"
RESPONSE = LLMResponse(text="<observations>\nok\n</observations>", usage=Usage(input_tokens=9), model="m")


def held() -> StoredAnswers:
    answers = StoredAnswers()
    answers.add(worker="distill", system=SYSTEM, user=USER, response=RESPONSE)
    return answers


async def test_the_held_answer_is_returned_once() -> None:
    answers = held()
    assert isinstance(answers, LLMClient)
    assert await answers.prompt(SYSTEM, USER, worker="distill", session_id="s1", max_tokens=10) is RESPONSE
    assert answers.served == 1
    with pytest.raises(NoStoredAnswerError):
        await answers.prompt(SYSTEM, USER, worker="distill")


@pytest.mark.parametrize(
    ("worker", "system", "user"),
    [
        ("validate", SYSTEM, USER),  # another worker label
        (None, SYSTEM, USER),  # no label
        ("distill", SYSTEM + " ", USER),  # exact strings only
        ("distill", SYSTEM, USER.rstrip("\n") + " "),
        ("distill", USER, SYSTEM),  # parts never blur into each other
    ],
)
async def test_any_other_call_fails_without_prompt_text(worker: str | None, system: str, user: str) -> None:
    answers = held()
    with pytest.raises(NoStoredAnswerError) as caught:
        await answers.prompt(system, user, worker=worker)
    error = caught.value
    assert isinstance(error, LLMError)
    assert error.retryable is False
    assert error.error_type == "no_stored_answer"
    assert "secret-project-name" not in str(error)
    assert "You compress" not in str(error)
    assert answers.served == 0
    assert answers.holds(Prompt(worker="distill", system=SYSTEM, user=USER, max_tokens=1))


def test_a_context_on_stored_answers_has_no_second_cap_and_shares_the_engine_state() -> None:
    store = cast(SessionStore, object())  # never touched by the constructor
    engine = WorkerContext(store=store, llm=cast(LLMClient, object()), config=LoreConfig())
    assert engine.gate._semaphore is not None  # a client without background_slots gets the config's cap
    replaying = engine.with_llm(held())
    assert replaying.gate._semaphore is None  # background_slots = None: no second limit
    assert replaying.gate is not engine.gate  # and no pause from the provider's rate limits
    assert replaying.versions is engine.versions
    assert replaying.owner == engine.owner
    assert (replaying.store, replaying.config, replaying.clock) == (engine.store, engine.config, engine.clock)
    replaying.bump("s1")
    assert engine.versions == {"s1": 1}


def test_replay_wants_exactly_its_prompt_and_keeps_text_out_of_repr() -> None:
    context = WorkerContext(store=cast(SessionStore, object()), llm=held(), config=LoreConfig())
    replay = Replay(context=context, worker="distill", system=SYSTEM, user=USER)
    assert replay.wants(Prompt(worker="distill", system=SYSTEM, user=USER, max_tokens=99))
    assert not replay.wants(Prompt(worker="curate", system=SYSTEM, user=USER, max_tokens=99))
    assert not replay.wants(Prompt(worker="distill", system=SYSTEM, user=USER + "x", max_tokens=99))
    assert "secret-project-name" not in repr(replay)


def row(seq: int, *, generation: int = 0, archived: bool = False) -> DistillationRecord:
    return DistillationRecord(
        id=f"r{seq}",
        session_id="s1",
        project="proj",
        generation=generation,
        kind="observer" if generation == 0 else "reflector",
        observations=f"* green (09:{seq:02d}) step {seq}",
        source_ids=(f"m{seq}",),
        source_tokens=100,
        token_count=10,
        r_compression=1.0,
        created_at=datetime(2026, 2, 25, 9, seq, tzinfo=UTC),
        seq=seq,
        archived=archived,
    )


def test_meta_candidates_are_the_current_prior_with_each_prefix_of_the_live_gen0_rows() -> None:
    rows = [row(1, archived=True), row(2, generation=1), row(3), row(4), row(5)]
    plans = meta_candidates(rows)
    assert [[r.id for r in plan.merge] for plan in plans] == [["r3"], ["r3", "r4"], ["r3", "r4", "r5"]]
    assert [[r.id for r in plan.keep] for plan in plans] == [["r4", "r5"], ["r5"], []]
    assert {plan.prior.id if plan.prior else None for plan in plans} == {"r2"}
    assert meta_candidates([]) == []
