"""Loading recorded sessions as Anthropic messages with their times, for replays, tests and benchmarks.

The shared session format (``{session_id, label, project_path, stats, messages}`` with each message
``{index, role, content, tokens, timestamp}``, content flattened to text, times in epoch milliseconds) has
one assistant step per tool call, with each tool's output inline after a ``[tool:<name>]`` tag. Two ways to
make valid Anthropic messages of it:

- ``mode="steps"`` (default): each step becomes an assistant message (its text, then one ``tool_use`` block
  per tag) followed by a user message holding the ``tool_result`` blocks with the recorded outputs. The
  recording has no tool arguments, so inputs are ``{}``. Consecutive messages of one role that remain (a
  step without tools before another step, results before the user's next request) are merged.
- ``mode="merged"``: consecutive messages of one role are merged into one text message.

A message takes the time of its last part.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from lore_core.errors import ConfigError

__all__ = ["TimedMessage", "Transcript", "load_shared_session", "parse_shared_session"]


@dataclass(frozen=True, slots=True, kw_only=True)
class TimedMessage:
    """One Anthropic message and the time it was sent."""

    message: Mapping[str, Any]
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Transcript:
    """A recorded session, ready to replay."""

    session_id: str
    label: str
    messages: tuple[TimedMessage, ...]

    @property
    def anthropic_messages(self) -> list[Mapping[str, Any]]:
        """The messages alone, in order."""
        return [item.message for item in self.messages]


_TOOL_TAG = re.compile(r"^\[tool:([^\]\s]+)\][ \t]?", re.MULTILINE)


def parse_shared_session(
    data: Mapping[str, Any], *, mode: Literal["steps", "merged"] = "steps"
) -> Transcript:
    """Build a :class:`Transcript` from the shared format's parsed JSON.

    Raises:
        ConfigError: the data is not in the shared session format.
    """
    raw = data.get("messages")
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise ConfigError("not a shared session: 'messages' must be a list")
    parts: list[tuple[str, list[dict[str, Any]], int]] = []
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise ConfigError(f"not a shared session: messages[{index}] is not an object")
        role, content, stamp = item.get("role"), item.get("content"), item.get("timestamp")
        if role not in ("user", "assistant") or not isinstance(content, str) or not isinstance(stamp, int):
            raise ConfigError(f"not a shared session: messages[{index}] needs role, content and timestamp")
        if not content.strip():
            continue
        if role == "assistant" and mode == "steps":
            blocks, results = _step_blocks(content, index)
            parts.append(("assistant", blocks, stamp))
            if results:
                parts.append(("user", results, stamp))
        else:
            parts.append((role, [{"type": "text", "text": content}], stamp))
    merged: list[tuple[str, list[dict[str, Any]], int]] = []
    for role, blocks, stamp in parts:
        if merged and merged[-1][0] == role:
            merged[-1] = (role, _join(merged[-1][1], blocks), stamp)
        else:
            merged.append((role, list(blocks), stamp))
    while merged and merged[0][0] != "user":
        merged.pop(0)
    messages = tuple(
        TimedMessage(
            message={"role": role, "content": _simplify(blocks)},
            at=datetime.fromtimestamp(stamp / 1000, tz=UTC),
        )
        for role, blocks, stamp in merged
    )
    return Transcript(
        session_id=str(data.get("session_id") or "shared-session"),
        label=str(data.get("label") or ""),
        messages=messages,
    )


def _step_blocks(content: str, index: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """An assistant step's blocks (text, then tool calls) and the user-side results of those calls."""
    tags = list(_TOOL_TAG.finditer(content))
    head = content[: tags[0].start()] if tags else content
    blocks: list[dict[str, Any]] = []
    if head.strip():
        blocks.append({"type": "text", "text": head.strip()})
    results: list[dict[str, Any]] = []
    for number, tag in enumerate(tags):
        end = tags[number + 1].start() if number + 1 < len(tags) else len(content)
        tool_id = f"toolu_{index:04d}_{number}"
        blocks.append({"type": "tool_use", "id": tool_id, "name": tag.group(1), "input": {}})
        output = content[tag.end() : end].strip() or "(no output)"
        results.append({"type": "tool_result", "tool_use_id": tool_id, "content": output})
    if not blocks:
        blocks.append({"type": "text", "text": content.strip()})
    return blocks, results


def _join(left: list[dict[str, Any]], right: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merge two messages of one role: results stay first, adjacent text blocks are joined."""
    combined = [*left, *right]
    results = [b for b in combined if b["type"] == "tool_result"]
    others = [b for b in combined if b["type"] != "tool_result"]
    out: list[dict[str, Any]] = []
    for block in others:
        if out and block["type"] == "text" and out[-1]["type"] == "text":
            out[-1] = {"type": "text", "text": out[-1]["text"] + "\n\n" + block["text"]}
        else:
            out.append(block)
    return [*results, *out]


def _simplify(blocks: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    if len(blocks) == 1 and blocks[0]["type"] == "text":
        return str(blocks[0]["text"])
    return blocks


def load_shared_session(path: str | Path, *, mode: Literal["steps", "merged"] = "steps") -> Transcript:
    """Read a shared-format session file.

    Raises:
        ConfigError: the file is missing, unreadable or not in the shared format.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read session file {str(path)!r}") from exc
    if not isinstance(data, Mapping):
        raise ConfigError("not a shared session: the file must hold one JSON object")
    return parse_shared_session(data, mode=mode)
