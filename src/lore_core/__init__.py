"""lore-memory's engine: unbounded, cache-warm conversations on the Anthropic Messages API."""

from lore_core.errors import (
    ClosedError,
    ConfigError,
    ContextOverflowError,
    InvalidMessagesError,
    LLMAuthError,
    LLMError,
    LLMRequestError,
    LLMUnavailableError,
    LoreError,
    RateLimitedError,
    SchemaOutOfDateError,
    SessionNotFoundError,
    StoreError,
)
from lore_core.llm import LLMClient, LLMResponse, Usage

__all__ = [
    "ClosedError",
    "ConfigError",
    "ContextOverflowError",
    "InvalidMessagesError",
    "LLMAuthError",
    "LLMClient",
    "LLMError",
    "LLMRequestError",
    "LLMResponse",
    "LLMUnavailableError",
    "LoreError",
    "RateLimitedError",
    "SchemaOutOfDateError",
    "SessionNotFoundError",
    "StoreError",
    "Usage",
]
