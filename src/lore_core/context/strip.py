"""Tool-output stripping and the dedup pre-pass over a message list (ENGINE.md 8.6).

Strip = replace a ``tool_result``'s content with the one loss annotation
(:func:`lore_core.annotations.strip_annotation` + ``strip_hint``), keeping ``tool_use_id``, ``is_error`` and
any ``cache_control``. The ``tool_use`` block and its input are never touched, thinking blocks never looked
at, no block is ever removed. An output that is empty or already one of our annotations is left as it is.
"""

from __future__ import annotations

from collections.abc import Mapping

from lore_core.annotations import strip_annotation
from lore_core.config import LoreConfig
from lore_core.context.blocks import has_output, replace_blocks, result_text, tool_calls, with_content
from lore_core.context.dedup import Deduper
from lore_core.messages import Block, Message

__all__ = ["dedup_outputs", "strip_message", "strip_tool_outputs"]


def strip_message(message: Message, previous: Message | None, *, config: LoreConfig) -> Message:
    """``message`` with every ``tool_result`` output replaced by its strip annotation; itself if none.

    ``previous`` is the assistant message whose ``tool_use`` blocks name the tools (``"tool"`` when unknown).
    Example: ``strip_message(results, call, config=LoreConfig())["content"][0]["content"] ==
    "[output omitted: bash, 2 lines]"``.
    """
    content = message.get("content")
    if message.get("role") != "user" or not isinstance(content, list | tuple):
        return message
    calls: dict[str, Block] | None = None
    replacements: dict[int, Block] = {}
    for position, block in enumerate(content):
        if not isinstance(block, Mapping) or block.get("type") != "tool_result":
            continue
        output = block.get("content")
        if not has_output(output):
            continue
        if calls is None:
            calls = tool_calls(previous)
        call = calls.get(str(block.get("tool_use_id")))
        name = str(call.get("name", "")) if call is not None else ""
        note = strip_annotation(name, result_text(output), hint=config.strip_hint)
        replacements[position] = with_content(block, note)
    return replace_blocks(message, replacements)


def strip_tool_outputs(
    messages: list[Message], start: int, stop: int, *, config: LoreConfig
) -> list[Message]:
    """Strip the tool outputs of ``messages[start:stop]``; a new list, or ``messages`` itself if none changed.

    Messages outside the range, and every message without outputs, stay the caller's objects.
    Example: ``strip_tool_outputs(window, 0, turn_start(window), config=config)`` (layer 3).
    """
    out: list[Message] | None = None
    for index in range(max(start, 0), min(stop, len(messages))):
        previous = messages[index - 1] if index > 0 else None
        stripped = strip_message(messages[index], previous, config=config)
        if stripped is not messages[index]:
            if out is None:
                out = list(messages)
            out[index] = stripped
    return messages if out is None else out


def dedup_outputs(messages: list[Message], stop: int, *, config: LoreConfig) -> list[Message]:
    """The dedup pre-pass: superseded file reads and repeated large outputs replaced at index < ``stop``.

    ``stop`` is normally ``turn_start``: the current turn is never changed, but its outputs do supersede
    earlier ones. Returns ``messages`` itself when nothing changed, else a new list.
    Example: ``dedup_outputs(messages, turn_start(messages), config=LoreConfig())``.
    """
    deduper = Deduper(config=config)
    out: list[Message] | None = None
    for index in reversed(range(len(messages))):
        previous = messages[index - 1] if index > 0 else None
        visited = deduper.visit(messages[index], previous, replace=index < stop)
        if visited is not messages[index]:
            if out is None:
                out = list(messages)
            out[index] = visited
    return messages if out is None else out
