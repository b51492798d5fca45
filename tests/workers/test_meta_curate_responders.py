"""The emulator's meta-distill and curate responders answer with outputs our checks accept."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from lore_batch.emulator.workers.curate import curate_responder, matches_curate
from lore_batch.emulator.workers.meta import matches_meta, meta_responder
from lore_core.config import LoreConfig
from lore_core.curation import (
    CreateOp,
    DeleteOp,
    UpdateOp,
    build_consolidation_prompt,
    build_curation_prompt,
    parse_ops,
    validate_ops,
)
from lore_core.prompting import Prompt
from lore_core.reflector import (
    HEADINGS,
    MetaPlan,
    build_meta_prompt,
    check_meta_output,
    meta_input_tokens,
    plan_meta,
)
from lore_core.store.records import DistillationRecord, KnowledgeCategory, KnowledgeRecord

T0 = datetime(2026, 2, 25, 9, 0, tzinfo=UTC)
CONFIG = LoreConfig()


def params_of(prompt: Prompt, *, list_system: bool = False) -> dict[str, Any]:
    system: Any = [{"type": "text", "text": prompt.system}] if list_system else prompt.system
    return {
        "model": "claude-test",
        "system": system,
        "messages": [{"role": "user", "content": prompt.user}],
        "max_tokens": prompt.max_tokens,
    }


def reply(output: Any) -> str:
    text = output.content[0]["text"]
    assert isinstance(text, str)
    return text


def emulator_tokens(text: str) -> int:
    return math.ceil(len(text.encode()) / 4)


def observation_row(seq: int, observations: str | None = None, generation: int = 0) -> DistillationRecord:
    default = "\n".join(
        [
            "Date: Feb 25, 2026",
            f"* red (10:{seq:02d}) User decided to keep PostgreSQL 16 for store {seq}; never use MySQL",
            f"* yellow [fix-bug] (10:{seq:02d}) Fixed KeyError in src/app/loader_{seq}.py: `cache_dir` "
            f"missing, default set to {seq * 10} MB",
            f"* yellow (10:{seq:02d}) Assistant listed retry settings: 3 attempts, {seq * 50} ms backoff",
            f"* green (10:{seq:02d}) Small talk about lunch, round {seq}",
        ]
    )
    return DistillationRecord(
        id=f"r{seq}",
        session_id="s1",
        project="p",
        generation=generation,
        kind="observer" if generation == 0 else "reflector",
        observations=observations if observations is not None else default,
        source_ids=(f"m{seq}",),
        source_tokens=800,
        token_count=90,
        r_compression=1.0,
        created_at=T0 + timedelta(minutes=seq),
        seq=seq,
    )


def run_meta(plan: MetaPlan) -> tuple[str, list[str], dict[str, Any]]:
    prompt = build_meta_prompt(plan)
    params = params_of(prompt)
    text = reply(meta_responder(params))
    body, warnings = check_meta_output(text, input_tokens=meta_input_tokens(plan))
    assert emulator_tokens(text) <= prompt.max_tokens
    return body, warnings, params


def test_matchers() -> None:
    plan = plan_meta([observation_row(i) for i in range(1, 21)], config=CONFIG, bust_pressure=False)
    assert plan is not None
    meta_prompt = build_meta_prompt(plan)
    curate_prompt = build_curation_prompt("x", [], config=CONFIG)
    consolidate_prompt = build_consolidation_prompt([], target=1, config=CONFIG)
    for list_system in (False, True):
        assert matches_meta(params_of(meta_prompt, list_system=list_system))
        assert not matches_curate(params_of(meta_prompt, list_system=list_system))
        assert matches_curate(params_of(curate_prompt, list_system=list_system))
        assert matches_curate(params_of(consolidate_prompt, list_system=list_system))
        assert not matches_meta(params_of(curate_prompt, list_system=list_system))
    assert not matches_meta({"messages": []})
    assert not matches_curate({"system": "You are helpful.", "messages": []})


def test_meta_from_scratch_passes_the_check() -> None:
    plan = plan_meta([observation_row(i) for i in range(1, 21)], config=CONFIG, bust_pressure=False)
    assert plan is not None
    body, warnings, params = run_meta(plan)
    assert warnings == []
    assert len(body) <= 0.6 * len(params["messages"][0]["content"])
    assert "KeyError" in body
    assert "src/app/loader_15.py" in body  # the newest merged segment's artefacts survive
    assert "Small talk" not in body.split("## Key Decisions")[1]
    assert [line for line in body.splitlines() if line.startswith("## ")] == [f"## {h}" for h in HEADINGS]
    assert meta_responder(params) == meta_responder(params)  # deterministic


def test_meta_anchored_update_keeps_prior_and_dedups() -> None:
    first = plan_meta([observation_row(i) for i in range(1, 21)], config=CONFIG, bust_pressure=False)
    assert first is not None
    prior_body, _, _ = run_meta(first)
    prior = observation_row(99, prior_body, generation=1)
    repeated = observation_row(30, observation_row(15).observations)  # same bullets as already folded in
    fresh = observation_row(31)
    plan = MetaPlan(prior=prior, merge=(repeated, fresh), keep=())
    body, warnings, _ = run_meta(plan)
    assert warnings == []
    assert "src/app/loader_31.py" in body
    assert body.count("src/app/loader_15.py") <= 1
    assert body.count("store 15; never use MySQL (+3 more)") <= 1  # timeline lines are not repeated
    assert "## Current State" in body


_BULLET = st.builds(
    lambda level, hour, words: f"* {level} ({hour:02d}:15) {' '.join(words)}",
    st.sampled_from(["red", "yellow", "green"]),
    st.integers(0, 23),
    st.lists(
        st.sampled_from(["fix", "src/a.py", "KeyError", "always", "cache", "12 ms", "user", "decided"]),
        min_size=6,
        max_size=14,
    ),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(_BULLET, min_size=3, max_size=8), min_size=3, max_size=8))
def test_meta_output_always_passes(segments: list[list[str]]) -> None:
    rows = [
        observation_row(i, "Date: Feb 25, 2026\n" + "\n".join(bullets))
        for i, bullets in enumerate(segments, 1)
    ]
    body, _, _ = run_meta(MetaPlan(prior=None, merge=tuple(rows), keep=()))
    assert body


def test_meta_without_sections_still_answers() -> None:
    text = reply(meta_responder({"system": "[lore-memory:meta-distill]", "messages": [], "max_tokens": 50}))
    assert text.startswith("<observations>\n")
    assert text.endswith("\n</observations>")


def knowledge(
    entry_id: str, title: str, category: KnowledgeCategory = "decision", project: str | None = "p"
) -> KnowledgeRecord:
    return KnowledgeRecord(
        id=entry_id,
        project=project,
        category=category,
        title=title,
        content=f"Content of {title}.",
        confidence=0.9,
        created_at=T0,
        updated_at=T0,
    )


INPUTS = "\n".join(
    [
        "[user] (09:00) hello there, how are you today?",
        "[user] (09:01) Please always run ruff format before every commit.",
        "[assistant] (09:02) We decided to use PostgreSQL 16 for the event store because of JSONB.",
        "[result:bash error] Traceback: KeyError: 'cache_dir' raised in src/app/loader.py line 40",
        "[user] (09:05) remind me what the Database choice was?",
    ]
)


def test_curation_ops_pass_validation() -> None:
    visible = [
        knowledge("k1", "Database choice"),
        knowledge("g1", "Tabs or spaces", "preference", project=None),
    ]
    prompt = build_curation_prompt(INPUTS, visible, config=CONFIG)
    params = params_of(prompt)
    text = reply(curate_responder(params))
    assert emulator_tokens(text) <= prompt.max_tokens
    ops, rejected = validate_ops(parse_ops(text), visible=visible, project="p", config=CONFIG)
    assert rejected == []
    creates = [op for op in ops if isinstance(op, CreateOp)]
    assert [op.category for op in creates] == ["preference", "decision", "gotcha"]
    assert creates[2].title.startswith("KeyError")
    assert UpdateOp(id="k1", confidence=1.0) in ops
    assert curate_responder(params) == curate_responder(params)


def test_curation_turns_a_repeated_title_into_an_update() -> None:
    visible = [knowledge("k7", "Please always run ruff format before every commit")]
    prompt = build_curation_prompt(INPUTS, visible, config=CONFIG)
    ops, rejected = validate_ops(
        parse_ops(reply(curate_responder(params_of(prompt)))), visible=visible, project="p", config=CONFIG
    )
    assert rejected == []
    assert UpdateOp(id="k7", content="Please always run ruff format before every commit.") in ops
    assert all(not (isinstance(op, CreateOp) and op.category == "preference") for op in ops)


def test_curation_with_nothing_to_keep() -> None:
    prompt = build_curation_prompt("[user] (09:00) hello there, nice weather", [], config=CONFIG)
    assert parse_ops(reply(curate_responder(params_of(prompt)))) == []


def apply(entries: list[KnowledgeRecord], ops: list[CreateOp | UpdateOp | DeleteOp]) -> set[str]:
    ids = {entry.id for entry in entries}
    for op in ops:
        assert not isinstance(op, CreateOp)
        if isinstance(op, DeleteOp):
            ids.discard(op.id)
    return ids


def test_consolidation_reaches_the_target() -> None:
    categories: list[KnowledgeCategory] = ["decision", "pattern", "gotcha", "architecture"]
    own = [knowledge(f"k{i:02d}", f"Entry {i} about topic {i % 7}", categories[i % 4]) for i in range(31)]
    glob = knowledge("g1", "Global rule", "preference", project=None)
    prompt = build_consolidation_prompt([*own, glob], target=25, config=CONFIG)
    text = reply(curate_responder(params_of(prompt)))
    assert emulator_tokens(text) <= prompt.max_tokens
    ops, rejected = validate_ops(
        parse_ops(text), visible=[*own, glob], project="p", config=CONFIG, allow_create=False
    )
    assert rejected == []
    assert len(apply(own, ops)) == 25
    assert all(op.id != "g1" for op in ops if not isinstance(op, CreateOp))
    merged = [op for op in ops if isinstance(op, UpdateOp)]
    assert merged
    assert all(op.content and " | " in op.content for op in merged)


def test_consolidation_deletes_stale_singletons_and_fits_big_entries() -> None:
    categories: list[KnowledgeCategory] = ["decision", "pattern", "preference", "architecture", "gotcha"]
    own = [knowledge(f"k{i}", f"Only {c}", c) for i, c in enumerate(categories)]
    prompt = build_consolidation_prompt(own, target=2, config=CONFIG)
    ops, rejected = validate_ops(
        parse_ops(reply(curate_responder(params_of(prompt)))),
        visible=own,
        project="p",
        config=CONFIG,
        allow_create=False,
    )
    assert rejected == []
    assert len(apply(own, ops)) == 2

    huge = [
        KnowledgeRecord(
            id=f"h{i}",
            project="p",
            category="pattern",
            title=f"Big {i}",
            content="z" * 1_150,
            confidence=1.0,
            created_at=T0,
            updated_at=T0,
        )
        for i in range(40)
    ]
    prompt = build_consolidation_prompt(huge, target=25, config=CONFIG)
    text = reply(curate_responder(params_of(prompt)))
    assert emulator_tokens(text) <= prompt.max_tokens
    ops, rejected = validate_ops(
        parse_ops(text), visible=huge, project="p", config=CONFIG, allow_create=False
    )
    assert rejected == []
    assert len(apply(huge, ops)) == 25


def test_consolidation_under_target_and_odd_prompts() -> None:
    own = [knowledge("k1", "One")]
    prompt = build_consolidation_prompt(own, target=25, config=CONFIG)
    assert json.loads(reply(curate_responder(params_of(prompt)))) == []
    assert json.loads(reply(curate_responder({"system": "[lore-memory:curate]", "messages": []}))) == []
