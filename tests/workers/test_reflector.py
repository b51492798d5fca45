"""Meta-distillation planning, prompts and checks (ENGINE.md section 5)."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lore_core.config import LoreConfig
from lore_core.outputs import OutputRejected
from lore_core.prompting import marker, section
from lore_core.reflector import (
    HEADINGS,
    MetaPlan,
    build_meta_prompt,
    check_meta_output,
    meta_archive_ids,
    meta_budget,
    meta_input_tokens,
    meta_source_ids,
    meta_threshold,
    next_generation,
    plan_meta,
    render_segments,
)
from lore_core.store.records import DistillationKind, DistillationRecord

T0 = datetime(2026, 2, 25, 9, 0, tzinfo=UTC)
CONFIG = LoreConfig()


def row(
    seq: int,
    *,
    generation: int = 0,
    kind: DistillationKind = "observer",
    archived: bool = False,
    sources: tuple[str, ...] | None = None,
    observations: str | None = None,
) -> DistillationRecord:
    return DistillationRecord(
        id=f"r{seq}",
        session_id="s1",
        project="p",
        generation=generation,
        kind=kind,
        observations=observations
        if observations is not None
        else f"Date: Feb 25, 2026\n* red (09:00) event {seq}",
        source_ids=sources if sources is not None else (f"m{seq}a", f"m{seq}b"),
        source_tokens=500,
        token_count=50,
        r_compression=1.0,
        created_at=T0 + timedelta(minutes=seq),
        seq=seq,
        archived=archived,
    )


def gen0(count: int, start: int = 1) -> list[DistillationRecord]:
    return [row(seq) for seq in range(start, start + count)]


def prior_meta(seq: int = 100, generation: int = 1) -> DistillationRecord:
    return row(
        seq,
        generation=generation,
        kind="reflector",
        sources=("old1", "old2"),
        observations="## Current State\n- x",
    )


def test_thresholds() -> None:
    assert meta_threshold(CONFIG, bust_pressure=False) == 20
    assert meta_threshold(CONFIG, bust_pressure=True) == 5
    assert meta_threshold(LoreConfig(meta_threshold=8), bust_pressure=True) == 3  # floor(8/4)=2, floor 3


@pytest.mark.parametrize(
    ("count", "with_prior", "bust", "merged"),
    [
        (19, False, False, None),
        (20, False, False, 15),
        (19, True, False, None),
        (20, True, False, 15),
        (5, True, True, None),  # threshold met, but nothing older than the kept 5
        (6, True, True, 1),  # bust pressure with a prior meta: 6 rows
        (7, False, True, None),  # only 2 consolidatable, 3 needed from scratch
        (8, False, True, 3),  # bust pressure without a prior meta: 8 rows
    ],
)
def test_plan_thresholds_and_partition(count: int, with_prior: bool, bust: bool, merged: int | None) -> None:
    rows = gen0(count) + ([prior_meta()] if with_prior else [])
    plan = plan_meta(rows, config=CONFIG, bust_pressure=bust)
    if merged is None:
        assert plan is None
        return
    assert plan is not None
    assert [r.seq for r in plan.merge] == list(range(1, merged + 1))
    assert [r.seq for r in plan.keep] == list(range(merged + 1, count + 1))
    assert (plan.prior is not None) == with_prior


def test_fewer_than_keep_rows_never_consolidate() -> None:
    config = LoreConfig(meta_threshold=1)
    for count in range(6):
        assert plan_meta([*gen0(count), prior_meta()], config=config, bust_pressure=False) is None
    assert plan_meta([*gen0(6), prior_meta()], config=config, bust_pressure=False) is not None


def test_archived_and_meta_rows_are_not_counted() -> None:
    rows = [*gen0(19), row(50, archived=True), row(60, generation=1, kind="reflector", archived=True)]
    assert plan_meta(rows, config=CONFIG, bust_pressure=False) is None
    rows.append(row(70, kind="digest"))
    plan = plan_meta(rows, config=CONFIG, bust_pressure=False)
    assert plan is not None
    assert plan.prior is None  # the archived meta is not a prior
    assert "r70" in {r.id for r in plan.keep}
    assert "r50" not in {r.id for r in plan.merge + plan.keep}


def test_order_is_by_seq_not_input_order() -> None:
    rows = gen0(20)
    random.Random(7).shuffle(rows)
    plan = plan_meta(rows, config=CONFIG, bust_pressure=False)
    assert plan is not None
    assert [r.seq for r in plan.keep] == [16, 17, 18, 19, 20]


def test_prior_is_highest_generation_newest_on_ties() -> None:
    metas = [prior_meta(100, 1), prior_meta(101, 2), prior_meta(99, 2)]
    plan = plan_meta([*gen0(6), *metas], config=CONFIG, bust_pressure=True)
    assert plan is not None
    assert plan.prior is not None
    assert plan.prior.id == "r101"


@given(
    st.lists(
        st.tuples(st.integers(0, 2), st.sampled_from(["observer", "digest"]), st.booleans()),
        max_size=40,
    ),
    st.booleans(),
)
def test_partition_properties(spec: list[tuple[int, DistillationKind, bool]], bust: bool) -> None:
    rows = [
        row(i, generation=g, kind=k if g == 0 else "reflector", archived=a)
        for i, (g, k, a) in enumerate(spec)
    ]
    plan = plan_meta(rows, config=CONFIG, bust_pressure=bust)
    live0 = [r for r in rows if r.generation == 0 and not r.archived]
    if plan is None:
        return
    assert len(live0) >= meta_threshold(CONFIG, bust_pressure=bust)
    assert list(plan.merge + plan.keep) == sorted(live0, key=lambda r: r.seq)
    assert len(plan.keep) == 5
    assert len(plan.merge) >= (1 if plan.prior else 3)
    live_metas = [r for r in rows if r.generation > 0 and not r.archived]
    assert (plan.prior is None) == (not live_metas)


def test_meta_budget() -> None:
    assert meta_budget(0, CONFIG) == 1_024
    assert meta_budget(4_096, CONFIG) == 1_024
    assert meta_budget(4_101, CONFIG) == 1_026  # ceil(1025.25)
    assert meta_budget(10_000, CONFIG) == 2_500
    assert meta_budget(32_768, CONFIG) == 8_192
    assert meta_budget(1_000_000, CONFIG) == 8_192


def test_anchored_prompt() -> None:
    prior = prior_meta()
    plan = plan_meta([*gen0(8), prior], config=CONFIG, bust_pressure=True)
    assert plan is not None
    prompt = build_meta_prompt(plan, counter=len)
    assert prompt.worker == "meta-distill"
    assert prompt.system.splitlines()[0] == marker("meta-distill")
    assert section(prompt.user, "document") == prior.observations
    segments = section(prompt.user, "segments")
    assert segments == render_segments(plan.merge)
    assert segments.count("Segment ") == 3
    assert "Segment 1\nDate: Feb 25, 2026\n* red (09:00) event 1" in segments
    for kept in plan.keep:
        assert f"event {kept.seq}\n" not in segments + "\n"
    assert "Update the document" in prompt.user
    expected_input = len(prior.observations) + len(segments)
    assert meta_input_tokens(plan, counter=len) == expected_input
    assert prompt.max_tokens == meta_budget(expected_input, CONFIG)


def test_scratch_prompt_and_budget_config() -> None:
    plan = plan_meta(gen0(20), config=CONFIG, bust_pressure=False)
    assert plan is not None
    assert plan.prior is None
    assert "Build it from scratch" in build_meta_prompt(plan).user
    big = "x" * 40_000
    plan = MetaPlan(prior=None, merge=(row(1, observations=big),), keep=())
    prompt = build_meta_prompt(plan, counter=len, config=LoreConfig(meta_budget=(0.5, 10, 100_000)))
    assert section(prompt.user, "document") == ""
    assert "from scratch" in prompt.user
    assert prompt.max_tokens == math.ceil(0.5 * len("Segment 1\n" + big))


def test_check_meta_output() -> None:
    body = "\n".join(
        ["## Current State", "- a", "**Key Decisions**", "Technical Changes:", "# session timeline"]
    )
    text = f"preamble <OBSERVATIONS>\n{body}\n</observations>"
    assert check_meta_output(text, input_tokens=len(body), counter=len) == (body, [])
    with pytest.raises(OutputRejected) as info:
        check_meta_output(text, input_tokens=len(body) - 1, counter=len)
    assert info.value.reason == "expansion"
    observations, warnings = check_meta_output(
        "<observations>- only</observations>", input_tokens=99, counter=len
    )
    assert observations == "- only"
    assert warnings == list(HEADINGS)
    for bad, reason in [
        ("no block", "no_observations_block"),
        ("<observations> </observations>", "empty_observations"),
    ]:
        with pytest.raises(OutputRejected) as info:
            check_meta_output(bad, input_tokens=99, counter=len)
        assert info.value.reason == reason


def test_generation_sources_and_archive_set() -> None:
    rows = gen0(8)
    plan = plan_meta(rows, config=CONFIG, bust_pressure=True)
    assert plan is not None
    assert next_generation(plan) == 1
    assert meta_source_ids(plan) == ("m1a", "m1b", "m2a", "m2b", "m3a", "m3b")
    assert meta_archive_ids(plan) == ("r1", "r2", "r3")

    prior = prior_meta(generation=3)
    overlapping = [row(1, sources=("old2", "n1")), row(2, sources=("n1", "n2"))]
    plan = MetaPlan(prior=prior, merge=tuple(overlapping), keep=tuple(gen0(5, start=10)))
    assert next_generation(plan) == 4
    assert meta_source_ids(plan) == ("old1", "old2", "n1", "n2")
    assert meta_archive_ids(plan) == ("r1", "r2", "r100")

    odd = MetaPlan(prior=prior_meta(generation=1), merge=(row(5, generation=2, kind="reflector"),), keep=())
    assert next_generation(odd) == 3
