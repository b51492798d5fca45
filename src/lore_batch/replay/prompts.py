"""What each request of a replay sends, as simulator :class:`~lore_batch.replay.simulate.Segment` values.

A segment per tool list, system block and message: keyed by its content (``role:`` + the message's content
hash, ``system:`` + the text's hash), sized with the engine's own estimator, and marked where the request
carries a ``cache_control`` breakpoint. Counting is memoised: a message object seen before costs a dict
lookup, a new object with known content costs a hash, and only new content is counted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Final

from lore_batch.replay.simulate import Segment
from lore_core.messages import Message, content_hash
from lore_core.session import TransformResult
from lore_core.tokens import count_tokens, estimate_message, estimate_tools

__all__ = ["PromptSegments", "has_breakpoint", "system_blocks"]

_BLOCK_OVERHEAD: Final = 3  # est(system block) = T(text) + 3, as lore_core.tokens counts it


def has_breakpoint(message: Message) -> bool:
    """Whether any block of ``message`` carries ``cache_control``."""
    content = message.get("content")
    return not isinstance(content, str) and any(
        isinstance(block, Mapping) and block.get("cache_control") for block in content or ()
    )


def system_blocks(system: str) -> list[dict[str, Any]]:
    """The agent's system prompt as one block with a cache breakpoint (an agent caches its prompt)."""
    return [{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}] if system else []


class PromptSegments:
    """Segments of messages and system texts, memoised (see the module docstring).

    :meth:`pin` keeps the transcript's own message objects for the whole run; objects first seen in an
    assembled request live until the turn after next (:meth:`turn_done`), so memory stays bounded.
    """

    def __init__(self) -> None:
        self._pinned: dict[int, tuple[object, Segment]] = {}
        self._recent: dict[int, tuple[object, Segment]] = {}
        self._next: dict[int, tuple[object, Segment]] = {}
        self._tokens: dict[str, int] = {}
        self._texts: dict[str, Segment] = {}

    def pin(self, messages: Sequence[Message]) -> None:
        """Remember the segments of ``messages`` (the caller's own objects) for the whole run."""
        for message in messages:
            self._pinned[id(message)] = (message, self._compute(message))

    def message(self, message: Message) -> Segment:
        """The segment of one message (without a breakpoint)."""
        key = id(message)
        hit = self._pinned.get(key) or self._recent.get(key) or self._next.get(key)
        if hit is not None and hit[0] is message:
            if key not in self._pinned:
                self._next[key] = hit
            return hit[1]
        segment = self._compute(message)
        self._next[key] = (message, segment)
        return segment

    def turn_done(self) -> None:
        """Forget the objects of the turn before last (assembled messages live one turn)."""
        self._recent, self._next = self._next, {}

    def text(self, text: str) -> Segment:
        """The segment of one system block's text (without a breakpoint)."""
        segment = self._texts.get(text)
        if segment is None:
            digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]
            segment = self._texts[text] = Segment(f"system:{digest}", count_tokens(text) + _BLOCK_OVERHEAD)
        return segment

    def fixed(self, system: str, tools: Sequence[Mapping[str, Any]]) -> tuple[Segment, ...]:
        """The tools, then the caller's system prompt with its breakpoint: what every request of every
        policy starts with."""
        out: list[Segment] = []
        if tools:
            digest = hashlib.sha256(repr(list(tools)).encode()).hexdigest()[:32]
            out.append(Segment(f"tools:{digest}", estimate_tools(list(tools))))
        if system:
            out.append(self.text(system).marked())
        return tuple(out)

    def request(self, result: TransformResult, tools: Sequence[Mapping[str, Any]]) -> tuple[Segment, ...]:
        """What ``result`` sends, with its breakpoints: the caller's and lore-memory's where their blocks
        carry ``cache_control``, and the agent's own on the last message."""
        head = self.fixed("", tools)
        system = [
            self.text(str(block.get("text", ""))).marked()
            if block.get("cache_control")
            else self.text(str(block.get("text", "")))
            for block in result.system
        ]
        sent = [
            self.message(message).marked() if has_breakpoint(message) else self.message(message)
            for message in result.messages
        ]
        if sent:
            sent[-1] = sent[-1].marked()
        return (*head, *system, *sent)

    def _compute(self, message: Message) -> Segment:
        key = f"{message['role']}:{content_hash(message['content'])}"
        tokens = self._tokens.get(key)
        if tokens is None:
            tokens = self._tokens[key] = estimate_message(message)
        return Segment(key, tokens)
