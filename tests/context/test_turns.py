"""Human messages, the current turn, window starts and unit boundaries (ENGINE.md 8.1)."""

from __future__ import annotations

from lore_core.context import is_human, turn_start, unit_start, window_start_at_or_after

from .builders import assistant, image, text, tool_result, tool_use, user

H1, A1 = user("first"), assistant("answer")
CALL = assistant([text("run"), tool_use("t1")])
RESULTS = user([tool_result("t1")])
CALL2 = assistant([tool_use("t2")])
RESULTS2 = user([tool_result("t2"), text("and also this")])
H2 = user([image(), text("second")])


def test_is_human() -> None:
    assert is_human(H1)
    assert is_human(H2)
    assert not is_human(A1)
    assert not is_human(RESULTS)
    assert not is_human(RESULTS2)  # text beside a result: still a results message


def test_turn_start_simple_and_empty() -> None:
    assert turn_start([]) == 0
    assert turn_start([H1]) == 0
    assert turn_start([H1, A1, H2]) == 2


def test_turn_start_extends_over_the_whole_chain() -> None:
    assert turn_start([H1, A1, H2, CALL, RESULTS]) == 2
    assert turn_start([H1, A1, H2, CALL, RESULTS, CALL2, RESULTS2]) == 2
    assert turn_start([H1, CALL, RESULTS, CALL2, RESULTS2]) == 0


def test_trailing_prefill_belongs_to_the_current_turn() -> None:
    assert turn_start([H1, A1, H2, assistant("Sure,")]) == 2
    assert turn_start([H1, A1, H2, CALL, RESULTS, assistant("So")]) == 2


def test_window_start_at_or_after() -> None:
    messages = [H1, A1, H2, CALL, RESULTS, A1, H1]
    assert window_start_at_or_after(messages, 0) == 0
    assert window_start_at_or_after(messages, 1) == 2
    assert window_start_at_or_after(messages, 3) == 6
    assert window_start_at_or_after(messages, 7) == 7
    assert window_start_at_or_after(messages, -3) == 0


def test_unit_start() -> None:
    messages = [H1, CALL, RESULTS, A1]
    assert unit_start(messages, 2) == 1
    assert unit_start(messages, 1) == 1
    assert unit_start(messages, 3) == 3
    assert unit_start(messages, 0) == 0
    assert unit_start([H1, RESULTS], 1) == 1  # a stray results message is its own unit
