"""Loading recorded sessions as Anthropic messages with their times, for replays, tests and benchmarks.

The shared session format (``{session_id, label, project_path, stats, messages}`` with each message
``{index, role, content, tokens, timestamp}``, content flattened to text, times in epoch milliseconds) has
one assistant step per tool call, so consecutive messages of one role are merged into one message (parts
joined by a blank line) to make a valid alternating conversation. The merged message takes the time of its
last part.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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


def parse_shared_session(data: Mapping[str, Any]) -> Transcript:
    """Build a :class:`Transcript` from the shared format's parsed JSON.

    Raises:
        ConfigError: the data is not in the shared session format.
    """
    raw = data.get("messages")
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise ConfigError("not a shared session: 'messages' must be a list")
    merged: list[tuple[str, list[str], int]] = []
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise ConfigError(f"not a shared session: messages[{index}] is not an object")
        role, content, stamp = item.get("role"), item.get("content"), item.get("timestamp")
        if role not in ("user", "assistant") or not isinstance(content, str) or not isinstance(stamp, int):
            raise ConfigError(f"not a shared session: messages[{index}] needs role, content and timestamp")
        if not content.strip():
            continue
        if merged and merged[-1][0] == role:
            merged[-1][1].append(content)
            merged[-1] = (role, merged[-1][1], stamp)
        else:
            merged.append((role, [content], stamp))
    while merged and merged[0][0] != "user":
        merged.pop(0)
    messages = tuple(
        TimedMessage(
            message={"role": role, "content": "\n\n".join(parts)},
            at=datetime.fromtimestamp(stamp / 1000, tz=UTC),
        )
        for role, parts, stamp in merged
    )
    return Transcript(
        session_id=str(data.get("session_id") or "shared-session"),
        label=str(data.get("label") or ""),
        messages=messages,
    )


def load_shared_session(path: str | Path) -> Transcript:
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
    return parse_shared_session(data)
