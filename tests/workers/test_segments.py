"""Tool units and segmentation (ENGINE.md 2 "Tool units", 4.3; pitfalls 19, 20, 32)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from lore_core.config import LoreConfig
from lore_core.segments import Segment, segment, units_of
from lore_core.store.records import MessageKind, MessageRecord

T0 = datetime(2026, 2, 25, 9, 30, tzinfo=UTC)
CONFIG = LoreConfig(max_segment_tokens=1_000, min_segment_tokens=64)


def rec(
    position: int,
    tokens: int = 10,
    *,
    minutes: float = 0.0,
    kind: MessageKind = "human",
    unit_id: str | None = None,
) -> MessageRecord:
    role = "assistant" if kind == "assistant" else "user"
    return MessageRecord(
        id=f"{position:032x}",
        session_id="s1",
        position=position,
        role=role,
        kind=kind,
        text=f"message {position}",
        content_hash=f"h{position}",
        tokens=tokens,
        created_at=T0 + timedelta(minutes=minutes),
        unit_id=unit_id,
    )


def tool_unit(position: int, tokens: int = 10, *, minutes: float = 0.0) -> list[MessageRecord]:
    call = rec(position, tokens, minutes=minutes, kind="assistant")
    return [call, rec(position + 1, tokens, minutes=minutes, kind="tool_results", unit_id=call.id)]


def chain(sizes: list[int], minutes: list[float]) -> list[MessageRecord]:
    return [rec(i, size, minutes=at) for i, (size, at) in enumerate(zip(sizes, minutes, strict=True))]


def positions(segments: list[Segment]) -> list[list[int]]:
    return [[r.position for r in s.records] for s in segments]


# --- units ---------------------------------------------------------------------------------------------


def test_units_keep_tool_calls_with_their_results() -> None:
    question, (call, results), answer = rec(0), tool_unit(1), rec(3, kind="assistant")
    assert units_of([question, call, results, answer]) == [(question,), (call, results), (answer,)]


def test_several_result_rows_join_the_same_call() -> None:
    call, first = tool_unit(0)
    second = rec(2, kind="tool_results", unit_id=call.id)
    assert units_of([call, first, second]) == [(call, first, second)]


def test_a_result_row_for_another_call_opens_its_own_unit() -> None:
    call = rec(0, kind="assistant")
    stray = rec(1, kind="tool_results", unit_id="f" * 32)
    after_user = rec(3, kind="tool_results", unit_id=rec(2).id)
    assert units_of([call, stray, rec(2), after_user]) == [(call,), (stray,), (rec(2),), (after_user,)]


def test_units_of_nothing() -> None:
    assert units_of([]) == []


def test_segment_ids_follow_the_records() -> None:
    records = (rec(0), rec(1))
    assert Segment(records=records, tokens=20).ids == (records[0].id, records[1].id)


# --- segment -------------------------------------------------------------------------------------------


def test_no_records_no_segments() -> None:
    assert segment([], config=CONFIG) == []


def test_everything_under_the_cap_is_one_segment() -> None:
    records = chain([300, 300, 400], [0, 1, 500])  # a huge gap does not matter under the cap
    [only] = segment(records, config=CONFIG)
    assert only.records == tuple(records)
    assert only.tokens == 1_000


def test_a_single_oversized_unit_is_its_own_segment() -> None:
    # The base case (pitfall 19): no infinite recursion on one unit over the cap.
    huge = tool_unit(0, tokens=5_000)
    [only] = segment(huge, config=CONFIG)
    assert only.records == tuple(huge)
    assert only.tokens == 10_000


def test_an_oversized_unit_between_others_is_isolated() -> None:
    records = chain([400, 5_000, 400], [0, 1, 2])
    assert positions(segment(records, config=CONFIG)) == [[0], [1], [2]]


def test_best_time_gap_splits_when_three_times_the_median() -> None:
    # Gaps 1, 1, 10, 1, 1 minutes: the 10-minute gap is >= 3 x median (1) and has >= 64 tokens each side.
    records = chain([200] * 6, [0, 1, 2, 12, 13, 14])
    assert positions(segment(records, config=CONFIG)) == [[0, 1, 2], [3, 4, 5]]


def test_a_gap_under_three_times_the_median_is_not_used() -> None:
    # Gaps 2, 2, 5, 2, 2: 5 < 3 x 2, so the cap split is used (first unit where the running sum exceeds 1000).
    records = chain([300] * 6, [0, 2, 4, 9, 11, 13])
    assert positions(segment(records, config=CONFIG)) == [[0, 1, 2], [3, 4, 5]]
    records = chain([300] * 5, [0, 2, 4, 9, 11])
    assert positions(segment(records, config=CONFIG)) == [[0, 1, 2], [3, 4]]


def test_gap_exactly_at_the_multiplier_is_used() -> None:
    records = chain([300] * 5, [0, 1, 2, 5, 6])  # gaps 1, 1, 3, 1: median 1, best 3 = 3 x 1
    assert positions(segment(records, config=CONFIG)) == [[0, 1, 2], [3, 4]]


def test_a_gap_with_a_thin_side_is_ignored() -> None:
    # The largest gap (259 min) leaves only 50 tokens on its right: skipped; the next best (38 min) is used.
    records = chain([300, 300, 300, 30, 300, 50], [0, 1, 2, 40, 41, 300])
    assert positions(segment(records, config=CONFIG)) == [[0, 1, 2], [3, 4, 5]]


def test_cap_split_at_the_first_unit_over_the_maximum() -> None:
    records = chain([400, 400, 400, 400], [0, 1, 2, 3])  # equal gaps: no gap qualifies
    assert positions(segment(records, config=CONFIG)) == [[0, 1], [2, 3]]


def test_small_right_remainder_merges_into_the_last_left_segment() -> None:
    records = chain([500, 450, 60], [0, 1, 2])  # running sum passes 1000 at the 60-token unit
    [only] = segment(records, config=CONFIG)
    assert [r.position for r in only.records] == [0, 1, 2]
    assert only.tokens == 1_010


def test_right_remainder_of_exactly_the_floor_stays_apart() -> None:
    records = chain([500, 450, 64], [0, 1, 2])
    assert positions(segment(records, config=CONFIG)) == [[0, 1], [2]]


def test_remainder_after_an_oversized_unit_merges_too() -> None:
    records = chain([5_000, 20], [0, 1])
    assert positions(segment(records, config=CONFIG)) == [[0, 1]]


def test_tool_units_are_never_split_by_the_cap() -> None:
    records = [*tool_unit(0, 300), *tool_unit(2, 300), *tool_unit(4, 300)]  # 600 tokens per unit
    assert positions(segment(records, config=CONFIG)) == [[0, 1], [2, 3], [4, 5]]


def test_order_and_identity_are_preserved() -> None:
    records = chain([400] * 12, [i * (7 if i % 4 == 0 else 1) for i in range(12)])
    result = segment(records, config=CONFIG)
    flat = [r for s in result for r in s.records]
    assert len(flat) == len(records)
    assert all(a is b for a, b in zip(flat, records, strict=True))


def test_long_histories_do_not_exhaust_the_stack() -> None:
    records = chain([900] * 5_000, [float(i) for i in range(5_000)])
    result = segment(records, config=CONFIG)
    assert len(result) == 5_000
    assert all(s.tokens == 900 for s in result)


# --- properties ----------------------------------------------------------------------------------------


@st.composite
def histories(draw: st.DrawFn) -> list[MessageRecord]:
    count = draw(st.integers(min_value=0, max_value=40))
    records: list[MessageRecord] = []
    minutes = 0.0
    position = 0
    for _ in range(count):
        minutes += draw(st.sampled_from([0.0, 0.5, 1.0, 2.0, 30.0, 240.0]))
        tokens = draw(st.integers(min_value=0, max_value=1_500))
        if draw(st.booleans()):
            call = rec(position, tokens, minutes=minutes, kind="assistant")
            results = [
                rec(position + 1 + k, draw(st.integers(0, 800)), minutes=minutes, kind="tool_results",
                    unit_id=call.id)
                for k in range(draw(st.integers(1, 2)))
            ]  # fmt: skip
            records += [call, *results]
            position += 1 + len(results)
        else:
            records.append(rec(position, tokens, minutes=minutes))
            position += 1
    return records


@settings(max_examples=150, deadline=None)
@given(
    records=histories(),
    cap=st.integers(min_value=64, max_value=3_000),
    multiplier=st.sampled_from([1.0, 3.0, 10.0]),
)
def test_segmentation_properties(records: list[MessageRecord], cap: int, multiplier: float) -> None:
    config = LoreConfig(max_segment_tokens=cap, min_segment_tokens=64, segment_gap_multiplier=multiplier)
    result = segment(records, config=config)
    # Every record exactly once, in order, the very same objects.
    flat = [r for s in result for r in s.records]
    assert len(flat) == len(records)
    assert all(a is b for a, b in zip(flat, records, strict=True))
    # Units are never split across segments.
    boundaries = {s.records[0].id for s in result}
    for unit in units_of(records):
        assert all(r.id not in boundaries for r in unit[1:])
    for seg in result:
        assert seg.records
        assert seg.tokens == sum(r.tokens for r in seg.records)
        units = units_of(seg.records)
        first = sum(r.tokens for r in units[0])
        # Within the cap, or a single unit, or a head within the cap (or one unit) plus a small remainder.
        if len(units) > 1 and seg.tokens > cap:
            assert seg.tokens < max(cap, first) + config.min_segment_tokens
