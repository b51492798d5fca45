"""Calibration (ENGINE.md 3.2) and expected input (3.3), by hand and by property."""

from __future__ import annotations

import copy

import pytest
from anthropic.types import Usage as SdkUsage
from hypothesis import given
from hypothesis import strategies as st

from lore_core.config import LoreConfig
from lore_core.state import (
    DeltaBaseline,
    UsageOutcome,
    delta_baseline,
    expected_input,
    read_usage,
    record_usage,
    unsustainable,
)
from tests.state.builders import CONFIG, MODEL, bust_turn, make_state, transform, usage, warm_up

OTHER = "claude-opus-4-1"


# --- calibration EMA ----------------------------------------------------------------------------------------


def test_first_sample_sets_the_ema_then_weighted_average() -> None:
    state = make_state()
    transform(state, request_estimate=12_000)
    first = record_usage(state, usage(uncached=20_000), stop_reason="end_turn", model=None, config=CONFIG)
    assert first == UsageOutcome(calibrated_sample=8_000, bust=None, actual=20_000)
    assert state.calibration == {MODEL: 8_000}
    assert state.calibrated
    assert state.overhead(CONFIG) == 8_000

    transform(state, request_estimate=15_000)
    record_usage(state, usage(uncached=1_000, read=24_000), stop_reason="end_turn", model=None, config=CONFIG)
    assert state.calibration[MODEL] == 8_600  # round(0.7 * 8_000 + 0.3 * 10_000)

    transform(state, request_estimate=28_000)
    record_usage(state, usage(read=30_000), stop_reason="end_turn", model=None, config=CONFIG)
    assert state.calibration[MODEL] == 6_620  # round(0.7 * 8_600 + 0.3 * 2_000)
    assert state.last_known_input == 30_000
    assert state.last_usage_model == MODEL


def test_actual_counts_uncached_writes_and_reads() -> None:
    state = make_state()
    transform(state, request_estimate=1_000)
    outcome = record_usage(state, usage(100, 200, 300), stop_reason=None, model=None, config=CONFIG)
    assert outcome.actual == 600
    assert state.last_known_input == 600


def test_sample_is_never_negative() -> None:
    state = make_state()
    transform(state, request_estimate=50_000)
    outcome = record_usage(state, usage(uncached=40_000), stop_reason=None, model=None, config=CONFIG)
    assert outcome.calibrated_sample == 0
    assert state.calibration[MODEL] == 0
    assert state.overhead(CONFIG) == 0  # a known EMA of 0 is used as is, not replaced by the first-turn value


def test_weight_comes_from_config() -> None:
    config = LoreConfig(calibration_new_weight=0.5)
    state = make_state()
    transform(state, request_estimate=0)
    record_usage(state, usage(uncached=1_000), stop_reason=None, model=None, config=config)
    transform(state, request_estimate=0)
    record_usage(state, usage(uncached=2_000), stop_reason=None, model=None, config=config)
    assert state.calibration[MODEL] == 1_500


def test_uncalibrated_overhead_is_the_first_turn_value() -> None:
    assert make_state().overhead(CONFIG) == 15_000
    assert make_state().overhead(LoreConfig(first_turn_overhead_tokens=7_000)) == 7_000
    assert not make_state().calibrated


@given(st.lists(st.tuples(st.integers(1, 10**6), st.integers(0, 10**6)), min_size=1, max_size=30))
def test_ema_stays_between_the_smallest_and_largest_sample(turns: list[tuple[int, int]]) -> None:
    state = make_state()
    samples = []
    for actual, estimate in turns:
        transform(state, request_estimate=estimate)
        outcome = record_usage(state, usage(uncached=actual), stop_reason=None, model=None, config=CONFIG)
        assert outcome.calibrated_sample == max(0, actual - estimate)
        samples.append(max(0, actual - estimate))
    assert min(samples) <= state.calibration[MODEL] <= max(samples)


# --- per model, per session ---------------------------------------------------------------------------------


def test_each_model_keeps_its_own_ema_and_a_switch_is_uncalibrated_until_its_usage() -> None:
    state = make_state()
    warm_up(state, actual=20_000, estimate=12_000)  # MODEL: 8_000
    state.switch_model(OTHER)
    assert (state.calibrated, state.expected_cold) == (False, True)
    assert state.overhead(CONFIG) == 15_000
    assert state.calibration == {MODEL: 8_000}

    transform(state, request_estimate=10_000)
    record_usage(state, usage(uncached=13_000), stop_reason=None, model=None, config=CONFIG)
    assert state.calibration == {MODEL: 8_000, OTHER: 3_000}
    assert (state.calibrated, state.last_usage_model) == (True, OTHER)

    state.switch_model(MODEL)
    assert (state.calibrated, state.expected_cold) == (False, True)  # a switch back: uncalibrated too
    assert state.overhead(CONFIG) == 8_000  # but the known EMA is used at once
    transform(state, request_estimate=10_000)
    record_usage(state, usage(uncached=14_000), stop_reason=None, model=None, config=CONFIG)
    assert (state.calibrated, state.calibration) == (True, {MODEL: 6_800, OTHER: 3_000})


def test_switching_to_the_same_model_changes_nothing() -> None:
    state = make_state()
    warm_up(state)
    before = copy.deepcopy(state)
    state.switch_model(MODEL)
    assert state == before


def test_a_usage_still_pending_at_a_switch_is_no_longer_paired() -> None:
    state = make_state()
    warm_up(state)
    transform(state, request_estimate=12_000)
    state.switch_model(OTHER)
    outcome = record_usage(state, usage(uncached=40_000), stop_reason=None, model=None, config=CONFIG)
    assert outcome.calibrated_sample is None
    assert state.calibration == {MODEL: 8_000}


def test_an_explicit_model_calibrates_that_model() -> None:
    state = make_state()
    transform(state, request_estimate=1_000)
    record_usage(state, usage(uncached=3_000), stop_reason=None, model=OTHER, config=CONFIG)
    assert state.calibration == {OTHER: 2_000}
    assert state.last_usage_model == OTHER
    assert not state.calibrated


def test_two_sessions_are_independent() -> None:
    one, two = make_state("one"), make_state("two")
    warm_up(one, actual=30_000, estimate=10_000)
    assert two.calibration == {}
    assert not two.calibrated
    assert two.last_known_input == 0
    warm_up(two, actual=11_000, estimate=10_000)
    assert one.calibration == {MODEL: 20_000}
    assert two.calibration == {MODEL: 1_000}
    for _ in range(5):
        bust_turn(one, bust=True)
    assert one.consecutive_busts == 5
    assert two.consecutive_busts == 0
    assert unsustainable(one, CONFIG)
    assert not unsustainable(two, CONFIG)


# --- pairing, zero usage, input shapes ----------------------------------------------------------------------


def test_a_second_usage_without_a_transform_changes_nothing() -> None:
    state = make_state()
    warm_up(state)
    bust_turn(state, bust=True)
    before = copy.deepcopy(state)
    outcome = record_usage(state, usage(write=50_000), stop_reason="end_turn", model=None, config=CONFIG)
    assert outcome == UsageOutcome(calibrated_sample=None, bust=None, actual=50_000)
    assert state == before


def test_usage_before_any_transform_changes_no_calibration() -> None:
    state = make_state()
    outcome = record_usage(state, usage(uncached=9_000), stop_reason="tool_use", model=None, config=CONFIG)
    assert outcome.calibrated_sample is None
    assert state.calibration == {}
    assert state.last_known_input == 0
    assert state.expected_cold
    assert state.last_stop_reason == "tool_use"  # the stop reason of a real response is always kept


def test_zero_usage_changes_nothing() -> None:
    state = make_state()
    warm_up(state)
    bust_turn(state, bust=True)
    transform(state)
    before = copy.deepcopy(state)
    assert record_usage(state, usage(), stop_reason="tool_use", model=None, config=CONFIG) == UsageOutcome(
        None, None, 0
    )
    assert state == before  # still paired: the real usage may follow


def test_stop_reason_is_kept() -> None:
    state = make_state()
    transform(state)
    record_usage(state, usage(uncached=10), stop_reason="tool_use", model=None, config=CONFIG)
    assert state.last_stop_reason == "tool_use"


def test_sdk_usage_object_and_dict_agree() -> None:
    sdk = SdkUsage(
        input_tokens=10, output_tokens=5, cache_creation_input_tokens=None, cache_read_input_tokens=90
    )
    assert read_usage(sdk) == read_usage({"input_tokens": 10, "cache_read_input_tokens": 90}) == (10, 0, 90)
    state = make_state()
    transform(state, request_estimate=40)
    assert record_usage(state, sdk, stop_reason=None, model=None, config=CONFIG).actual == 100


def test_a_non_numeric_count_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="input_tokens"):
        read_usage({"input_tokens": "12"})


# --- expected input -----------------------------------------------------------------------------------------


def test_uncalibrated_expected_is_estimate_plus_overhead() -> None:
    state = make_state()
    got = expected_input(
        state, message_ids=["a", "b"], message_tokens=[100, 200], system_estimate=30, tools_estimate=40,
        config=CONFIG,
    )  # fmt: skip
    assert got == 100 + 200 + 30 + 40 + 15_000


def test_calibrated_expected_adds_new_messages_and_the_system_and_tools_deltas() -> None:
    state = make_state()
    transform(state, window_ids=("a", "b", "c"), system_estimate=100, tools_estimate=50)
    record_usage(state, usage(read=20_000), stop_reason=None, model=None, config=CONFIG)
    got = expected_input(
        state, message_ids=["a", "b", "c", "d", "e"], message_tokens=[1, 2, 4, 8, 16],
        system_estimate=120, tools_estimate=45, config=CONFIG,
    )  # fmt: skip
    assert got == 20_000 + 8 + 16 + 20 - 5


def test_messages_evicted_by_the_last_compression_count_as_new() -> None:
    state = make_state()
    transform(state, layer=1, window_ids=("c", "d"), message_count=4, window_start=2)
    record_usage(state, usage(read=9_000), stop_reason=None, model=None, config=CONFIG)
    got = expected_input(
        state, message_ids=["a", "b", "c", "d", "e"], message_tokens=[1, 2, 4, 8, 16],
        system_estimate=0, tools_estimate=0, config=CONFIG,
    )  # fmt: skip
    assert got == 9_000 + 1 + 2 + 16


def test_a_transform_without_usage_keeps_the_paired_baseline() -> None:
    state = make_state()
    transform(state, window_ids=("a",), system_estimate=100)
    record_usage(state, usage(read=5_000), stop_reason=None, model=None, config=CONFIG)
    transform(state, window_ids=("a", "b"), system_estimate=300)  # its API call failed: no usage
    got = expected_input(
        state, message_ids=["a", "b", "c"], message_tokens=[1, 2, 4], system_estimate=300,
        tools_estimate=0, config=CONFIG,
    )  # fmt: skip
    assert got == 5_000 + 2 + 4 + 200  # "b" and the system growth are not in the 5_000 yet
    transform(state, window_ids=("a", "b", "c"), system_estimate=300)
    record_usage(state, usage(read=6_000), stop_reason=None, model=None, config=CONFIG)
    got = expected_input(
        state, message_ids=["a", "b", "c", "d"], message_tokens=[1, 2, 4, 8], system_estimate=300,
        tools_estimate=0, config=CONFIG,
    )  # fmt: skip
    assert got == 6_000 + 8


def test_delta_baseline_is_the_paired_transform() -> None:
    state = make_state()
    transform(
        state, window_ids=("b", "c"), message_count=3, window_start=1, system_estimate=7, tools_estimate=9
    )
    record_usage(state, usage(read=5_000), stop_reason=None, model=None, config=CONFIG)
    paired = DeltaBaseline(frozenset({"b", "c"}), 7, 9, 3, 1)
    assert delta_baseline(state) == paired
    transform(state, window_ids=("d",), message_count=4, window_start=3, system_estimate=8)
    assert state.usage_baseline == paired
    assert delta_baseline(state) == paired  # still pending: the unpaired transform is not the baseline
    transform(state, window_ids=("e",), message_count=5, window_start=4)
    assert delta_baseline(state) == paired
    record_usage(state, usage(read=6_000), stop_reason=None, model=None, config=CONFIG)
    assert delta_baseline(state) == DeltaBaseline(frozenset({"e"}), 0, 0, 5, 4)


def test_mismatched_ids_and_tokens_are_a_value_error() -> None:
    state = make_state()
    warm_up(state)
    with pytest.raises(ValueError, match="zip"):
        expected_input(
            state, message_ids=["a", "b", "c"], message_tokens=[1], system_estimate=0, tools_estimate=0,
            config=CONFIG,
        )  # fmt: skip


def test_expected_is_never_negative() -> None:
    state = make_state()
    transform(state, window_ids=("a",), system_estimate=50_000)
    record_usage(state, usage(read=1_000), stop_reason=None, model=None, config=CONFIG)
    got = expected_input(
        state, message_ids=["a"], message_tokens=[5], system_estimate=0, tools_estimate=0, config=CONFIG
    )
    assert got == 0


@given(
    tokens=st.lists(st.integers(0, 5_000), max_size=40),
    window=st.sets(st.integers(0, 39)),
    known=st.integers(1, 10**6),
    system=st.tuples(st.integers(0, 9_000), st.integers(0, 9_000)),
    tools=st.tuples(st.integers(0, 9_000), st.integers(0, 9_000)),
)
def test_calibrated_expected_matches_the_formula(
    tokens: list[int], window: set[int], known: int, system: tuple[int, int], tools: tuple[int, int]
) -> None:
    ids = [f"m{i}" for i in range(len(tokens))]
    state = make_state()
    transform(state, window_ids=[f"m{i}" for i in window], system_estimate=system[0], tools_estimate=tools[0])
    record_usage(state, usage(uncached=known), stop_reason=None, model=None, config=CONFIG)
    new = sum(t for i, t in enumerate(tokens) if i not in window)
    want = max(0, known + new + system[1] - system[0] + tools[1] - tools[0])
    got = expected_input(
        state, message_ids=ids, message_tokens=tokens, system_estimate=system[1], tools_estimate=tools[1],
        config=CONFIG,
    )  # fmt: skip
    assert got == want
