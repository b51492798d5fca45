"""Restore and persistence (ENGINE.md 10), the view, min_layer (8.3 steps 1-3) and after_transform (8.8)."""

from __future__ import annotations

import ast
import copy
import dataclasses
import inspect
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import lore_core.calibration
import lore_core.state
from lore_core.config import LoreConfig
from lore_core.state import SessionState, SessionStateView, min_layer
from lore_core.store.port import SessionStore
from lore_core.store.records import KnowledgePin, RawPin, SessionStateRecord
from tests.state.builders import CONFIG, MODEL, T0, bust_turn, make_state, transform, warm_up

AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
PIN = RawPin(raw_count=6, total_count=40, budget=30_000)
KPIN = KnowledgePin(text="- [k] (decision) use uv", tokens=12)


def _record(**fields: object) -> SessionStateRecord:
    base: dict[str, object] = {
        "session_id": "s1",
        "force_min_layer": 2,
        "last_layer": 3,
        "last_known_input": 42_000,
        "last_usage_model": MODEL,
        "last_input_count": 17,
        "last_window_start": 9,
        "last_turn_at": AT,
        "last_stop_reason": "tool_use",
        "calibration": {MODEL: 4_321, "other": 99},
        "raw_pin": PIN,
        "knowledge_pin": KPIN,
        "turns_since_curation": 2,
        "last_curated_at": AT - timedelta(hours=1),
        "idle_done_at": AT - timedelta(minutes=5),
    }
    base.update(fields)
    return SessionStateRecord(**base)  # type: ignore[arg-type]


# --- restore and persistence --------------------------------------------------------------------------------


def test_restore_takes_every_persisted_field() -> None:
    state = SessionState.from_record(_record(), project="p", model=MODEL)
    assert (state.session_id, state.project, state.model) == ("s1", "p", MODEL)
    assert state.force_min_layer == 2
    assert state.last_layer == 3
    assert state.last_known_input == 42_000
    assert state.last_usage_model == MODEL
    assert state.calibrated
    assert (state.last_input_count, state.last_window_start) == (17, 9)
    assert state.last_turn_at == AT.timestamp()
    assert state.last_stop_reason == "tool_use"
    assert state.calibration == {MODEL: 4_321, "other": 99}
    assert state.overhead(CONFIG) == 4_321
    assert state.raw_pin == PIN
    assert state.knowledge_pin == KPIN
    assert state.turns_since_curation == 2
    assert state.last_curated_at == (AT - timedelta(hours=1)).timestamp()
    assert state.idle_done_at == (AT - timedelta(minutes=5)).timestamp()
    assert not state.dirty


def test_short_term_signals_are_never_restored() -> None:
    live = SessionState.from_record(_record(), project="p", model=MODEL)
    warm_up(live)
    for _ in range(4):
        bust_turn(live, bust=True)
    for _ in range(3):
        transform(live, layer=2, urgent=True)
    live.came_out_of_idle = live.post_idle_compact = True
    assert live.consecutive_busts == 4
    assert live.consecutive_high_layer == 3
    assert live.urgent_pending
    restored = SessionState.from_record(
        SessionStateRecord(session_id="s1", **live.to_columns()),
        project="p",
        model=MODEL,
    )
    assert restored.consecutive_busts == 0
    assert restored.consecutive_high_layer == 0
    assert not (restored.came_out_of_idle)
    assert not (restored.post_idle_compact)
    assert not (restored.urgent_pending)
    assert restored.expected_cold
    assert not restored.transformed_since_usage
    assert restored.last_window_ids == frozenset()
    assert restored.usage_baseline is None


def test_window_fields_are_restored_only_with_last_turn_at() -> None:
    state = SessionState.from_record(_record(last_turn_at=None), project="p", model=MODEL)
    assert state.last_turn_at is None
    assert (state.last_layer, state.last_known_input, state.last_usage_model) == (0, 0, None)
    assert (state.last_input_count, state.last_window_start) == (0, 0)
    assert not state.calibrated
    # the rest persists regardless
    assert state.force_min_layer == 2
    assert state.calibration[MODEL] == 4_321
    assert state.raw_pin == PIN
    assert state.last_stop_reason == "tool_use"
    assert state.turns_since_curation == 2


def test_restored_under_another_model_is_uncalibrated() -> None:
    state = SessionState.from_record(_record(), project="p", model="other")
    assert not state.calibrated
    assert state.overhead(CONFIG) == 99


def test_naive_and_non_utc_datetimes_restore_to_the_same_instant() -> None:
    naive = SessionState.from_record(_record(last_turn_at=AT.replace(tzinfo=None)), project="p", model=MODEL)
    shifted = AT.astimezone(timezone(timedelta(hours=2)))
    other = SessionState.from_record(_record(last_turn_at=shifted), project="p", model=MODEL)
    assert naive.last_turn_at == other.last_turn_at == AT.timestamp()


def test_columns_are_exactly_the_save_state_keywords_with_aware_utc_times() -> None:
    columns = SessionState.from_record(_record(), project="p", model=MODEL).to_columns()
    keywords = [
        name
        for name, param in inspect.signature(SessionStore.save_state).parameters.items()
        if param.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    assert sorted(columns) == sorted(keywords)
    for name in ("last_turn_at", "last_curated_at", "idle_done_at"):
        value = columns[name]
        assert isinstance(value, datetime)
        assert value.utcoffset() == timedelta(0)
    assert columns["last_turn_at"] == AT


def test_columns_copy_the_calibration() -> None:
    state = make_state(calibration={MODEL: 1})
    columns = state.to_columns()
    state.calibration[MODEL] = 2
    assert columns["calibration"] == {MODEL: 1}


_times = st.none() | st.integers(0, 4_000_000_000).map(float)


@given(
    force=st.integers(0, 4),
    layer=st.integers(0, 4),
    known=st.integers(0, 10**6),
    counts=st.tuples(st.integers(0, 10**4), st.integers(0, 10**4)),
    turn_at=_times,
    stop=st.sampled_from([None, "end_turn", "tool_use"]),
    calibration=st.dictionaries(st.sampled_from([MODEL, "x", "y"]), st.integers(0, 10**5)),
    curated=_times,
    idle_done=_times,
)
def test_persisted_fields_round_trip(
    force: int,
    layer: int,
    known: int,
    counts: tuple[int, int],
    turn_at: float | None,
    stop: str | None,
    calibration: dict[str, int],
    curated: float | None,
    idle_done: float | None,
) -> None:
    state = make_state(
        force_min_layer=force, last_layer=layer, last_known_input=known, last_usage_model=MODEL,
        last_input_count=counts[0], last_window_start=counts[1], last_turn_at=turn_at, last_stop_reason=stop,
        calibration=calibration, raw_pin=PIN, knowledge_pin=KPIN, turns_since_curation=5,
        last_curated_at=curated, idle_done_at=idle_done,
    )  # fmt: skip
    record = SessionStateRecord(session_id="s1", **state.to_columns())
    restored = SessionState.from_record(record, project="default", model=MODEL)
    if turn_at is not None:
        assert restored == state
    else:
        fresh = make_state()
        window = (
            "last_layer",
            "last_known_input",
            "last_usage_model",
            "last_input_count",
            "last_window_start",
        )
        assert restored == dataclasses.replace(state, **{name: getattr(fresh, name) for name in window})


# --- the view -----------------------------------------------------------------------------------------------


def test_view_field_names_follow_engine_section_10() -> None:
    names = [item.name for item in dataclasses.fields(SessionStateView)]
    assert names == [
        "session_id", "project", "model", "calibrated", "overhead", "last_known_input", "last_layer",
        "last_turn_at", "last_stop_reason", "force_min_layer", "has_prefix_cache", "has_raw_pin",
        "snapshot_rows", "came_out_of_idle", "post_idle_compact", "urgent_pending", "consecutive_busts",
        "consecutive_high_layer", "turns_since_curation", "last_curated_at", "idle_done_at",
    ]  # fmt: skip


def test_view_reflects_the_state_and_its_arguments() -> None:
    state = SessionState.from_record(_record(), project="p", model=MODEL)
    state.consecutive_busts, state.urgent_pending = 2, True
    view = state.view(has_prefix_cache=True, snapshot_rows=7, config=CONFIG)
    assert view.calibrated
    assert view.overhead == 4_321
    assert view.has_raw_pin
    assert view.has_prefix_cache
    assert view.snapshot_rows == 7
    assert view.consecutive_busts == 2
    assert view.urgent_pending
    assert view.last_turn_at == AT.timestamp()
    assert view.force_min_layer == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.last_layer = 1  # type: ignore[misc]
    fresh = make_state().view(config=LoreConfig(first_turn_overhead_tokens=9_000))
    assert not fresh.calibrated
    assert fresh.overhead == 9_000
    assert fresh.snapshot_rows is None
    assert not fresh.has_prefix_cache
    assert not fresh.has_raw_pin
    assert make_state().view().overhead == 15_000


# --- min_layer ----------------------------------------------------------------------------------------------


def _sticky_state(layer: int, count: int = 10) -> SessionState:
    state = make_state()
    warm_up(state)
    transform(state, layer=layer, message_count=count)
    return state


def test_force_min_layer_is_one_shot() -> None:
    state = make_state(force_min_layer=2)
    assert min_layer(state, message_count=3, has_rows=True, config=CONFIG) == (2, False)
    assert state.force_min_layer == 0
    assert state.dirty
    state.dirty = False
    assert min_layer(state, message_count=3, has_rows=True, config=CONFIG) == (0, False)
    assert not state.dirty


def test_force_min_layer_is_capped_at_the_terminal_layer() -> None:
    assert min_layer(make_state(force_min_layer=9), message_count=1, has_rows=True, config=CONFIG)[0] == 4


@pytest.mark.parametrize("layer", [1, 2, 3])
def test_layers_one_to_three_are_sticky_while_the_list_does_not_shrink(layer: int) -> None:
    state = _sticky_state(layer, count=10)
    assert min_layer(state, message_count=10, has_rows=True, config=CONFIG) == (layer, False)
    assert min_layer(state, message_count=12, has_rows=True, config=CONFIG) == (layer, False)
    assert min_layer(state, message_count=9, has_rows=True, config=CONFIG) == (0, False)


def test_layer_four_is_never_sticky() -> None:
    assert min_layer(_sticky_state(4), message_count=20, has_rows=True, config=CONFIG) == (0, False)


def test_sticky_needs_calibration() -> None:
    state = _sticky_state(2)
    state.switch_model("other")
    assert min_layer(state, message_count=20, has_rows=True, config=CONFIG) == (0, False)


def test_force_and_sticky_combine_by_maximum() -> None:
    state = _sticky_state(2)
    state.force_min_layer = 1
    assert min_layer(state, message_count=20, has_rows=True, config=CONFIG) == (2, False)
    state.force_min_layer = 3
    assert min_layer(state, message_count=20, has_rows=True, config=CONFIG) == (3, False)


def test_post_idle_compact_is_one_shot_and_needs_rows() -> None:
    state = make_state(post_idle_compact=True)
    assert min_layer(state, message_count=5, has_rows=True, config=CONFIG) == (1, True)
    assert not state.post_idle_compact
    assert min_layer(state, message_count=5, has_rows=True, config=CONFIG) == (0, False)
    bare = make_state(post_idle_compact=True)
    assert min_layer(bare, message_count=5, has_rows=False, config=CONFIG) == (0, False)
    assert not bare.post_idle_compact  # cleared even without rows


def test_post_idle_compact_keeps_a_higher_sticky_layer() -> None:
    state = _sticky_state(3)
    state.post_idle_compact = True
    assert min_layer(state, message_count=20, has_rows=True, config=CONFIG) == (3, True)


# --- after_transform ----------------------------------------------------------------------------------------


def test_after_transform_records_the_turn() -> None:
    state = make_state(came_out_of_idle=True)
    transform(
        state, layer=1, window_ids=("c", "d"), message_count=4, window_start=2, request_estimate=777,
        system_estimate=50, tools_estimate=60, now=T0 + 5, urgent=True,
    )  # fmt: skip
    assert state.last_layer == 1
    assert state.last_window_ids == frozenset({"c", "d"})
    assert (state.last_input_count, state.last_window_start) == (4, 2)
    assert (state.last_request_estimate, state.last_system_estimate, state.last_tools_estimate) == (
        777,
        50,
        60,
    )
    assert state.last_turn_at == T0 + 5
    assert state.transformed_since_usage
    assert state.dirty
    assert state.urgent_pending
    assert not state.came_out_of_idle
    transform(state, urgent=False)
    assert state.urgent_pending  # raised until its consumer takes it


def test_high_layer_hint_fires_exactly_at_the_third_turn() -> None:
    state = make_state()
    hints = [transform(state, layer=layer) for layer in (2, 3, 4, 2, 2, 1, 2, 2, 2)]
    assert hints == [False, False, True, False, False, False, False, False, True]
    assert state.consecutive_high_layer == 3


def test_high_layer_hint_turns_comes_from_config() -> None:
    config = LoreConfig(high_layer_hint_turns=1)
    state = make_state()
    assert [transform(state, layer=2, config=config) for _ in range(2)] == [True, False]


# --- module hygiene -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", [lore_core.state, lore_core.calibration])
def test_modules_hold_no_mutable_globals_and_stay_small(module: object) -> None:
    path = Path(inspect.getfile(module))  # type: ignore[arg-type]
    assert len(path.read_text().splitlines()) < 400
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(
            node.value, ast.Dict | ast.List | ast.Set
        ):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            assert all(isinstance(t, ast.Name) and t.id == "__all__" for t in targets)


@pytest.mark.parametrize("module", [lore_core.state, lore_core.calibration])
def test_all_is_sorted_and_resolves(module: object) -> None:
    exported = list(module.__all__)  # type: ignore[attr-defined]
    key = [(0 if n.isupper() else 1 if n[0].isupper() else 2, n) for n in exported]
    assert key == sorted(key)
    assert all(hasattr(module, name) for name in exported)


def test_copies_are_independent() -> None:
    state = make_state(calibration={MODEL: 1})
    clone = copy.deepcopy(state)
    clone.calibration[MODEL] = 2
    assert state.calibration == {MODEL: 1}
