"""The last resort of layer 4: cut the largest text of the current turn to head + tail (ENGINE.md 8.7).

Only text is cut: ``text`` blocks (and string content) of any message, and the text of ``tool_result``
outputs. ``tool_use`` blocks and their inputs, thinking and redacted-thinking blocks, images and documents are
never touched. A cut text keeps its head (2/3) and tail (1/3) around a one-line note, so it is never empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lore_core.annotations import line_count
from lore_core.messages import Message
from lore_core.tokens import TokenCounter, estimate_message

__all__ = ["cut_largest", "cut_text"]

_SHRINK = 0.75  # when a cut is still over its target, keep this share of the previous length
_MIN_KEEP = 8  # below this many kept characters, keep none (the note alone)


def cut_text(text: str, keep: int) -> str:
    """``text`` cut to its first 2/3 x ``keep`` and last 1/3 x ``keep`` characters around a note.

    ``text`` itself when ``keep >= len(text)``.
    Example: ``cut_text("a" * 100, 30)`` starts with 20 ``a`` and ends with 10 ``a``.
    """
    if keep >= len(text):
        return text
    keep = max(keep, 0)
    head = text[: keep * 2 // 3]
    tail = text[len(text) - (keep - len(head)) :] if keep > len(head) else ""
    middle = text[len(head) : len(text) - len(tail)]
    note = f"[... {len(middle)} chars ({line_count(middle)} lines) cut to fit the context window ...]"
    return "\n".join(part for part in (head, note, tail) if part)


@dataclass(frozen=True, slots=True)
class _Spot:
    """Where a text lives: ``window[message]``, block ``block`` (None: string content), ``inner`` item."""

    message: int
    block: int | None
    inner: int | None


def _spots(window: list[Message]) -> list[tuple[_Spot, str]]:
    found: list[tuple[_Spot, str]] = []
    for k, message in enumerate(window):
        content = message.get("content")
        if isinstance(content, str):
            found.append((_Spot(k, None, None), content))
            continue
        for pos, block in enumerate(content if isinstance(content, list | tuple) else ()):
            if not isinstance(block, Mapping):
                continue
            if block.get("type") == "text" and isinstance(block.get("text"), str):
                found.append((_Spot(k, pos, None), block["text"]))
            elif block.get("type") == "tool_result":
                output = block.get("content")
                if isinstance(output, str) and output:
                    found.append((_Spot(k, pos, None), output))
                elif isinstance(output, list | tuple):
                    for inner, item in enumerate(output):
                        if isinstance(item, Mapping) and item.get("type") == "text":
                            found.append((_Spot(k, pos, inner), str(item.get("text", ""))))
    return found


def _shrink(text: str, size: int, target: int, counter: TokenCounter) -> tuple[str, int]:
    keep = len(text) * target // size if size else 0
    while True:
        cut = cut_text(text, keep)
        tokens = counter(cut)
        if tokens <= target or keep == 0:
            return cut, tokens
        keep = int(keep * _SHRINK) if keep > _MIN_KEEP else 0


def _apply(message: Message, spot: _Spot, text: str) -> Message:
    if spot.block is None:
        return {**message, "content": text}
    content = list(message["content"])
    block: Mapping[str, Any] = content[spot.block]
    if block.get("type") == "text":
        content[spot.block] = {**block, "text": text}
    elif spot.inner is None:
        content[spot.block] = {**block, "content": text}
    else:
        items = list(block["content"])
        items[spot.inner] = {**items[spot.inner], "text": text}
        content[spot.block] = {**block, "content": items}
    return {**message, "content": content}


def cut_largest(window: list[Message], excess: int, *, counter: TokenCounter) -> tuple[list[Message], int]:
    """Cut the largest texts of ``window``, biggest first, until ``excess`` tokens are saved or none is left.

    Returns the new window (changed messages are shallow copies, only the cut blocks new) and its estimate.
    Example: ``cut_largest(current_turn, 5_000, counter=count_tokens)``.
    """
    out = list(window)
    spots = sorted(
        ((counter(text), spot, text) for spot, text in _spots(window)),
        key=lambda item: (-item[0], item[1].message, item[1].block or 0, item[1].inner or 0),
    )
    for size, spot, text in spots:
        if excess <= 0:
            break
        cut, tokens = _shrink(text, size, max(0, size - excess), counter)
        if tokens >= size or len(cut) >= len(text):
            continue
        out[spot.message] = _apply(out[spot.message], spot, cut)
        excess -= size - tokens
    return out, sum(estimate_message(message, counter=counter) for message in out)
