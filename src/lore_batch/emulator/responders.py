"""Responders: deterministic stand-ins for the model, ``(params) -> ResponderOutput``.

The default, :func:`echo_responder`, answers with a short text derived from the last user message. Later code
plugs in responders that recognise its own prompts with :meth:`ResponderRegistry.add` (``emu.add_responder``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lore_core.prompting import WorkerName, worker_of

__all__ = [
    "Matcher",
    "Responder",
    "ResponderOutput",
    "ResponderRegistry",
    "echo_responder",
    "last_user_text",
    "system_text",
    "worker_of_params",
]

_ECHO_PREFIX = "Echo: "
_ECHO_CHARS = 200


@dataclass(frozen=True, slots=True)
class ResponderOutput:
    """A responder's answer: content blocks (wire dicts) and the stop reason."""

    content: list[dict[str, Any]]
    stop_reason: str = "end_turn"

    @classmethod
    def text(cls, text: str, *, stop_reason: str = "end_turn") -> ResponderOutput:
        """One text block."""
        return cls([{"type": "text", "text": text}], stop_reason)


Responder = Callable[[Mapping[str, Any]], ResponderOutput]
"""Turns a request's params into an answer. Must be deterministic."""

Matcher = Callable[[Mapping[str, Any]], bool]
"""Decides whether a responder handles a request's params."""


def system_text(params: Mapping[str, Any]) -> str:
    """The text of the request's system prompt (its first block when it is a list); ``""`` when absent."""
    system = params.get("system")
    if isinstance(system, str):
        return system
    if isinstance(system, list) and system and isinstance(system[0], Mapping):
        text = system[0].get("text")
        return text if isinstance(text, str) else ""
    return ""


def worker_of_params(params: Mapping[str, Any]) -> WorkerName | None:
    """The engine worker a request comes from, by its system prompt's marker line; None for other traffic."""
    return worker_of(system_text(params))


def last_user_text(params: Mapping[str, Any]) -> str:
    """The text of the last user message (text blocks joined by spaces); ``""`` when there is none."""
    messages = params.get("messages")
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if not isinstance(message, Mapping) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            texts = [b["text"] for b in content if isinstance(b, Mapping) and isinstance(b.get("text"), str)]
            return " ".join(texts)
    return ""


def echo_responder(params: Mapping[str, Any]) -> ResponderOutput:
    """``"Echo: "`` plus the first 200 characters of the last user message, whitespace collapsed.

    Honours ``max_tokens`` roughly: the text is cut to ``4 * max_tokens`` UTF-8 bytes, with
    ``stop_reason="max_tokens"`` when cut.
    """
    snippet = " ".join(last_user_text(params).split())[:_ECHO_CHARS] or "(no text)"
    text = _ECHO_PREFIX + snippet
    max_tokens = params.get("max_tokens")
    if isinstance(max_tokens, int) and max_tokens > 0:
        budget = 4 * max_tokens
        encoded = text.encode()
        if len(encoded) > budget:
            cut = encoded[:budget].decode(errors="ignore")
            return ResponderOutput.text(cut, stop_reason="max_tokens")
    return ResponderOutput.text(text)


class ResponderRegistry:
    """Responders tried in order of registration; the default answers when none matches."""

    __slots__ = ("_builtin", "_default", "_entries")

    def __init__(self, default: Responder | None = None) -> None:
        self._default: Responder = default if default is not None else echo_responder
        self._entries: list[tuple[Matcher, Responder]] = []
        self._builtin: list[tuple[Matcher, Responder]] = []

    def add(self, match: Matcher, responder: Responder) -> None:
        """Use ``responder`` where ``match(params)`` is true; tried after earlier adds, before the built-in
        worker responders and the default (so a test can override how a worker prompt is answered)."""
        self._entries.append((match, responder))

    def add_builtin(self, match: Matcher, responder: Responder) -> None:
        """Register a built-in responder: tried after every :meth:`add`, before the default."""
        self._builtin.append((match, responder))

    def resolve(self, params: Mapping[str, Any]) -> Responder:
        """The responder for ``params``."""
        for match, responder in (*self._entries, *self._builtin):
            if match(params):
                return responder
        return self._default
