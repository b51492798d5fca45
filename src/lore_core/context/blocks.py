"""Small block-level helpers shared by stripping, dedup and the layer-4 cuts.

Replacement rule (ENGINE.md 2 and 8.9): a changed message is a shallow copy whose ``content`` is a new list in
which only the replaced blocks are new objects; every other block is the caller's object, in place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from lore_core.messages import Block, Message

__all__ = [
    "ANNOTATION_MARKERS",
    "has_output",
    "is_annotation",
    "replace_blocks",
    "result_text",
    "tool_calls",
    "with_content",
]

ANNOTATION_MARKERS: Final = ("[output omitted:", "[duplicate output:", "[earlier read of ")
"""How our own replacement texts start: an output already replaced is never replaced again."""


def result_text(content: object) -> str:
    """The text of a ``tool_result`` content: the string itself, or its text blocks joined by newlines."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list | tuple):
        return ""
    return "\n".join(
        str(item.get("text", ""))
        for item in content
        if isinstance(item, Mapping) and item.get("type") == "text"
    )


def is_annotation(content: object) -> bool:
    """Whether a ``tool_result`` content already is one of our replacement strings."""
    return isinstance(content, str) and content.startswith(ANNOTATION_MARKERS)


def has_output(content: object) -> bool:
    """Whether a ``tool_result`` content holds anything to replace (not None, ``""`` or ``[]``)."""
    return bool(content) and not is_annotation(content)


def tool_calls(message: Message | None) -> dict[str, Block]:
    """The ``tool_use`` blocks of an assistant message, by id (empty for anything else)."""
    if message is None or message.get("role") != "assistant":
        return {}
    content = message.get("content")
    if isinstance(content, str) or not isinstance(content, list | tuple):
        return {}
    return {
        str(block["id"]): block
        for block in content
        if isinstance(block, Mapping) and block.get("type") == "tool_use" and "id" in block
    }


def with_content(block: Block, content: object) -> dict[str, Any]:
    """A new ``tool_result`` block: every key of ``block`` kept (id, ``is_error``, ``cache_control``)."""
    return {**block, "content": content}


def replace_blocks(message: Message, replacements: Mapping[int, Block]) -> Message:
    """A shallow copy of ``message`` with ``content[i]`` set to ``replacements[i]``; ``message`` if none."""
    if not replacements:
        return message
    content = list(message["content"])
    for position, block in replacements.items():
        content[position] = block
    return {**message, "content": content}
