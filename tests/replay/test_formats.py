"""Reading recorded sessions: Claude Code JSONL, Anthropic Messages JSON and the shared format, detected."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from lore_core.errors import ConfigError
from lore_core.invariants import validate_messages
from lore_core.transcript_formats import detect_format, load_transcript, repair_messages

CLAUDE_CODE: list[dict[str, Any]] = [
    {"type": "summary", "summary": "Earlier work", "leafUuid": "u0"},
    {
        "type": "user",
        "sessionId": "cc-1",
        "timestamp": "2026-03-01T10:00:00.000Z",
        "message": {"role": "user", "content": "Fix the failing test in tests/test_api.py"},
    },
    {  # one reply streamed as two lines (one per block)
        "type": "assistant",
        "timestamp": "2026-03-01T10:00:05.000Z",
        "message": {
            "id": "msg_1",
            "role": "assistant",
            "content": [{"type": "thinking", "thinking": "Read the test first.", "signature": "sig-1"}],
        },
    },
    {
        "type": "assistant",
        "timestamp": "2026-03-01T10:00:06.000Z",
        "message": {
            "id": "msg_1",
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"file_path": "t.py"}}
            ],
        },
    },
    {
        "type": "user",
        "timestamp": "2026-03-01T10:00:07.000Z",
        "message": {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "def test_api(): ..."}],
        },
    },
    {  # a sub-agent's line: not part of this conversation
        "type": "assistant",
        "isSidechain": True,
        "timestamp": "2026-03-01T10:00:08.000Z",
        "message": {"id": "msg_x", "role": "assistant", "content": [{"type": "text", "text": "side"}]},
    },
    {"type": "system", "content": "hook ran", "timestamp": "2026-03-01T10:00:09.000Z"},
    {
        "type": "assistant",
        "timestamp": "2026-03-01T10:00:10.000Z",
        "message": {
            "id": "msg_2",
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "toolu_2", "name": "Bash", "input": {"command": "pytest"}}
            ],
        },
    },
    {  # the user interrupted the tool call: it never got a result
        "type": "user",
        "timestamp": "2026-03-01T10:00:30.000Z",
        "message": {"role": "user", "content": [{"type": "text", "text": "[Request interrupted by user]"}]},
    },
    {
        "type": "assistant",
        "timestamp": "2026-03-01T10:00:35.000Z",
        "message": {"id": "msg_3", "role": "assistant", "content": [{"type": "text", "text": "Stopped."}]},
    },
]


def write_jsonl(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    return path


def test_a_claude_code_session_becomes_valid_messages(tmp_path: Path) -> None:
    loaded = load_transcript(write_jsonl(tmp_path / "s.jsonl", CLAUDE_CODE))
    assert loaded.format == "claude-code"
    transcript = loaded.transcript
    assert transcript.session_id == "cc-1"
    messages = transcript.anthropic_messages
    validate_messages(messages)
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user", "assistant"]
    assert [b["type"] for b in messages[1]["content"]] == [
        "thinking",
        "tool_use",
    ]  # the streamed parts merged
    assert transcript.messages[1].at == datetime(2026, 3, 1, 10, 0, 6, tzinfo=UTC)  # its last part's time
    interrupted = messages[4]["content"]
    assert interrupted[0] == {
        "type": "tool_result",
        "tool_use_id": "toolu_2",
        "content": "(no result recorded)",
    }
    assert interrupted[1]["text"] == "[Request interrupted by user]"
    assert "side" not in json.dumps(messages)


def test_messages_json_without_times_gets_made_up_ones(tmp_path: Path) -> None:
    data = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "nope", "content": "out"}]},
    ]
    path = tmp_path / "m.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    loaded = load_transcript(path)
    assert loaded.format == "messages"
    assert [item.at.isoformat() for item in loaded.transcript.messages] == [
        "2026-01-01T00:00:30+00:00",
        "2026-01-01T00:00:40+00:00",
        "2026-01-01T00:01:10+00:00",
    ]
    # an orphan tool result (no tool call before it) is kept as text
    assert loaded.transcript.messages[2].message["content"] == "[tool result] out"


def test_a_messages_object_keeps_its_system_prompt_and_times(tmp_path: Path) -> None:
    data = {
        "system": [{"type": "text", "text": "You are terse."}],
        "messages": [
            {"role": "user", "content": "hi", "timestamp": "2026-04-01T08:00:00Z"},
            {"role": "assistant", "content": "hello", "timestamp": 1775030460000},  # epoch ms
        ],
    }
    path = tmp_path / "m.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    loaded = load_transcript(path)
    assert (loaded.format, loaded.system) == ("messages", "You are terse.")
    assert loaded.transcript.messages[1].at == datetime(2026, 4, 1, 8, 1, tzinfo=UTC)


def test_the_shared_format_is_detected() -> None:
    data = {
        "session_id": "s",
        "messages": [
            {"index": 0, "role": "user", "content": "hi", "tokens": 1, "timestamp": 1_700_000_000_000},
            {"index": 1, "role": "assistant", "content": "yo", "tokens": 1, "timestamp": 1_700_000_001_000},
        ],
    }
    assert detect_format(json.dumps(data))[0] == "shared"
    assert detect_format(json.dumps(data["messages"]))[0] == "messages"


def test_the_real_shared_session_loads_as_valid_messages(shared_session_path: Path) -> None:
    loaded = load_transcript(shared_session_path)
    assert loaded.format == "shared"
    validate_messages(loaded.transcript.anthropic_messages, allow_pending_tool_use=True)
    assert len(loaded.transcript.messages) > 300


@pytest.mark.parametrize("text", ["", "not json", '{"a": 1}', "[1, 2]\n[3]"])
def test_anything_else_is_a_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError):
        load_transcript(path)


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_transcript(tmp_path / "absent.jsonl")


def test_repair_merges_roles_and_answers_dangling_tool_calls() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    messages = [
        {"role": "assistant", "content": "a leading reply is dropped"},
        {"role": "user", "content": "one"},
        {"role": "user", "content": "  "},  # blank: dropped
        {"role": "user", "content": "two"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "x", "input": {}}]},
        {"role": "assistant", "content": "more"},
    ]
    repaired, times = repair_messages(messages, [at] * len(messages))
    assert repaired == [
        {"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "t1", "name": "x", "input": {}},
                {"type": "text", "text": "more"},
            ],
        },
    ]
    assert len(times) == 2
