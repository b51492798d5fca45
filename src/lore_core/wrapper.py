"""A drop-in wrapper for ``anthropic.AsyncAnthropic``: adopt lore-memory by changing one line.

::

    client = LoreAnthropic(anthropic.AsyncAnthropic(), lore=lore)      # was: anthropic.AsyncAnthropic()
    reply = await client.messages.create(session_id="chat-42", model="claude-sonnet-4-6", max_tokens=1024,
                                         system=system_prompt, messages=history)

``messages.create`` transforms the history (the session's layer decides what is sent), calls the API, and
reports usage and the reply back to the session. Everything else (``client.models``, ``client.messages.batches``,
``count_tokens`` ...) passes through to the wrapped client unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import anthropic
from anthropic.types import Message as AnthropicMessage

from lore_core.errors import ConfigError
from lore_core.lore import Lore

__all__ = ["LoreAnthropic"]


class _LoreMessages:
    """``client.messages`` with a session-aware ``create``."""

    def __init__(self, owner: LoreAnthropic) -> None:
        self._owner = owner

    async def create(
        self,
        *,
        session_id: str,
        model: str,
        max_tokens: int,
        messages: Sequence[Mapping[str, Any]],
        system: str | Sequence[Mapping[str, Any]] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        **kwargs: Any,
    ) -> AnthropicMessage:
        """``messages.create`` through the session ``session_id``: transform, call, record usage.

        Pass the full history every time, as with a plain client.

        Raises:
            ConfigError: ``stream=True`` (use the plain client's streaming; a whole ``Message`` is returned here).
            InvalidMessagesError, ContextOverflowError: from the transform; the API is not called.
            anthropic.APIError: from the call itself, unchanged.
        """
        if kwargs.get("stream"):
            raise ConfigError("LoreAnthropic.messages.create does not stream; use stream=False")
        owner = self._owner
        session = owner.lore.session(
            session_id,
            model=model,
            max_output_tokens=max_tokens,
            project=owner.project,
            context_window=owner.context_window,
        )
        result = await session.transform(messages, system=system, tools=tools)
        params: dict[str, Any] = dict(kwargs)
        params.update(model=model, max_tokens=max_tokens, messages=list(result.messages))
        if result.system:
            params["system"] = result.system
        if tools is not None:
            params["tools"] = list(tools)
        response: AnthropicMessage = await owner.client.messages.create(**params)
        await session.record_usage(response.usage, stop_reason=response.stop_reason, response=response)
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self._owner.client.messages, name)


class LoreAnthropic:
    """Wraps an ``AsyncAnthropic`` so ``messages.create(session_id=..., **kwargs)`` goes through lore-memory.

    ``project`` and ``context_window`` apply to the sessions this wrapper opens.
    """

    def __init__(
        self,
        client: anthropic.AsyncAnthropic,
        *,
        lore: Lore,
        project: str | None = None,
        context_window: int | None = None,
    ) -> None:
        self.client = client
        self.lore = lore
        self.project = project
        self.context_window = context_window
        self.messages = _LoreMessages(self)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def __repr__(self) -> str:
        return f"LoreAnthropic({self.client!r})"
