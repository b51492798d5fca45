"""The agent's own model call in ``lore demo``: the transformed request sent to the backend's Messages API."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from lore_batch.replay.backend import Backend
from lore_batch.replay.report import AgentUsage
from lore_batch.usage import usage_from_api
from lore_core.session import TransformResult

__all__ = ["AgentTotals", "ask_agent", "with_breakpoint", "without_thinking"]

_MAX_BREAKPOINTS: Final = 4


async def ask_agent(
    backend: Backend,
    result: TransformResult,
    *,
    model: str,
    max_tokens: int,
    tools: Sequence[Mapping[str, Any]],
) -> object:
    """Send ``result`` (with a cache breakpoint on its last message, as an agent marks its prompt; thinking
    blocks dropped when the backend asks for it) and return the API's ``usage``.

    Raises whatever the SDK raises (``anthropic.APIError`` subclasses).
    """
    messages = [dict(message) for message in result.messages]
    if backend.strip_thinking:
        messages = [without_thinking(message) for message in messages]
    messages = with_breakpoint(messages, result.system)
    extra: dict[str, Any] = {"tools": list(tools)} if tools else {}
    response = await backend.client.messages.create(
        model=model,
        max_tokens=max_tokens,
        system=result.system,  # type: ignore[arg-type]
        messages=messages,  # type: ignore[arg-type]
        **extra,
    )
    return response.usage


def without_thinking(message: dict[str, Any]) -> dict[str, Any]:
    """An assistant message without its thinking blocks (a generated signature is not one the API accepts)."""
    content = message["content"]
    if message["role"] != "assistant" or isinstance(content, str):
        return message
    kept = [block for block in content if block.get("type") not in ("thinking", "redacted_thinking")]
    return {**message, "content": kept or "(thinking)"}


def with_breakpoint(
    messages: list[dict[str, Any]], system: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """``messages`` with ``cache_control`` on the last block of the last message, unless the request already
    holds the API's four breakpoints (the last message is copied, never changed in place)."""
    used = sum(1 for block in system if block.get("cache_control")) + sum(
        1
        for message in messages
        if not isinstance(message["content"], str)
        for block in message["content"]
        if block.get("cache_control")
    )
    if used >= _MAX_BREAKPOINTS or not messages:
        return messages
    last = messages[-1]
    content = last["content"]
    blocks: list[dict[str, Any]] = (
        [{"type": "text", "text": content}] if isinstance(content, str) else [dict(b) for b in content]
    )
    blocks[-1] = {**blocks[-1], "cache_control": {"type": "ephemeral"}}
    return [*messages[:-1], {**last, "content": blocks}]


class AgentTotals:
    """Sums of the usage the API reported for the agent's calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.input = self.read = self.write = self.output = 0

    def add(self, usage: object) -> None:
        """Add one response's ``usage``."""
        parsed = usage_from_api(usage)
        self.calls += 1
        self.input += parsed.input_tokens
        self.read += parsed.cache_read_tokens
        self.write += parsed.cache_write_5m_tokens + parsed.cache_write_1h_tokens
        self.output += parsed.output_tokens

    def totals(self) -> AgentUsage:
        """The sums as an :class:`AgentUsage`."""
        return AgentUsage(
            calls=self.calls,
            input_tokens=self.input,
            cache_read_tokens=self.read,
            cache_write_tokens=self.write,
            output_tokens=self.output,
        )
