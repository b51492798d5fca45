"""The dedup pre-pass (ENGINE.md 8.6): repeated large outputs and superseded file reads."""

from __future__ import annotations

from typing import Any

import pytest

from lore_core.config import LoreConfig
from lore_core.context import ReadRange, dedup_outputs, read_range, turn_start

from .builders import Msg, assistant, image, text, tool_result, tool_use, user

CONFIG = LoreConfig()
BIG = "x" * 599 + "\n"  # exactly 600 characters
SMALL = "y" * 599


def _unit(
    tool_id: str, name: str, output: Any, tool_input: dict[str, Any] | None = None, **extra: Any
) -> list[Msg]:
    return [
        assistant([tool_use(tool_id, name, tool_input or {})]),
        user([tool_result(tool_id, output, **extra)]),
    ]


def _conversation(*units: list[Msg], tail: list[Msg] | None = None) -> list[Msg]:
    messages: list[Msg] = [user("start")]
    for unit in units:
        messages += unit
    messages += tail if tail is not None else [assistant("done"), user("next")]
    return messages


def _output(message: Msg, position: int = 0) -> Any:
    return message["content"][position]["content"]


def test_duplicate_large_outputs_keep_only_the_latest() -> None:
    messages = _conversation(_unit("a", "bash", BIG), _unit("b", "bash", BIG), _unit("c", "bash", BIG))
    out = dedup_outputs(messages, turn_start(messages), config=CONFIG)
    assert _output(out[2]) == "[duplicate output: same as a later bash result]"
    assert _output(out[4]) == "[duplicate output: same as a later bash result]"
    assert out[6] is messages[6]
    assert out[2]["content"][0]["tool_use_id"] == "a"
    assert out[1] is messages[1]  # tool_use messages are never touched


def test_small_outputs_other_tools_and_other_content_are_kept() -> None:
    messages = _conversation(
        _unit("a", "bash", SMALL), _unit("b", "bash", SMALL), _unit("c", "grep", BIG), _unit("d", "bash", BIG)
    )
    assert dedup_outputs(messages, turn_start(messages), config=CONFIG) is messages
    different = _conversation(_unit("a", "bash", BIG), _unit("b", "bash", BIG.replace("x", "z", 1)))
    assert dedup_outputs(different, turn_start(different), config=CONFIG) is different


def test_images_go_with_a_duplicate_output() -> None:
    content = [text(BIG), image()]
    messages = _conversation(_unit("a", "bash", content), _unit("b", "bash", list(content)))
    out = dedup_outputs(messages, turn_start(messages), config=CONFIG)
    assert _output(out[2]) == "[duplicate output: same as a later bash result]"


def test_current_turn_is_never_changed_but_supersedes() -> None:
    chain = [user("do it"), *_unit("b", "bash", BIG), *_unit("c", "bash", BIG)]
    messages = _conversation(_unit("a", "bash", BIG), tail=[assistant("ok"), *chain])
    start = turn_start(messages)
    assert start == 4
    out = dedup_outputs(messages, start, config=CONFIG)
    assert _output(out[2]) == "[duplicate output: same as a later bash result]"
    assert out[start:] == messages[start:]
    assert all(a is b for a, b in zip(out[start:], messages[start:], strict=True))


def test_parallel_results_in_one_message() -> None:
    messages = [
        user("go"),
        assistant([tool_use("a", "bash"), tool_use("b", "bash")]),
        user([tool_result("a", BIG), tool_result("b", BIG, is_error=True)]),
        assistant("done"),
        user("next"),
    ]
    out = dedup_outputs(messages, turn_start(messages), config=CONFIG)
    first, second = out[2]["content"]
    assert first["content"] == "[duplicate output: same as a later bash result]"
    assert second is messages[2]["content"][1]
    assert first["tool_use_id"] == "a"


def _read(tool_id: str, **tool_input: Any) -> list[Msg]:
    return _unit(tool_id, "read", f"contents of {tool_id}", tool_input)


@pytest.mark.parametrize(
    ("earlier", "later", "note"),
    [
        ({"path": "a.py"}, {"path": "a.py"}, "[earlier read of a.py: superseded by a later read]"),
        (
            {"path": "a.py", "offset": 5, "limit": 10},
            {"file_path": "a.py"},
            "[earlier read of a.py lines 5-14: ",
        ),
        ({"path": "a.py", "offset": 5}, {"path": "a.py", "offset": 3}, "[earlier read of a.py from line 5: "),
        (
            {"path": "a.py", "offset": 5, "limit": 10},
            {"path": "a.py", "offset": 5},
            "[earlier read of a.py lines 5-14",
        ),
        (
            {"filePath": "a.py", "offset": 5, "limit": 10},
            {"file": "a.py", "offset": 1, "limit": 20},
            "[earlier read",
        ),
        (
            {"path": "a.py", "limit": 10},
            {"path": "a.py", "offset": 1, "limit": 10},
            "[earlier read of a.py lines 1-10",
        ),
    ],
)
def test_file_read_covered(earlier: dict[str, Any], later: dict[str, Any], note: str) -> None:
    messages = _conversation(_read("r1", **earlier), _read("r2", **later))
    out = dedup_outputs(messages, turn_start(messages), config=CONFIG)
    assert _output(out[2]).startswith(note)
    assert _output(out[2]).endswith(": superseded by a later read]")
    assert out[4] is messages[4]


@pytest.mark.parametrize(
    ("earlier", "later"),
    [
        ({"path": "a.py"}, {"path": "a.py", "offset": 1, "limit": 50}),  # ranged never covers whole
        ({"path": "a.py"}, {"path": "a.py", "offset": 2}),  # open-ended from 2 does not cover whole
        ({"path": "a.py", "offset": 5}, {"path": "a.py", "offset": 6}),  # starts later
        ({"path": "a.py", "offset": 5}, {"path": "a.py", "offset": 1, "limit": 100}),  # bounded vs open
        (
            {"path": "a.py", "offset": 5, "limit": 10},
            {"path": "a.py", "offset": 6, "limit": 20},
        ),  # not contained
        ({"path": "a.py", "offset": 5, "limit": 10}, {"path": "a.py", "offset": 5, "limit": 9}),  # shorter
        ({"path": "a.py"}, {"path": "b.py"}),  # another file
        ({"path": "a.py", "offset": "x"}, {"path": "a.py"}),  # unknown range is never replaced
    ],
)
def test_file_read_not_covered(earlier: dict[str, Any], later: dict[str, Any]) -> None:
    messages = _conversation(_read("r1", **earlier), _read("r2", **later))
    assert dedup_outputs(messages, turn_start(messages), config=CONFIG) is messages


def test_a_failed_later_read_covers_nothing_and_other_tools_are_not_reads() -> None:
    failed = _conversation(
        _read("r1", path="a.py"), _unit("r2", "read", "no such file", {"path": "a.py"}, is_error=True)
    )
    assert dedup_outputs(failed, turn_start(failed), config=CONFIG) is failed
    grep = _conversation(
        _unit("g1", "grep", "x", {"path": "a.py"}), _unit("g2", "grep", "y", {"path": "a.py"})
    )
    assert dedup_outputs(grep, turn_start(grep), config=CONFIG) is grep


def test_read_range_parsing() -> None:
    assert read_range(tool_use("t", "read", {"path": "a.py"})) == ReadRange("a.py", 1, None)
    assert read_range(tool_use("t", "read", {"path": "a.py", "offset": "7", "limit": 3})) == ReadRange(
        "a.py", 7, 9
    )
    assert read_range(tool_use("t", "read", {"path": "a.py", "offset": 0})) == ReadRange("a.py", 1, None)
    assert read_range(tool_use("t", "read", {"path": "a.py", "limit": 0})) is None
    assert read_range(tool_use("t", "read", {"path": "a.py", "offset": True})) is None
    assert read_range(tool_use("t", "read", {"pattern": "x"})) is None
    assert ReadRange("a.py", 1, None).whole
    assert not ReadRange("a.py", 1, 10).whole
