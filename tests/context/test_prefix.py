"""The distilled prefix (ENGINE.md 8.5): render, append-only cache, select(), the pair and its breakpoint."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from lore_core.config import LoreConfig
from lore_core.context import (
    NOTICE_TEXT,
    PrefixCache,
    meta_row,
    pair_tokens,
    prefix_pair,
    render_row,
    render_rows,
    select_rows,
    update_prefix_cache,
)
from lore_core.tokens import estimate_message

from .builders import counter, row


def test_render_row_header() -> None:
    assert render_row(row(1, sources=4)) == "(d:00000001 | 4 sources)\n* yellow (10:01) row 1"
    assert render_row(row(2, r_compression=0.9)).startswith("(d:00000002 | 3 sources | lossy)\n")
    assert render_row(row(3, observations="  \n")) == "(d:00000003 | 3 sources)"


def test_render_without_meta() -> None:
    text = render_rows([row(1), row(2)])
    assert text == (
        "## Session History\n\n### Recent Work (distilled)\n\n"
        "(d:00000001 | 3 sources)\n* yellow (10:01) row 1\n\n"
        "(d:00000002 | 3 sources)\n* yellow (10:02) row 2"
    )


def test_render_with_meta_puts_it_first_under_earlier_work() -> None:
    meta = row(9, generation=1, observations="## Current State\nall good")
    text = render_rows([row(1), meta, row(2)])
    assert text == (
        "## Session History\n\n### Earlier Work (summarized)\n\n"
        "(d:00000009 | 3 sources)\n## Current State\nall good\n\n"
        "### Recent Work (distilled)\n\n"
        "(d:00000001 | 3 sources)\n* yellow (10:01) row 1\n\n"
        "(d:00000002 | 3 sources)\n* yellow (10:02) row 2"
    )


def test_meta_row_choice() -> None:
    old, new, higher = row(1, generation=1), row(2, generation=1), row(3, generation=2)
    assert meta_row([row(0)]) is None
    assert meta_row([old, new]) is new
    assert meta_row([higher, new]) is higher


def test_cache_unchanged_appended_and_rerendered() -> None:
    rows = [row(1), row(2)]
    first = update_prefix_cache(None, rows, counter=counter)
    assert first == PrefixCache(row_ids=(rows[0].id, rows[1].id), text=render_rows(rows), tokens=first.tokens)
    assert update_prefix_cache(first, rows, counter=counter) is first
    grown = [*rows, row(3)]
    appended = update_prefix_cache(first, grown, counter=counter)
    assert appended.text == first.text + "\n\n" + render_row(row(3))
    assert appended.text == render_rows(grown)
    assert appended.text.count("### Recent Work") == 1
    assert appended.tokens == pair_tokens(render_rows(grown), counter=counter)
    # a meta round archived rows 1-2: full render
    meta = row(4, generation=1)
    after_meta = update_prefix_cache(appended, [row(3), meta], counter=counter)
    assert after_meta.text == render_rows([row(3), meta])
    # a new meta row appended to a cached list: also a full render (it goes under Earlier Work)
    with_meta = update_prefix_cache(appended, [*grown, meta], counter=counter)
    assert with_meta.text == render_rows([*grown, meta])


@st.composite
def _row_lists(draw: st.DrawFn) -> list:  # type: ignore[type-arg]
    count = draw(st.integers(0, 12))
    gens = draw(st.lists(st.sampled_from([0, 0, 0, 1, 2]), min_size=count, max_size=count))
    return [
        row(i, generation=g, r_compression=draw(st.sampled_from([0.5, 1.0, 3.0]))) for i, g in enumerate(gens)
    ]


@settings(max_examples=80, deadline=None)
@given(rows=_row_lists(), cut=st.integers(0, 12), grow=st.integers(0, 12))
def test_appended_cache_always_equals_a_full_render(rows: list, cut: int, grow: int) -> None:  # type: ignore[type-arg]
    cached = update_prefix_cache(None, rows[:cut], counter=counter)
    updated = update_prefix_cache(cached, rows[: cut + grow], counter=counter)
    fresh = update_prefix_cache(None, rows[: cut + grow], counter=counter)
    assert updated == fresh
    # a cache built one row at a time is the same too
    stepwise = None
    for end in range(len(rows) + 1):
        stepwise = update_prefix_cache(stepwise, rows[:end], counter=counter)
    assert stepwise == update_prefix_cache(None, rows, counter=counter)


def test_select_all_when_few_meta_first() -> None:
    meta = row(5, generation=1)
    assert select_rows([row(1), row(2)], 5) == [row(1), row(2)]
    assert select_rows([row(1), meta, row(2)], 5) == [meta, row(1), row(2)]
    assert select_rows([row(1)], 0) == []


def test_select_keeps_meta_first_then_best_gen0_in_order() -> None:
    meta = row(50, generation=1)
    rows = [row(i) for i in range(8)]
    rows.insert(3, meta)
    chosen = select_rows(rows, 5)
    assert chosen[0] is meta
    assert [r.seq for r in chosen[1:]] == [4, 5, 6, 7]  # the most recent, in seq order


def test_select_scores_recency_and_bonus_words() -> None:
    rows = [row(i) for i in range(11)]
    rows[8] = row(8, observations="* red we decided on SQLite after a regression; architecture note")
    # row 8: 0.7 x 0.8 + 0.3 x 0.6 = 0.74 beats row 10 (0.7) and row 9 (0.63)
    assert [r.seq for r in select_rows(rows, 1)] == [8]
    assert [r.seq for r in select_rows(rows, 3)] == [8, 9, 10]
    rows[2] = row(2, observations="* red a gotcha: the bug is back")
    # row 2: 0.14 + 0.06 = 0.2: recency still wins over a small bonus
    assert [r.seq for r in select_rows(rows, 4)] == [7, 8, 9, 10]


def test_prefix_pair_and_breakpoint() -> None:
    notice, render = prefix_pair("## Session History", config=LoreConfig())
    assert notice == {"role": "user", "content": [{"type": "text", "text": NOTICE_TEXT}]}
    assert NOTICE_TEXT.startswith("[")
    assert NOTICE_TEXT.endswith("]")
    assert "\n" not in NOTICE_TEXT
    assert render == {
        "role": "assistant",
        "content": [{"type": "text", "text": "## Session History", "cache_control": {"type": "ephemeral"}}],
    }
    _, hour = prefix_pair("x", config=LoreConfig(cache_ttl="1h"))
    assert hour["content"][0]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    _, off = prefix_pair("x", config=LoreConfig(prefix_cache_breakpoint=False))
    assert "cache_control" not in off["content"][0]
    _, room = prefix_pair("x", config=LoreConfig(), breakpoint=False)
    assert "cache_control" not in room["content"][0]
    assert prefix_pair("x", config=LoreConfig()) == prefix_pair("x", config=LoreConfig())


def test_pair_tokens() -> None:
    notice, render = prefix_pair("abc", config=LoreConfig())
    expected = estimate_message(notice, counter=counter) + estimate_message(render, counter=counter)
    assert pair_tokens("abc", counter=counter) == expected == 7 + len(NOTICE_TEXT) + 7 + 3
