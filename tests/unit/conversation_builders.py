"""Small builders for Anthropic message dicts, shared by the unit tests of the message model."""

from __future__ import annotations

from typing import Any

Msg = dict[str, Any]


def user(content: Any) -> Msg:
    return {"role": "user", "content": content}


def assistant(content: Any) -> Msg:
    return {"role": "assistant", "content": content}


def text(value: str, **extra: Any) -> Msg:
    return {"type": "text", "text": value, **extra}


def tool_use(tool_id: str, name: str = "read", tool_input: dict[str, Any] | None = None) -> Msg:
    return {"type": "tool_use", "id": tool_id, "name": name, "input": tool_input or {}}


def tool_result(tool_id: str, content: Any = "ok", **extra: Any) -> Msg:
    return {"type": "tool_result", "tool_use_id": tool_id, "content": content, **extra}


def image(data: str = "iVBORw0KGgo=", media_type: str = "image/png") -> Msg:
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def rich_conversation() -> list[Msg]:
    """Every block kind the model knows, parallel tool calls, a mixed results message and a prefill."""
    return [
        user([text("look at this", cache_control={"type": "ephemeral"}), image()]),
        assistant(
            [
                {"type": "thinking", "thinking": "let me read", "signature": "c2lnbmF0dXJl"},
                {"type": "redacted_thinking", "data": "ZW5jcnlwdGVk"},
                text("reading both"),
                tool_use("toolu_1", "read", {"path": "/a.py"}),
                tool_use("toolu_2", "grep", {"pattern": "x", "path": "/"}),
            ]
        ),
        user(
            [
                tool_result("toolu_1", [text("print(1)"), image()]),
                tool_result("toolu_2", "no match", is_error=True),
                text("also, hurry"),
            ]
        ),
        assistant("Here is what I found."),
        user(
            [
                {
                    "type": "document",
                    "title": "spec",
                    "source": {"type": "text", "media_type": "text/plain", "data": "the spec"},
                },
                text("and this doc"),
            ]
        ),
        assistant("The answer is"),
    ]
