"""Curation ops: parsing, per-op validation, caps, the dedup guard and the prompts (ENGINE.md section 6)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lore_core.config import LoreConfig
from lore_core.curation import (
    CreateOp,
    DeleteOp,
    RejectedOp,
    UpdateOp,
    build_consolidation_prompt,
    build_curation_prompt,
    cap_content,
    content_words,
    dedup_target,
    parse_ops,
    render_entries,
    validate_ops,
)
from lore_core.outputs import OutputRejected
from lore_core.prompting import marker, section
from lore_core.store.records import KnowledgeCategory, KnowledgeRecord

T0 = datetime(2026, 2, 25, 9, 0, tzinfo=UTC)
CONFIG = LoreConfig()


def entry(
    entry_id: str,
    title: str = "A title",
    *,
    project: str | None = "p",
    category: KnowledgeCategory = "decision",
    content: str = "Some content.",
) -> KnowledgeRecord:
    return KnowledgeRecord(
        id=entry_id,
        project=project,
        category=category,
        title=title,
        content=content,
        confidence=0.9,
        created_at=T0,
        updated_at=T0,
    )


VISIBLE = [entry("k1"), entry("g1", project=None), entry("x1", project="other")]


@pytest.mark.parametrize(
    "text",
    [
        '[{"op": "delete", "id": "k1"}]',
        '```json\n[{"op": "delete", "id": "k1"}]\n```',
        'Here are the ops:\n```\n[{"op": "delete", "id": "k1"}]\n```\nDone.',
        'Sure. [{"op": "delete", "id": "k1"}] That is all.',
    ],
)
def test_parse_ops_tolerates_fences_and_text(text: str) -> None:
    assert parse_ops(text) == [{"op": "delete", "id": "k1"}]


@pytest.mark.parametrize("text", ["", "no ops", '{"op": "delete"}', "[not json", "```json\n{}\n```"])
def test_parse_ops_rejects_non_arrays(text: str) -> None:
    with pytest.raises(OutputRejected) as info:
        parse_ops(text)
    assert info.value.reason == "not_json"


def test_parse_empty_array() -> None:
    assert parse_ops("[]") == []


def test_each_op_is_checked_on_its_own() -> None:
    raw: list[object] = [
        {
            "op": "create",
            "category": "gotcha",
            "title": " Pool size ",
            "content": " keep 8 ",
            "scope": "global",
        },
        {"op": "frobnicate"},
        "not an object",
        {"category": "gotcha"},
        {"op": "create", "category": "wish", "title": "t", "content": "c"},
        {"op": "create", "title": "t", "content": "c"},
        {"op": "create", "category": "pattern", "title": "  ", "content": "c"},
        {"op": "create", "category": "pattern", "title": "t"},
        {"op": "create", "category": "pattern", "title": "t", "content": "c", "scope": "team"},
        {"op": "update", "content": "c"},
        {"op": "update", "id": "nope", "content": "c"},
        {"op": "update", "id": "x1", "content": "c"},
        {"op": "update", "id": "g1", "content": "global entries may be updated"},
        {"op": "update", "id": "k1"},
        {"op": "update", "id": "k1", "content": ""},
        {"op": "delete", "id": "k1", "reason": "stale"},
        {"op": "update", "id": "k1", "confidence": 0.5},
    ]
    ops, rejected = validate_ops(raw, visible=VISIBLE, project="p", config=CONFIG)
    assert ops == [
        CreateOp(category="gotcha", title="Pool size", content="keep 8", scope="global", confidence=1.0),
        UpdateOp(id="g1", content="global entries may be updated", confidence=None),
        DeleteOp(id="k1", reason="stale"),
    ]
    assert rejected == [
        RejectedOp(1, "unknown_op"),
        RejectedOp(2, "not_an_object"),
        RejectedOp(3, "missing_op"),
        RejectedOp(4, "bad_category"),
        RejectedOp(5, "missing_category"),
        RejectedOp(6, "missing_title"),
        RejectedOp(7, "missing_content"),
        RejectedOp(8, "bad_scope"),
        RejectedOp(9, "missing_id"),
        RejectedOp(10, "unknown_id"),
        RejectedOp(11, "other_project"),
        RejectedOp(13, "empty_update"),
        RejectedOp(14, "empty_content"),
        RejectedOp(16, "already_deleted"),
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.4, 0.4),
        (1.5, 1.0),
        (-0.2, 0.0),
        (0, 0.0),
        ("high", 1.0),
        (True, 1.0),
        (None, 1.0),
        (float("nan"), 1.0),
    ],
)
def test_confidence_on_create(value: object, expected: float) -> None:
    raw = {"op": "create", "category": "pattern", "title": "t", "content": "c", "confidence": value}
    ops, _ = validate_ops([raw], visible=[], project="p", config=CONFIG)
    assert ops == [CreateOp(category="pattern", title="t", content="c", confidence=expected)]


def test_confidence_on_update() -> None:
    raw = [{"op": "update", "id": "k1", "confidence": 7}, {"op": "update", "id": "k1", "confidence": "x"}]
    ops, _ = validate_ops(raw, visible=VISIBLE, project="p", config=CONFIG)
    assert ops == [UpdateOp(id="k1", confidence=1.0), UpdateOp(id="k1", confidence=1.0)]


@given(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5)))
def test_confidence_always_in_unit_range(value: object) -> None:
    raw = {"op": "create", "category": "pattern", "title": "t", "content": "c", "confidence": value}
    ops, rejected = validate_ops([raw], visible=[], project="p", config=CONFIG)
    assert not rejected
    op = ops[0]
    assert isinstance(op, CreateOp)
    assert 0.0 <= op.confidence <= 1.0


def test_content_cap_boundary() -> None:
    exact = "a" * 1_200
    assert cap_content(exact, 1_200) == exact
    over = "b" * 1_188 + "c" * 13
    capped = cap_content(over, 1_200)
    assert len(capped) == 1_200
    assert capped == "b" * 1_188 + " [truncated]"
    raw = [
        {"op": "create", "category": "pattern", "title": "t", "content": exact},
        {"op": "create", "category": "pattern", "title": "t", "content": over},
        {"op": "update", "id": "k1", "content": over},
    ]
    ops, _ = validate_ops(raw, visible=VISIBLE, project="p", config=CONFIG)
    assert [len(op.content or "") for op in ops if not isinstance(op, DeleteOp)] == [1_200, 1_200, 1_200]
    assert [op.content.endswith(" [truncated]") for op in ops if isinstance(op, CreateOp)] == [False, True]


def test_consolidation_rules() -> None:
    raw: list[object] = [
        {"op": "create", "category": "pattern", "title": "t", "content": "c"},
        {"op": "update", "id": "g1", "content": "c"},
        {"op": "delete", "id": "g1"},
        {"op": "update", "id": "k1", "content": "merged"},
    ]
    ops, rejected = validate_ops(raw, visible=VISIBLE, project="p", config=CONFIG, allow_create=False)
    assert ops == [UpdateOp(id="k1", content="merged")]
    assert rejected == [
        RejectedOp(0, "create_not_allowed"),
        RejectedOp(1, "global_entry"),
        RejectedOp(2, "global_entry"),
    ]


def test_dedup_same_title_same_scope() -> None:
    visible = [entry("k2", "Use  UV for deps"), entry("g2", "use uv for deps", project=None)]
    project_op = CreateOp(category="decision", title="use uv FOR deps", content="c")
    global_op = CreateOp(category="decision", title="Use UV for deps", content="c", scope="global")
    assert dedup_target(project_op, visible, project="p", config=CONFIG) == "k2"
    assert dedup_target(global_op, visible, project="p", config=CONFIG) == "g2"
    # Same title in the other scope only: too short for the fuzzy rule (2 content words), so insert.
    assert dedup_target(project_op, visible[1:], project="p", config=CONFIG) is None
    # Entries of another project are never targets.
    assert (
        dedup_target(project_op, [entry("x2", "use uv for deps", project="q")], project="p", config=CONFIG)
        is None
    )


@pytest.mark.parametrize(
    ("existing", "new", "hit"),
    [
        ("pin python dependency versions", "pin python dependency versions with uv lock", True),  # 4/4
        ("pin python versions", "pin python versions with uv lock files", False),  # 3 shared < 4
        ("alpha beta gamma delta one two", "alpha beta gamma delta three four", False),  # 4/6 < 0.7
        ("w1 w2 w3 w4 w5 w6 w7 a8 a9 a10", "w1 w2 w3 w4 w5 w6 w7 b8 b9 b10", True),  # 7/10 == 0.7
        ("the cache of the API and the DB", "cache API DB timeout", False),  # stopwords do not count
    ],
)
def test_dedup_fuzzy(existing: str, new: str, hit: bool) -> None:
    visible = [entry("k9", existing, category="pattern")]
    op = CreateOp(category="decision", title=new, content="c")
    assert dedup_target(op, visible, project="p", config=CONFIG) == ("k9" if hit else None)


def test_dedup_fuzzy_prefers_best_overlap() -> None:
    visible = [
        entry("k1", "retry policy for batch api calls backoff"),
        entry("k2", "retry policy batch api calls"),
        entry("g1", "retry policy for batch api calls", project=None),
    ]
    op = CreateOp(category="decision", title="Retry policy of batch API calls with backoff", content="c")
    # k1 shares 6/6 words; k2 and g1 share 5/5; all overlap 1.0, most shared wins.
    assert dedup_target(op, visible, project="p", config=CONFIG) == "k1"


def test_content_words() -> None:
    assert content_words("The Redis cache, and the `pool_size`!") == frozenset(
        {"redis", "cache", "pool_size"}
    )


def test_render_entries() -> None:
    entries = [entry("k1", "Pool\nsize", category="gotcha", content="keep it\n  at 8"), entry("k2")]
    assert render_entries(entries) == (
        "- [k1] (gotcha) Pool size: keep it at 8\n- [k2] (decision) A title: Some content."
    )
    assert render_entries([]) == ""


def test_curation_prompt() -> None:
    prompt = build_curation_prompt("  new material\n", VISIBLE[:2], config=CONFIG)
    assert prompt.worker == "curate"
    assert prompt.max_tokens == 2_048
    assert prompt.system.splitlines()[0] == marker("curate")
    assert section(prompt.user, "existing") == render_entries(VISIBLE[:2])
    assert section(prompt.user, "inputs") == "new material"
    assert section(prompt.user, "target") is None
    empty = build_curation_prompt("x", [], config=CONFIG)
    assert section(empty.user, "existing") == "(none)"


def test_consolidation_prompt() -> None:
    entries = [entry("k1"), entry("g1", project=None), entry("k2", "Second")]
    prompt = build_consolidation_prompt(entries, target=1, config=CONFIG)
    assert prompt.worker == "curate"
    assert prompt.max_tokens == 4_096
    assert prompt.system.splitlines()[0] == marker("curate")
    assert "update/delete only" in prompt.system
    assert "update/delete only" in prompt.user
    assert section(prompt.user, "existing") == render_entries([entries[0], entries[2]])
    assert section(prompt.user, "target") == "1"
    assert "has 2 entries" in prompt.user


def test_validated_ops_survive_a_json_round_trip() -> None:
    raw = [{"op": "create", "category": "gotcha", "title": "t", "content": "c"}, {"op": "delete", "id": "k1"}]
    ops, rejected = validate_ops(parse_ops(json.dumps(raw)), visible=VISIBLE, project="p", config=CONFIG)
    assert not rejected
    assert len(ops) == 2
