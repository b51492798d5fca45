"""Cache busts (ENGINE.md 8.8): the ratio, the counter, expected-cold turns, pressure, unsustainable."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lore_core.state import bust_pressure, on_idle_resume, record_usage, unsustainable
from tests.state.builders import CONFIG, T0, bust_turn, make_state, transform, usage, warm_up

OTHER = "claude-opus-4-1"


# --- busts --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("write", "read", "uncached", "bust"),
    [
        (50, 50, 0, False),  # exactly 0.5 is not a bust
        (51, 49, 0, True),
        (500, 0, 500, False),  # uncached input is in the denominator
        (0, 0, 100, False),
        (100, 0, 0, True),
    ],
)
def test_bust_ratio_edges(write: int, read: int, uncached: int, bust: bool) -> None:
    state = make_state()
    warm_up(state)
    transform(state)
    outcome = record_usage(state, usage(uncached, write, read), stop_reason=None, model=None, config=CONFIG)
    assert outcome.bust is bust
    assert state.consecutive_busts == int(bust)


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**6))
def test_bust_is_write_share_strictly_over_the_ratio(write: int, read: int, uncached: int) -> None:
    state = make_state()
    warm_up(state)
    transform(state)
    outcome = record_usage(state, usage(uncached, write, read), stop_reason=None, model=None, config=CONFIG)
    total = write + read + uncached
    assert outcome.bust is (None if total == 0 else Fraction(write, total) > Fraction(1, 2))


def test_busts_count_up_and_a_clean_turn_resets() -> None:
    state = make_state()
    warm_up(state)
    for expected in (1, 2, 3):
        bust_turn(state, bust=True)
        assert state.consecutive_busts == expected
    bust_turn(state, bust=False)
    assert state.consecutive_busts == 0


def test_bust_pressure_at_three_and_unsustainable_at_five() -> None:
    state = make_state()
    warm_up(state)
    seen = []
    for _ in range(5):
        seen.append((bust_pressure(state, CONFIG), unsustainable(state, CONFIG)))
        bust_turn(state, bust=True)
    seen.append((bust_pressure(state, CONFIG), unsustainable(state, CONFIG)))
    assert seen == [(False, False)] * 3 + [(True, False)] * 2 + [(True, True)]


def test_the_first_turn_is_expected_cold() -> None:
    state = make_state()
    assert state.expected_cold
    bust_turn(state, bust=True)
    assert (state.consecutive_busts, state.expected_cold) == (0, False)
    bust_turn(state, bust=True)
    assert state.consecutive_busts == 1


def test_the_turn_after_an_idle_resume_is_expected_cold() -> None:
    state = make_state()
    warm_up(state)
    bust_turn(state, bust=True)
    assert on_idle_resume(state, now=T0 + 3_600, skip_compact=False, config=CONFIG).triggered
    bust_turn(state, bust=True)
    assert state.consecutive_busts == 1  # neither counted nor reset
    bust_turn(state, bust=True)
    assert state.consecutive_busts == 2


def test_the_turn_after_a_model_switch_is_expected_cold() -> None:
    state = make_state()
    warm_up(state)
    bust_turn(state, bust=True)
    state.switch_model(OTHER)
    bust_turn(state, bust=True)
    assert state.consecutive_busts == 1
