"""Idle resume (ENGINE.md 9.3) and idle detection (9.1)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lore_core.config import LoreConfig
from lore_core.state import IdleResume, SessionState, is_idle, min_layer, on_idle_resume, record_usage
from lore_core.store.records import KnowledgePin, RawPin
from tests.state.builders import CONFIG, T0, make_state, transform, usage

PIN = RawPin(raw_count=4, total_count=20, budget=10_000)
KPIN = KnowledgePin(text="k", tokens=1)


def _transformed(**fields: Any) -> SessionState:
    state = make_state(raw_pin=PIN, knowledge_pin=KPIN, **fields)
    transform(state, now=T0)
    state.dirty = False
    return state


# --- thresholds ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "threshold"),
    [
        (LoreConfig(), 300.0),
        (LoreConfig(cache_ttl="1h"), 3_600.0),
        (LoreConfig(idle_resume_minutes=10), 600.0),
        (LoreConfig(cache_ttl="1h", idle_resume_minutes=2.5), 150.0),
    ],
)
def test_the_threshold_is_the_cache_ttl_unless_set(config: LoreConfig, threshold: float) -> None:
    state = _transformed()
    before = copy.deepcopy(state)
    assert on_idle_resume(state, now=T0 + threshold - 0.001, skip_compact=False, config=config) == IdleResume(
        False, 0
    )
    assert state == before
    assert on_idle_resume(state, now=T0 + threshold, skip_compact=False, config=config) == IdleResume(
        True, int(threshold * 1000)
    )


def test_zero_disables() -> None:
    state = _transformed()
    config = LoreConfig(idle_resume_minutes=0)
    assert on_idle_resume(state, now=T0 + 10**7, skip_compact=False, config=config) == IdleResume(False, 0)
    assert state.raw_pin == PIN
    assert not state.came_out_of_idle


def test_a_never_transformed_session_does_not_resume() -> None:
    state = make_state(raw_pin=PIN)
    assert on_idle_resume(state, now=T0, skip_compact=False, config=CONFIG) == IdleResume(False, 0)
    assert state.raw_pin == PIN


# --- effects ------------------------------------------------------------------------------------------------


def test_a_trigger_drops_the_pins_and_arms_the_one_shots() -> None:
    state = _transformed(expected_cold=False)
    resume = on_idle_resume(state, now=T0 + 1_234.5678, skip_compact=False, config=CONFIG)
    assert resume == IdleResume(True, 1_234_567)
    assert state.raw_pin is None
    assert state.knowledge_pin is None
    assert state.dirty
    assert state.came_out_of_idle
    assert state.expected_cold
    assert state.post_idle_compact


def test_skip_compact_arms_no_compaction() -> None:
    state = _transformed()
    assert on_idle_resume(state, now=T0 + 900, skip_compact=True, config=CONFIG).triggered
    assert state.came_out_of_idle
    assert state.expected_cold
    assert not state.post_idle_compact
    assert min_layer(state, message_count=50, has_rows=True, config=CONFIG) == (0, False)


@given(
    layer=st.integers(0, 4),
    calibration=st.dictionaries(st.text(min_size=1, max_size=8), st.integers(0, 10**5), max_size=3),
    busts=st.integers(0, 9),
    force=st.integers(0, 4),
    known=st.integers(0, 10**6),
    gap=st.floats(0, 10**6),
    skip=st.booleans(),
)
def test_resume_never_touches_layer_calibration_busts_or_force(
    layer: int, calibration: dict[str, int], busts: int, force: int, known: int, gap: float, skip: bool
) -> None:
    state = _transformed()
    state.last_layer, state.calibration, state.consecutive_busts = layer, dict(calibration), busts
    state.force_min_layer, state.last_known_input = force, known
    on_idle_resume(state, now=T0 + gap, skip_compact=skip, config=CONFIG)
    assert (state.last_layer, state.calibration, state.consecutive_busts) == (layer, calibration, busts)
    assert (state.force_min_layer, state.last_known_input, state.last_turn_at) == (force, known, T0)


def test_the_next_transform_consumes_came_out_of_idle_and_compacts_with_rows() -> None:
    state = _transformed()
    on_idle_resume(state, now=T0 + 600, skip_compact=False, config=CONFIG)
    assert min_layer(state, message_count=50, has_rows=True, config=CONFIG) == (1, True)
    transform(state, layer=1, now=T0 + 600)
    assert not state.came_out_of_idle
    assert not state.post_idle_compact
    record_usage(state, usage(write=9_000), stop_reason="end_turn", model=None, config=CONFIG)
    assert state.consecutive_busts == 0
    assert not state.expected_cold


# --- is_idle ------------------------------------------------------------------------------------------------


def test_idle_after_the_timeout() -> None:
    state = _transformed(last_stop_reason="end_turn")
    assert not is_idle(state, now=T0 + 59.9, config=CONFIG)
    assert is_idle(state, now=T0 + 60, config=CONFIG)


def test_a_tool_use_stop_waits_for_the_tool_timeout() -> None:
    state = _transformed(last_stop_reason="tool_use")
    assert not is_idle(state, now=T0 + 60, config=CONFIG)
    assert not is_idle(state, now=T0 + 599, config=CONFIG)
    assert is_idle(state, now=T0 + 600, config=CONFIG)


def test_a_tool_use_timeout_never_undercuts_the_plain_one() -> None:
    state = _transformed(last_stop_reason="tool_use")
    config = LoreConfig(idle_timeout_seconds=900, tool_use_idle_seconds=600)
    assert not is_idle(state, now=T0 + 600, config=config)
    assert is_idle(state, now=T0 + 900, config=config)


def test_idle_work_runs_once_per_idle_period() -> None:
    state = _transformed()
    assert is_idle(state, now=T0 + 61, config=CONFIG)
    state.idle_done_at = T0 + 61
    assert not is_idle(state, now=T0 + 5_000, config=CONFIG)
    transform(state, now=T0 + 6_000)  # the next transform opens a new period
    assert not is_idle(state, now=T0 + 6_030, config=CONFIG)
    assert is_idle(state, now=T0 + 6_060, config=CONFIG)


def test_idle_done_at_the_same_instant_as_the_turn_counts_as_done() -> None:
    state = _transformed(idle_done_at=T0)
    assert not is_idle(state, now=T0 + 100, config=CONFIG)


def test_a_never_transformed_session_is_not_idle() -> None:
    assert not is_idle(make_state(), now=T0 + 10**6, config=CONFIG)
