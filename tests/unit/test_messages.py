"""Message ids, content hashes, kinds and tool units."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lore_core.errors import InvalidMessagesError
from lore_core.messages import (
    Unit,
    canonical_json,
    compact_json,
    content_blocks,
    content_hash,
    group_units,
    has_tool_use,
    message_id,
    message_ids,
    message_kind,
)

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

# --- ids ----------------------------------------------------------------------------------------------------


def test_message_id_is_the_documented_digest() -> None:
    expected = hashlib.sha256(b'user\x000\x00[{"text":"hi","type":"text"}]').hexdigest()[:32]
    assert message_id("user", 0, "hi") == expected
    assert len(expected) == 32


def test_string_content_is_one_text_block() -> None:
    assert message_id("user", 3, "hi") == message_id("user", 3, [text("hi")])
    assert content_blocks("hi") == [{"type": "text", "text": "hi"}]


def test_id_depends_on_role_position_and_content() -> None:
    base = message_id("user", 1, "hi")
    assert message_id("assistant", 1, "hi") != base
    assert message_id("user", 2, "hi") != base
    assert message_id("user", 1, "hi!") != base
    assert message_id("user", 1, [text("hi"), text("x")]) != base
    assert message_id("user", 1, "hi") == base


def test_id_ignores_cache_control_at_any_depth() -> None:
    plain = [text("a"), tool_result("t1", [text("out"), image()])]
    marked = [
        text("a", cache_control={"type": "ephemeral"}),
        tool_result(
            "t1",
            [text("out", cache_control={"type": "ephemeral", "ttl": "1h"}), image()],
            cache_control={"type": "ephemeral"},
        ),
    ]
    assert message_id("user", 4, marked) == message_id("user", 4, plain)
    assert content_hash(marked) == content_hash(plain)


def test_cache_control_text_in_a_string_value_is_content() -> None:
    tricky = 'config: {"cache_control": 1}'
    assert '"cache_control":' not in canonical_json(tricky).decode()  # escaped quotes inside a string value
    assert message_id("user", 0, tricky) != message_id("user", 0, "config: {}")


def test_canonical_json_is_sorted_compact_utf8() -> None:
    block = {"type": "text", "text": "héllo ✓", "citations": None}
    assert canonical_json([block]) == '[{"citations":null,"text":"héllo ✓","type":"text"}]'.encode()
    assert canonical_json("\ud800").startswith(b'[{"text":"')  # a lone surrogate does not crash


def test_content_hash_ignores_role_and_position() -> None:
    assert content_hash("hi") == content_hash([text("hi")])
    assert content_hash("hi") != content_hash("ho")
    assert len(content_hash("hi")) == 32


def test_message_ids_use_list_positions() -> None:
    messages = [user("same"), assistant("same"), user("same")]
    ids = message_ids(messages)
    assert ids == [message_id(m["role"], i, m["content"]) for i, m in enumerate(messages)]
    assert len(set(ids)) == 3


def test_unencodable_content_raises_not_json_with_position() -> None:
    with pytest.raises(InvalidMessagesError) as info:
        message_id("user", 7, [{"type": "text", "text": object()}])
    assert (info.value.index, info.value.reason) == (7, "not_json")
    with pytest.raises(InvalidMessagesError, match="not_json"):
        content_hash([{"type": "x", "v": {1, 2}}])


def test_ids_do_not_mutate_the_callers_dicts() -> None:
    messages = rich_conversation()
    before = copy.deepcopy(messages)
    message_ids(messages)
    for m in messages:
        content_hash(m["content"])
    assert messages == before
    assert messages[0]["content"][0]["cache_control"] == {"type": "ephemeral"}


def test_compact_json_keeps_key_order_and_never_raises() -> None:
    assert compact_json({"b": 1, "a": [1, "é"]}) == '{"b":1,"a":[1,"é"]}'
    assert compact_json({"x": {1}}) == '{"x":"{1}"}'
    loop: list[Any] = []
    loop.append(loop)
    assert compact_json(loop) == "[[...]]"


# Values as the JSON of a tool input can be: nested objects and lists of scalars.
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


def _reorder(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reorder(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reorder(v) for v in value]
    return value


def _mark(value: Any) -> Any:
    if isinstance(value, dict):
        return {**{k: _mark(v) for k, v in value.items()}, "cache_control": {"type": "ephemeral"}}
    if isinstance(value, list):
        return [_mark(v) for v in value]
    return value


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=6), _json, max_size=5), st.integers(0, 10_000))
def test_ids_are_stable_under_key_order_and_cache_control(tool_input: dict[str, Any], position: int) -> None:
    content = [text("calling"), tool_use("t1", "run", tool_input)]
    reference = message_id("assistant", position, content)
    assert message_id("assistant", position, _reorder(content)) == reference
    assert message_id("assistant", position, _mark(content)) == reference
    assert message_id("assistant", position, copy.deepcopy(content)) == reference


# --- kinds and units ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        (user("hi"), "human"),
        (user([text("hi"), image()]), "human"),
        (user([image()]), "human"),
        (user([tool_result("t1"), tool_result("t2")]), "tool_results"),
        # Mixed results and text: still part of the tool unit, never a turn or window start (ENGINE.md 8.1).
        (user([tool_result("t1"), text("and hurry")]), "tool_results"),
        (assistant("hello"), "assistant"),
        (assistant([tool_use("t1")]), "assistant"),
    ],
)
def test_message_kind(message: Msg, kind: str) -> None:
    assert message_kind(message) == kind


def test_has_tool_use() -> None:
    assert has_tool_use(assistant([text("x"), tool_use("t1")]))
    assert not has_tool_use(assistant("x"))
    assert not has_tool_use(
        assistant([{"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}}])
    )
    assert not has_tool_use(user([tool_result("t1")]))


def test_units_pair_tool_use_with_its_results() -> None:
    messages = [
        user("hi"),
        assistant([tool_use("a"), tool_use("b")]),
        user([tool_result("a"), tool_result("b")]),
        assistant([tool_use("c")]),
        user([tool_result("c"), text("also")]),
        assistant("done"),
        user("next"),
        assistant([tool_use("d")]),
    ]
    assert group_units(messages) == [
        Unit(0, 1, "human"),
        Unit(1, 3, "tool_chain"),
        Unit(3, 5, "tool_chain"),
        Unit(5, 6, "assistant"),
        Unit(6, 7, "human"),
        Unit(7, 8, "tool_chain"),  # pending: results not there yet
    ]
    assert len(Unit(1, 3, "tool_chain")) == 2
    assert Unit(1, 3, "tool_chain").last == 2


def test_units_of_invalid_input_still_partition() -> None:
    messages = [user([tool_result("x")]), assistant([tool_use("t")]), user("no results")]
    assert group_units(messages) == [Unit(0, 1, "tool_chain"), Unit(1, 2, "tool_chain"), Unit(2, 3, "human")]
    assert group_units([]) == []


def test_units_are_frozen() -> None:
    unit = Unit(0, 1, "human")
    with pytest.raises(AttributeError):
        setattr(unit, "start", 2)  # noqa: B010


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["human", "chain", "chain2", "answer"]), max_size=12))
def test_units_cover_the_list_without_splitting_a_pair(plan: list[str]) -> None:
    messages: list[Msg] = []
    for step, name in enumerate(plan):
        if name == "human":
            messages += [user(f"q{step}"), assistant(f"a{step}")]
        elif name == "answer":
            messages += [user(f"q{step}"), assistant([text("hm")])]
        else:
            ids = [f"t{step}", f"u{step}"] if name == "chain2" else [f"t{step}"]
            messages += [user(f"q{step}"), assistant([tool_use(i) for i in ids])]
            messages += [user([tool_result(i) for i in ids]), assistant("ok")]
    units = group_units(messages)
    assert [i for u in units for i in range(u.start, u.stop)] == list(range(len(messages)))
    for u in units:
        if has_tool_use(messages[u.start]):
            assert u.kind == "tool_chain"
            assert len(u) == 2
            assert message_kind(messages[u.last]) == "tool_results"
