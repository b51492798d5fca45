"""validate_messages / check_context: every reason code with the index it names, and property tests."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lore_core.errors import InvalidMessagesError
from lore_core.invariants import REASONS, check_context, validate_messages

from .conversation_builders import (
    Msg,
    assistant,
    image,
    rich_conversation,
    text,
    tool_result,
    tool_use,
    user,
)


def _reason(messages: Any, **kwargs: Any) -> tuple[int, str]:
    with pytest.raises(InvalidMessagesError) as info:
        validate_messages(messages, **kwargs)
    assert info.value.reason in REASONS
    return info.value.index, info.value.reason


HI = user("hi")
CALL = assistant([text("calling"), tool_use("t1")])

INVALID_CASES: list[tuple[str, Any, int, str]] = [
    ("string instead of list", "hello", -1, "not_a_list"),
    ("dict instead of list", {"role": "user", "content": "x"}, -1, "not_a_list"),
    ("message is a string", [HI, "oops"], 1, "not_a_dict"),
    ("message is None", [None], 0, "not_a_dict"),
    ("system role", [HI, {"role": "system", "content": "x"}], 1, "unknown_role"),
    ("no role", [{"content": "x"}], 0, "unknown_role"),
    ("first is assistant", [assistant("hello")], 0, "first_not_user"),
    ("two users", [HI, user("again")], 1, "roles_not_alternating"),
    ("two assistants", [HI, assistant("a"), assistant("b")], 2, "roles_not_alternating"),
    ("empty string", [HI, assistant("")], 1, "empty_content"),
    ("whitespace string", [user(" \n\t")], 0, "empty_content"),
    ("empty list", [HI, assistant([])], 1, "empty_content"),
    ("content None", [user(None)], 0, "empty_content"),
    ("content missing", [{"role": "user"}], 0, "empty_content"),
    ("empty text block", [HI, assistant([text("")])], 1, "empty_text_block"),
    ("blank text block", [user([image(), text("  ")])], 0, "empty_text_block"),
    (
        "blank text inside a tool_result",
        [HI, CALL, user([tool_result("t1", [text("")])])],
        2,
        "empty_text_block",
    ),
    ("unknown block type", [user([{"type": "banana"}])], 0, "bad_block_type"),
    ("block without type", [user([{"text": "x"}])], 0, "bad_block_type"),
    ("block not a dict", [user(["x"])], 0, "bad_block_type"),
    ("content is a number", [user(42)], 0, "bad_block_type"),
    ("tool_use in a user message", [user([tool_use("t1")])], 0, "bad_block_type"),
    ("tool_result in an assistant message", [HI, assistant([tool_result("t1")])], 1, "bad_block_type"),
    ("thinking in a user message", [user([{"type": "thinking", "thinking": "x"}])], 0, "bad_block_type"),
    ("image in an assistant message", [HI, assistant([image()])], 1, "bad_block_type"),
    ("text that is not a string", [user([{"type": "text", "text": 3}])], 0, "bad_block_type"),
    (
        "tool_use without id",
        [HI, assistant([{"type": "tool_use", "name": "x", "input": {}}])],
        1,
        "bad_block_type",
    ),
    (
        "tool_use input not an object",
        [HI, assistant([{**tool_use("t1"), "input": "x"}])],
        1,
        "bad_block_type",
    ),
    (
        "tool_result without id",
        [HI, CALL, user([{"type": "tool_result", "content": "x"}])],
        2,
        "bad_block_type",
    ),
    (
        "tool_result nested in a tool_result",
        [HI, CALL, user([tool_result("t1", [tool_result("t1")])])],
        2,
        "bad_block_type",
    ),
    ("image without source", [user([{"type": "image"}])], 0, "bad_block_type"),
    ("tool_result content is a number", [HI, CALL, user([tool_result("t1", 7)])], 2, "bad_block_type"),
    ("tool_result as the first message", [user([tool_result("t1")])], 0, "orphan_tool_result"),
    (
        "result for an unknown id",
        [HI, CALL, user([tool_result("t1"), tool_result("t9")])],
        2,
        "orphan_tool_result",
    ),
    (
        "result after an assistant without tool_use",
        [HI, assistant("ok"), user([tool_result("t1")])],
        2,
        "orphan_tool_result",
    ),
    (
        "result answering an older assistant",
        [HI, CALL, user([tool_result("t1")]), assistant("a"), user([tool_result("t1")])],
        4,
        "orphan_tool_result",
    ),
    ("tool_use answered by plain text", [HI, CALL, user("thanks")], 1, "missing_tool_result"),
    (
        "one of two parallel results missing",
        [HI, assistant([tool_use("t1"), tool_use("t2")]), user([tool_result("t2")])],
        1,
        "missing_tool_result",
    ),
    ("pending tool_use at the end", [HI, CALL], 1, "missing_tool_result"),
    (
        "tool_use id reused later",
        [HI, CALL, user([tool_result("t1")]), assistant([tool_use("t1")]), user([tool_result("t1")])],
        3,
        "duplicate_tool_use_id",
    ),
    (
        "tool_use id twice in one message",
        [HI, assistant([tool_use("t1"), tool_use("t1")])],
        1,
        "duplicate_tool_use_id",
    ),
    (
        "two results for one id",
        [HI, CALL, user([tool_result("t1"), tool_result("t1")])],
        2,
        "duplicate_tool_use_id",
    ),
    (
        "text before a tool_result",
        [HI, CALL, user([text("first"), tool_result("t1")])],
        2,
        "tool_result_not_first",
    ),
]


@pytest.mark.parametrize(
    ("messages", "index", "reason"),
    [pytest.param(m, i, r, id=name) for name, m, i, r in INVALID_CASES],
)
def test_each_invalid_input_names_its_index_and_reason(messages: Any, index: int, reason: str) -> None:
    assert _reason(messages) == (index, reason)


def test_every_reason_code_is_exercised() -> None:
    covered = {reason for *_, reason in INVALID_CASES} | {"no_messages", "not_json"}
    assert covered == REASONS


def test_error_detail_names_ids_never_text() -> None:
    secret = "my secret prompt text"
    with pytest.raises(InvalidMessagesError) as info:
        validate_messages([user(secret), assistant([text(secret), tool_use("toolu_abc")]), user(secret)])
    assert info.value.reason == "missing_tool_result"
    assert "toolu_abc" in str(info.value)
    assert secret not in str(info.value)


def test_missing_detail_lists_the_unanswered_ids() -> None:
    calls = assistant([tool_use(f"t{i}") for i in range(5)])
    with pytest.raises(InvalidMessagesError) as info:
        validate_messages([HI, calls, user([tool_result("t0")])])
    assert info.value.detail == "t1, t2, t3 and 1 more"


def test_pending_tool_use_allowed_only_when_asked() -> None:
    validate_messages([HI, CALL], allow_pending_tool_use=True)
    with pytest.raises(InvalidMessagesError, match="missing_tool_result"):
        check_context([HI, CALL])


def test_prefill_is_allowed() -> None:
    check_context([HI, assistant("The answer is")])
    check_context([HI, assistant([{"type": "thinking", "thinking": "hmm", "signature": "s"}, text("So")])])


def test_parallel_tool_calls_in_any_result_order() -> None:
    calls = assistant([text("two reads"), tool_use("a"), tool_use("b"), tool_use("c")])
    results = user(
        [tool_result("c"), tool_result("a", is_error=True), tool_result("b", [text("x")]), text("go on")]
    )
    check_context([HI, calls, results, assistant("done")])


def test_a_rich_valid_conversation_passes_and_is_not_mutated() -> None:
    messages = rich_conversation()
    before = copy.deepcopy(messages)
    check_context(messages)
    validate_messages(tuple(messages))
    assert messages == before


def test_tool_result_without_content_and_server_tool_blocks_pass() -> None:
    server = assistant(
        [
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}},
            {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
            text("found it"),
            tool_use("t1"),
        ]
    )
    check_context([HI, server, user([{"type": "tool_result", "tool_use_id": "t1"}])])


def test_empty_list_is_a_valid_history_but_not_a_request() -> None:
    validate_messages([])
    with pytest.raises(InvalidMessagesError) as info:
        check_context([])
    assert (info.value.index, info.value.reason) == (-1, "no_messages")


def test_shape_errors_come_before_pairing_errors() -> None:
    # Message 2 is both an orphan and has a blank text block: the shape check speaks first.
    assert _reason([HI, assistant("x"), user([tool_result("zz"), text(" ")])]) == (2, "empty_text_block")


def test_validation_is_linear() -> None:
    messages: list[Msg] = [HI]
    for i in range(20_000):
        messages.append(assistant([tool_use(f"t{i}"), tool_use(f"u{i}")]))
        messages.append(user([tool_result(f"t{i}"), tool_result(f"u{i}")]))
    started = time.perf_counter()
    check_context(messages)
    assert time.perf_counter() - started < 2.0  # ~0.1 s; a quadratic scan would take minutes


# --- property tests -----------------------------------------------------------------------------------------

_words = st.text(alphabet="abcdefgh xyz", min_size=1, max_size=12).filter(str.strip)


@st.composite
def conversations(draw: st.DrawFn) -> list[Msg]:
    """Valid histories: turns of user -> (tool_use -> results)* -> assistant, tool ids unique."""
    messages: list[Msg] = []
    next_id = 0
    for _ in range(draw(st.integers(1, 4))):
        messages.append(user(draw(st.one_of(_words, st.lists(_words.map(text), min_size=1, max_size=2)))))
        for _ in range(draw(st.integers(0, 3))):
            ids = [f"toolu_{next_id + k}" for k in range(draw(st.integers(1, 3)))]
            next_id += len(ids)
            lead = [text(draw(_words))] if draw(st.booleans()) else []
            messages.append(assistant(lead + [tool_use(i, draw(_words), {"q": draw(_words)}) for i in ids]))
            order = draw(st.permutations(ids))
            trail = [text(draw(_words))] if draw(st.booleans()) else []
            messages.append(user([tool_result(i, draw(_words)) for i in order] + trail))
        messages.append(assistant(draw(_words)))
    if draw(st.booleans()):
        messages.pop()  # end on the user's turn, as a request usually does
    return messages


@settings(max_examples=150, deadline=None)
@given(conversations())
def test_generated_conversations_are_valid(messages: list[Msg]) -> None:
    check_context(messages)


@settings(max_examples=150, deadline=None)
@given(conversations(), st.data())
def test_orphaning_a_random_result_is_rejected_at_its_message(
    messages: list[Msg], data: st.DataObject
) -> None:
    spots = [
        (i, j)
        for i, m in enumerate(messages)
        if isinstance(m["content"], list)
        for j, b in enumerate(m["content"])
        if b["type"] == "tool_result"
    ]
    if not spots:
        return
    i, j = data.draw(st.sampled_from(spots))
    broken = copy.deepcopy(messages)
    broken[i]["content"][j]["tool_use_id"] = "toolu_nowhere"
    assert _reason(broken) == (i, "orphan_tool_result")


@settings(max_examples=150, deadline=None)
@given(conversations(), st.data())
def test_dropping_a_random_result_is_rejected_at_its_tool_use(
    messages: list[Msg], data: st.DataObject
) -> None:
    spots = [
        (i, j)
        for i, m in enumerate(messages)
        if isinstance(m["content"], list) and len(m["content"]) > 1
        for j, b in enumerate(m["content"])
        if b["type"] == "tool_result"
    ]
    if not spots:
        return
    i, j = data.draw(st.sampled_from(spots))
    broken = copy.deepcopy(messages)
    del broken[i]["content"][j]
    assert _reason(broken) == (i - 1, "missing_tool_result")
