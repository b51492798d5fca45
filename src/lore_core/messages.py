"""The message model: plain Anthropic Messages dicts, their kinds, deterministic ids and tool units.

Messages are the caller's ``dict`` objects (``{"role": ..., "content": str | list[block]}``); nothing here
copies or mutates them. Everything is pure and linear in the size of its input. The request invariants live in
:mod:`lore_core.invariants`, stored text in :mod:`lore_core.flatten`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from lore_core.errors import InvalidMessagesError

__all__ = [
    "Block",
    "Content",
    "Message",
    "MessageKind",
    "Unit",
    "UnitKind",
    "canonical_json",
    "compact_json",
    "content_blocks",
    "content_hash",
    "group_units",
    "has_tool_use",
    "message_id",
    "message_ids",
    "message_kind",
]

Block: TypeAlias = Mapping[str, Any]
"""One content block, e.g. ``{"type": "text", "text": "hi"}``."""
Content: TypeAlias = str | Sequence[Block]
"""A message's ``content``: a string (one text block) or a list of blocks."""
Message: TypeAlias = Mapping[str, Any]
"""One message: ``{"role": "user" | "assistant", "content": Content}``."""
MessageKind: TypeAlias = Literal["human", "assistant", "tool_results"]
UnitKind: TypeAlias = Literal["human", "assistant", "tool_chain"]

# --- kinds and content --------------------------------------------------------------------------------------


def content_blocks(content: Content) -> Sequence[Block]:
    """The content as a list of blocks: a string becomes one new text block, a list is returned as is.

    Example: ``content_blocks("hi") == [{"type": "text", "text": "hi"}]``.
    """
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return content


def has_tool_use(message: Message) -> bool:
    """Whether an assistant message calls a client tool (holds a ``tool_use`` block).

    Example: ``has_tool_use({"role": "assistant", "content": "done"}) is False``.
    """
    content = message.get("content")
    if message.get("role") != "assistant" or isinstance(content, str) or not content:
        return False
    return any(_block_type(b) == "tool_use" for b in content)


def message_kind(message: Message) -> MessageKind:
    """The stored ``kind``: ``"assistant"``, ``"tool_results"`` or ``"human"``.

    A user message is ``"tool_results"`` as soon as it holds a ``tool_result`` block, even with text beside
    it: such a message belongs to its tool unit, can neither start a turn nor a raw window (ENGINE.md 8.1), so
    it must never be mistaken for a human message. Every other user message (string content counts) is
    ``"human"``.

    Example: ``message_kind({"role": "user", "content": "hi"}) == "human"``.
    """
    if message.get("role") == "assistant":
        return "assistant"
    content = message.get("content")
    if isinstance(content, str) or not content:
        return "human"
    return "tool_results" if any(_block_type(b) == "tool_result" for b in content) else "human"


def _block_type(block: object) -> object:
    return block.get("type") if isinstance(block, Mapping) else None


# --- ids ----------------------------------------------------------------------------------------------------


def canonical_json(content: Content) -> bytes:
    """The canonical bytes ids and hashes are computed over.

    JSON of the block list with sorted keys and compact separators, UTF-8 (``ensure_ascii=False``; lone
    surrogates pass through), a string content counting as ``[{"type": "text", "text": s}]``, and every
    ``cache_control`` key removed at any depth (callers move breakpoints between turns).

    Raises ``TypeError`` or ``ValueError`` when JSON cannot encode the content.
    Example: ``canonical_json("hi") == b'[{"text":"hi","type":"text"}]'``.
    """
    blocks = content_blocks(content)
    raw = _dumps(blocks)
    # Fast path: a key serialises exactly as '"cache_control":', a string value never does (its quotes are
    # escaped), so without that substring there is nothing to strip and the first encoding is canonical.
    if '"cache_control":' in raw:
        raw = _dumps(_strip_cache_control(list(blocks)))
    return raw.encode("utf-8", "surrogatepass")


def compact_json(value: object) -> str:
    """JSON with compact separators, keys in the caller's order, non-ASCII kept, never raising.

    Used for tool inputs in stored text and estimates (ENGINE.md 2 and 3.1: "the full input, unmodified").
    A value JSON cannot encode falls back to ``str()`` for that value.
    Example: ``compact_json({"b": 1, "a": [1, 2]}) == '{"b":1,"a":[1,2]}'``.
    """
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    except ValueError:  # a circular reference
        return str(value)


def _dumps(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _strip_cache_control(value: object) -> object:
    if isinstance(value, Mapping):
        return {k: _strip_cache_control(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list | tuple):
        return [_strip_cache_control(v) for v in value]
    return value


def _digest(prefix: bytes, content: Content, index: int) -> str:
    try:
        payload = canonical_json(content)
    except (TypeError, ValueError) as exc:
        raise InvalidMessagesError(index, "not_json", type(exc).__name__) from exc
    return hashlib.sha256(prefix + payload).hexdigest()[:32]


def message_id(role: str, position: int, content: Content) -> str:
    """The deterministic id of a message: 32 hex chars of SHA-256 over role, position and content.

    The hashed bytes are ``role``, ``0x00``, the decimal position, ``0x00``, then :func:`canonical_json`. The
    same message at the same position has the same id on every request; moving a ``cache_control`` breakpoint
    does not change it.

    Raises ``InvalidMessagesError(position, "not_json")`` when JSON cannot encode the content.
    Example: ``message_id("user", 0, "hi") == message_id("user", 0, [{"type": "text", "text": "hi"}])``.
    """
    return _digest(f"{role}\x00{position}\x00".encode(), content, position)


def content_hash(content: Content) -> str:
    """32 hex chars of SHA-256 over :func:`canonical_json` alone (no role, no position).

    Raises ``InvalidMessagesError(-1, "not_json")`` when JSON cannot encode the content.
    Example: ``content_hash("hi") == content_hash([{"type": "text", "text": "hi", "cache_control": {}}])``.
    """
    return _digest(b"", content, -1)


def message_ids(messages: Sequence[Message]) -> list[str]:
    """The :func:`message_id` of every message, its position being its index in ``messages``.

    Raises ``InvalidMessagesError(i, "not_json")`` for unencodable content; run
    :func:`~lore_core.invariants.validate_messages` first for shape errors.
    Example: ``len(message_ids([{"role": "user", "content": "hi"}])) == 1``.
    """
    return [message_id(str(m["role"]), i, m["content"]) for i, m in enumerate(messages)]


# --- units --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Unit:
    """Messages that cut, window and dedup decisions never separate: ``messages[start:stop]``.

    ``kind`` is ``"tool_chain"`` for an assistant message with ``tool_use`` plus the user message holding
    its results (just the assistant when it is the last message and its results are pending), otherwise the
    one message's kind, ``"human"`` or ``"assistant"``.
    """

    start: int
    stop: int
    kind: UnitKind

    @property
    def last(self) -> int:
        """Index of the unit's last message."""
        return self.stop - 1

    def __len__(self) -> int:
        return self.stop - self.start


def group_units(messages: Sequence[Message]) -> list[Unit]:
    """Partition a validated message list into consecutive units, in order, in O(n).

    On invalid input it still returns a partition: an assistant ``tool_use`` message absorbs the next
    message only when that is a ``tool_results`` user message, and a stray results message forms its own
    ``"tool_chain"`` unit.

    Example::

        >>> [u.kind for u in group_units([{"role": "user", "content": "hi"},
        ...                               {"role": "assistant", "content": "hello"}])]
        ['human', 'assistant']
    """
    units: list[Unit] = []
    i, n = 0, len(messages)
    while i < n:
        kind = message_kind(messages[i])
        stop = i + 1
        if kind == "assistant" and has_tool_use(messages[i]):
            if stop < n and message_kind(messages[stop]) == "tool_results":
                stop += 1
            units.append(Unit(i, stop, "tool_chain"))
        else:
            units.append(Unit(i, stop, "tool_chain" if kind == "tool_results" else kind))
        i = stop
    return units
