"""The one seam between the engine and any model: the :class:`LLMClient` protocol.

Workers (distill, meta-distill, curate, validate) call ``prompt`` with ``urgent`` and ``session_id`` flags;
whether a call goes synchronous or into a batch is the client's business, never the engine's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

__all__ = ["LLMClient", "LLMResponse", "Route", "Usage"]

Route = Literal["sync", "batch", "fallback"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    """Token usage of one call, cache writes split by TTL."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0

    @property
    def total_input_tokens(self) -> int:
        """Everything the prompt cost: uncached input plus cache reads and writes."""
        return (
            self.input_tokens
            + self.cache_read_tokens
            + self.cache_write_5m_tokens
            + self.cache_write_1h_tokens
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class LLMResponse:
    """What a worker call returns, whichever route answered it.

    ``text`` joins the text blocks in order; ``model`` is what the provider reported; ``route`` is the path
    that actually answered (``"sync"``, ``"batch"`` or ``"fallback"``).
    """

    text: str
    usage: Usage
    model: str
    route: Route = "sync"
    stop_reason: str | None = None


@runtime_checkable
class LLMClient(Protocol):
    """Anything that can answer a worker prompt. Failures raise :class:`lore_core.errors.LLMError` subclasses;
    ``None`` never means failure."""

    async def prompt(
        self,
        system: str,
        user: str,
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = 0,
        urgent: bool = False,
        session_id: str | None = None,
        worker: str | None = None,
    ) -> LLMResponse: ...
