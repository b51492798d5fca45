"""Reading recorded conversations in any of three formats, auto-detected, as valid Anthropic messages.

- **Claude Code session JSONL**: one JSON object per line; ``type`` ``user``/``assistant`` lines carry an API
  ``message`` and an ISO ``timestamp``; an assistant reply streamed as several lines (one per block) is merged;
  sub-agent lines (``isSidechain``) and ``summary``/``system`` lines are skipped.
- **Anthropic Messages JSON**: a list of ``{role, content}`` or an object with ``messages`` (and optionally
  ``system``). A message may carry a ``timestamp`` (ISO text, or epoch seconds or milliseconds); without one,
  times are made up: 30 s before each user message, 10 s before each assistant message, from 2026-01-01.
- **The shared session format** (``lore_core.transcripts``): one object with ``messages`` whose items have
  ``index``, ``role``, ``content`` (flattened text), ``tokens`` and an epoch-millisecond ``timestamp``.

Whatever the format, :func:`repair_messages` then makes the list valid for the Messages API: it merges
consecutive messages of one role, drops blank text and unknown blocks, answers a ``tool_use`` the recording
left without a result with a ``(no result recorded)`` result, turns an orphan ``tool_result`` into text, and
drops leading assistant messages. The result passes
:func:`~lore_core.invariants.validate_messages` (a trailing tool call may stay pending).

Example::

    loaded = load_transcript("session.jsonl")
    loaded.format, len(loaded.transcript.messages)    # ('claude-code', 412)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal

from lore_core.errors import ConfigError, InvalidMessagesError
from lore_core.invariants import validate_messages
from lore_core.transcripts import TimedMessage, Transcript, parse_shared_session

__all__ = [
    "LoadedTranscript",
    "TranscriptFormat",
    "detect_format",
    "load_transcript",
    "parse_claude_code",
    "parse_messages_json",
    "repair_messages",
]

TranscriptFormat = Literal["claude-code", "messages", "shared"]

_MADE_UP_START: Final = datetime(2026, 1, 1, tzinfo=UTC)
_USER_BLOCKS: Final = frozenset({"text", "image", "document", "search_result", "tool_result"})
_ASSISTANT_BLOCKS: Final = frozenset({"text", "thinking", "redacted_thinking", "tool_use"})
_NO_RESULT: Final = "(no result recorded)"


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadedTranscript:
    """A recording read from a file: its format, the messages with times, and its system prompt if it had one."""

    format: TranscriptFormat
    transcript: Transcript
    system: str | None = None


def load_transcript(path: str | Path, *, session_id: str | None = None) -> LoadedTranscript:
    """Read ``path`` in whichever supported format it is in (see the module docstring).

    Raises:
        ConfigError: the file is missing or unreadable, in no supported format, or holds no message.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read transcript {str(path)!r}") from exc
    kind, data = detect_format(text)
    name = session_id or file.stem
    if kind == "shared":
        assert isinstance(data, Mapping)
        shared = parse_shared_session(data)
        loaded = LoadedTranscript(format=kind, transcript=shared)
    elif kind == "messages":
        loaded = parse_messages_json(data, session_id=name)
    else:
        assert isinstance(data, list)
        loaded = parse_claude_code(data, session_id=name)
    if not loaded.transcript.messages:
        raise ConfigError(f"transcript {str(path)!r} holds no message")
    return loaded


def detect_format(text: str) -> tuple[TranscriptFormat, Any]:
    """The format of a file's text and its parsed content (for JSONL, the list of line objects).

    Raises:
        ConfigError: the text is in no supported format.
    """
    stripped = text.lstrip()
    try:
        data = json.loads(stripped) if stripped[:1] in ("[", "{") else None
    except ValueError:
        data = None
    if isinstance(data, list):
        return "messages", data
    if isinstance(data, Mapping):
        messages = data.get("messages")
        if isinstance(messages, list):
            return ("shared" if _looks_shared(messages) else "messages"), data
        if "type" in data:
            return "claude-code", [data]
        raise ConfigError("not a transcript: a JSON object without 'messages'")
    lines: list[Any] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            lines.append(json.loads(line))
        except ValueError as exc:
            raise ConfigError(f"not a transcript: line {number} is not JSON") from exc
    if lines and all(isinstance(item, Mapping) for item in lines) and any("type" in item for item in lines):
        return "claude-code", lines
    raise ConfigError("not a transcript: neither JSON messages nor Claude Code JSONL")


def _looks_shared(messages: Sequence[Any]) -> bool:
    return bool(messages) and all(
        isinstance(item, Mapping)
        and isinstance(item.get("timestamp"), int)
        and isinstance(item.get("content"), str)
        and ("index" in item or "tokens" in item)
        for item in messages
    )


def parse_claude_code(lines: Sequence[Any], *, session_id: str = "claude-code") -> LoadedTranscript:
    """Build a transcript from Claude Code's JSONL line objects.

    Raises:
        ConfigError: a kept line has no usable message or timestamp.
    """
    raw: list[tuple[str, object, datetime]] = []
    sid: str | None = None
    for number, line in enumerate(lines, start=1):
        if not isinstance(line, Mapping) or line.get("type") not in ("user", "assistant"):
            continue
        if line.get("isSidechain"):
            continue
        message = line.get("message")
        if not isinstance(message, Mapping) or message.get("role") not in ("user", "assistant"):
            raise ConfigError(f"Claude Code line {number}: no API message")
        sid = sid or (str(line["sessionId"]) if line.get("sessionId") else None)
        raw.append((str(message["role"]), message.get("content"), _time(line.get("timestamp"), number)))
    return LoadedTranscript(format="claude-code", transcript=_build(sid or session_id, "Claude Code", raw))


def parse_messages_json(data: object, *, session_id: str = "messages") -> LoadedTranscript:
    """Build a transcript from Anthropic Messages JSON (a list, or an object with ``messages``).

    Raises:
        ConfigError: a message is not an object with a role, or a timestamp cannot be read.
    """
    system: str | None = None
    items: object = data
    if isinstance(data, Mapping):
        items = data.get("messages")
        system = _system_text(data.get("system"))
    if not isinstance(items, list):
        raise ConfigError("not Messages JSON: 'messages' must be a list")
    raw: list[tuple[str, object, datetime]] = []
    made_up = _MADE_UP_START
    for number, item in enumerate(items):
        if not isinstance(item, Mapping) or item.get("role") not in ("user", "assistant"):
            raise ConfigError(f"not Messages JSON: messages[{number}] needs role user or assistant")
        stamp = next((item[key] for key in ("timestamp", "ts", "created_at") if key in item), None)
        made_up += timedelta(seconds=30 if item["role"] == "user" else 10)
        at = _time(stamp, number) if stamp is not None else made_up
        raw.append((str(item["role"]), item.get("content"), at))
    return LoadedTranscript(
        format="messages", transcript=_build(session_id, "Messages JSON", raw), system=system
    )


def _system_text(system: object) -> str | None:
    if isinstance(system, str):
        return system or None
    if isinstance(system, list):
        texts = [str(block.get("text", "")) for block in system if isinstance(block, Mapping)]
        return "\n\n".join(text for text in texts if text) or None
    return None


def _time(value: object, where: int) -> datetime:
    if isinstance(value, bool):
        raise ConfigError(f"message {where}: bad timestamp")
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 10**11 else value  # epoch milliseconds or seconds
        return datetime.fromtimestamp(seconds, tz=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ConfigError(f"message {where}: timestamp {value!r} is not ISO 8601") from exc
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    raise ConfigError(f"message {where}: no timestamp")


def _build(session_id: str, label: str, raw: Sequence[tuple[str, object, datetime]]) -> Transcript:
    messages = [{"role": role, "content": content} for role, content, _ in raw]
    times = [at for _, _, at in raw]
    repaired, repaired_times = repair_messages(messages, times)
    timed: list[TimedMessage] = []
    latest: datetime | None = None
    for message, at in zip(repaired, repaired_times, strict=True):
        latest = at if latest is None or at > latest else latest  # times never go backwards
        timed.append(TimedMessage(message=message, at=latest))
    return Transcript(session_id=session_id, label=label, messages=tuple(timed))


def repair_messages(
    messages: Sequence[Mapping[str, Any]], times: Sequence[datetime]
) -> tuple[list[dict[str, Any]], list[datetime]]:
    """Make a recorded message list valid for the Messages API (see the module docstring); a message takes
    the time of its last part.

    Raises:
        InvalidMessagesError: the repaired list is still invalid (a bug: the repair should never leave one).
    """
    parts: list[tuple[str, list[dict[str, Any]], datetime]] = []
    for message, at in zip(messages, times, strict=True):
        role = str(message.get("role"))
        blocks = _clean_blocks(role, message.get("content"))
        if blocks:
            parts.append((role, blocks, at))
    merged = _merge(parts)
    while merged and merged[0][0] != "user":
        merged.pop(0)
    fixed = _merge(_pair_tools(merged))
    out = [{"role": role, "content": _simplify(blocks)} for role, blocks, _ in fixed]
    try:
        validate_messages(out, allow_pending_tool_use=True)
    except InvalidMessagesError:
        raise
    return out, [at for _, _, at in fixed]


def _clean_blocks(role: str, content: object) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content.strip() else []
    allowed = _USER_BLOCKS if role == "user" else _ASSISTANT_BLOCKS
    blocks: list[dict[str, Any]] = []
    for block in content if isinstance(content, list) else ():
        if not isinstance(block, Mapping) or block.get("type") not in allowed:
            continue
        kind = block["type"]
        if kind == "text" and not str(block.get("text", "")).strip():
            continue
        if kind == "tool_result":
            block = {**block, "content": _result_content(block.get("content"))}
        blocks.append(dict(block))
    return blocks


def _result_content(content: object) -> object:
    if isinstance(content, list):
        kept = [
            b
            for b in content
            if isinstance(b, Mapping) and (b.get("type") != "text" or str(b.get("text", "")).strip())
        ]
        return kept or _NO_RESULT
    if isinstance(content, str) and content.strip():
        return content
    return _NO_RESULT


def _merge(
    parts: Sequence[tuple[str, list[dict[str, Any]], datetime]],
) -> list[tuple[str, list[dict[str, Any]], datetime]]:
    merged: list[tuple[str, list[dict[str, Any]], datetime]] = []
    for role, blocks, at in parts:
        if merged and merged[-1][0] == role:
            combined = [*merged[-1][1], *blocks]
            results = [b for b in combined if b["type"] == "tool_result"]
            merged[-1] = (role, [*results, *(b for b in combined if b["type"] != "tool_result")], at)
        else:
            merged.append((role, list(blocks), at))
    return merged


def _pair_tools(
    merged: Sequence[tuple[str, list[dict[str, Any]], datetime]],
) -> list[tuple[str, list[dict[str, Any]], datetime]]:
    """Answer every unanswered ``tool_use`` and turn every orphan ``tool_result`` into text."""
    out: list[tuple[str, list[dict[str, Any]], datetime]] = []
    seen: set[str] = set()
    pending: list[str] = []
    for index, (role, blocks, at) in enumerate(merged):
        if role == "assistant":
            kept: list[dict[str, Any]] = []
            for block in blocks:
                if block["type"] == "tool_use":
                    tool_id = str(block.get("id", ""))
                    if not tool_id or tool_id in seen:
                        continue  # a tool call without an id, or a repeated one, cannot be answered
                    seen.add(tool_id)
                kept.append(block)
            if not kept:
                continue
            pending = [str(b["id"]) for b in kept if b["type"] == "tool_use"]
            out.append((role, kept, at))
            is_last = index == len(merged) - 1
            next_is_user = not is_last and merged[index + 1][0] == "user"
            if pending and not next_is_user and not is_last:
                out.append(("user", [_missing(tool_id) for tool_id in pending], at))
                pending = []
            continue
        answered = {str(b.get("tool_use_id")) for b in blocks if b["type"] == "tool_result"}
        fixed: list[dict[str, Any]] = [_missing(tool_id) for tool_id in pending if tool_id not in answered]
        used: set[str] = set()
        for block in blocks:
            if block["type"] == "tool_result":
                tool_id = str(block.get("tool_use_id"))
                if tool_id in pending and tool_id not in used:
                    used.add(tool_id)
                    fixed.append(block)
                else:
                    fixed.append({"type": "text", "text": f"[tool result] {_text_of(block.get('content'))}"})
            else:
                fixed.append(block)
        results = [b for b in fixed if b["type"] == "tool_result"]
        pending = []
        out.append((role, [*results, *(b for b in fixed if b["type"] != "tool_result")], at))
    return out


def _missing(tool_id: str) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": tool_id, "content": _NO_RESULT}


def _text_of(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [
            str(b.get("text", "")) for b in content if isinstance(b, Mapping) and b.get("type") == "text"
        ]
        return "\n".join(texts) or "(non-text result)"
    return _NO_RESULT


def _simplify(blocks: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    if len(blocks) == 1 and blocks[0]["type"] == "text" and set(blocks[0]) == {"type", "text"}:
        return str(blocks[0]["text"])
    return blocks
