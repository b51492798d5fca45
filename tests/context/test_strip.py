"""Stripping tool outputs (ENGINE.md 8.6): the annotation, what is kept, what is never touched."""

from __future__ import annotations

from lore_core.config import LoreConfig
from lore_core.context import strip_message, strip_tool_outputs

from .builders import assistant, image, text, thinking, tool_result, tool_use, user

CONFIG = LoreConfig()
CALL = assistant(
    [thinking(), text("running"), tool_use("t1", "bash", {"command": "pytest"}), tool_use("t2", "read")]
)
OUTPUT = "FAILED tests/test_x.py::test_a\n1 failed, 3 passed\n"


def test_strip_replaces_output_and_keeps_the_block_keys() -> None:
    control = {"type": "ephemeral"}
    results = user(
        [
            tool_result("t1", OUTPUT, is_error=True, cache_control=control),
            tool_result("t2", [text("line one"), image()]),
            text("my note"),
        ]
    )
    stripped = strip_message(results, CALL, config=CONFIG)
    assert stripped is not results
    first, second, note = stripped["content"]
    assert first == {
        "type": "tool_result",
        "tool_use_id": "t1",
        "content": "[output omitted: bash, 2 lines, had errors, paths: tests/test_x.py]",
        "is_error": True,
        "cache_control": control,
    }
    assert first["cache_control"] is control
    assert second["content"] == "[output omitted: read, 1 lines]"  # the image went with the output
    assert note is results["content"][2]  # untouched blocks are the caller's objects
    assert results["content"][0]["content"] == OUTPUT  # the caller's message is unchanged


def test_strip_hint_and_unknown_tool() -> None:
    config = LoreConfig(strip_hint=" (use recall)")
    stripped = strip_message(user([tool_result("zz", "x")]), None, config=config)
    assert stripped["content"][0]["content"] == "[output omitted: tool, 1 lines] (use recall)"


def test_nothing_to_strip_returns_the_same_objects() -> None:
    empty = user([tool_result("t1", ""), tool_result("t2", None), tool_result("t3", [])])
    assert strip_message(empty, CALL, config=CONFIG) is empty
    assert strip_message(CALL, None, config=CONFIG) is CALL
    human = user("hello")
    assert strip_message(human, None, config=CONFIG) is human
    already = user([tool_result("t1", "[output omitted: bash, 3 lines]")])
    assert strip_message(already, CALL, config=CONFIG) is already


def test_strip_tool_outputs_range_and_identity() -> None:
    messages = [
        user("go"),
        CALL,
        user([tool_result("t1", "a"), tool_result("t2", "b")]),
        assistant([tool_use("t3", "grep")]),
        user([tool_result("t3", "c")]),
    ]
    out = strip_tool_outputs(messages, 0, 3, config=CONFIG)
    assert out is not messages
    assert out[1] is CALL
    assert out[1]["content"][2]["input"] == {"command": "pytest"}
    assert out[2]["content"][0]["content"] == "[output omitted: bash, 1 lines]"
    assert out[4] is messages[4]
    assert strip_tool_outputs(messages, 3, 4, config=CONFIG) is messages
