"""Turns, window starts and unit boundaries (ENGINE.md 8.1), found by walking from the tail.

Every function here looks only at the messages it walks past, so its cost is proportional to the region it
covers (the current turn, or one unit), never to the whole history.
"""

from __future__ import annotations

from collections.abc import Sequence

from lore_core.messages import Message, has_tool_use, message_kind

__all__ = ["is_human", "turn_start", "unit_start", "window_start_at_or_after"]


def is_human(message: Message) -> bool:
    """Whether ``message`` is a human message: a user message without ``tool_result`` blocks.

    Only human messages start turns and raw windows (string content counts as human).
    Example: ``is_human({"role": "user", "content": "hi"}) is True``.
    """
    return message.get("role") == "user" and message_kind(message) == "human"


def turn_start(messages: Sequence[Message]) -> int:
    """The first index of the current turn: the whole unfinished chain at the tail (ENGINE.md 8.1).

    From the last user message walk backwards: an assistant with ``tool_use`` or any user message extends the
    turn, the first assistant without ``tool_use`` stops it. A trailing assistant message (prefill) belongs to
    the turn. 0 when there is no user message. Cost: the length of the current turn.

    Example::

        >>> turn_start([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
        ...             {"role": "user", "content": "c"}])
        2
    """
    index = len(messages) - 1
    while index >= 0 and messages[index].get("role") != "user":
        index -= 1
    if index < 0:
        return 0
    while index > 0:
        before = messages[index - 1]
        if before.get("role") == "assistant" and not has_tool_use(before):
            break
        index -= 1
    return index


def window_start_at_or_after(messages: Sequence[Message], index: int) -> int:
    """The first human message at or after ``index``; ``len(messages)`` when there is none.

    A trimmed raw window must start there (the prefix ends with an assistant message, and a ``tool_result``
    whose ``tool_use`` was cut would be an orphan). Cost: the distance walked.
    Example: ``window_start_at_or_after(messages, turn_start(messages)) == turn_start(messages)``.
    """
    index = max(index, 0)
    while index < len(messages) and not is_human(messages[index]):
        index += 1
    return index


def unit_start(messages: Sequence[Message], last: int) -> int:
    """The first index of the tool unit whose last message is ``messages[last]``.

    A ``tool_results`` user message belongs with the assistant ``tool_use`` message just before it; every
    other message is its own unit (as :func:`lore_core.messages.group_units` partitions a list). Cost: O(1).
    Example: ``unit_start([human, call, results], 2) == 1``.
    """
    if last > 0 and message_kind(messages[last]) == "tool_results" and has_tool_use(messages[last - 1]):
        return last - 1
    return last
