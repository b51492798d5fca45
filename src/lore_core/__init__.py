"""lore-memory's engine: unbounded, cache-warm conversations on the Anthropic Messages API."""

from lore_core.config import LoreConfig
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
    NoStoredAnswerError,
    RateLimitedError,
    SchemaOutOfDateError,
    SessionNotFoundError,
    StoreError,
)
from lore_core.invariants import check_context, validate_messages
from lore_core.llm import LLMClient, LLMResponse, Usage
from lore_core.lore import Lore
from lore_core.messages import content_hash, message_id
from lore_core.session import LoreSession, TransformResult
from lore_core.state import IdleResume, SessionStateView
from lore_core.tokens import TokenCounter, count_tokens
from lore_core.workers.replay import AnswerOutcome, StoredAnswers
from lore_core.wrapper import LoreAnthropic

__all__ = [
    "AnswerOutcome",
    "ClosedError",
    "ConfigError",
    "ContextOverflowError",
    "IdleResume",
    "InvalidMessagesError",
    "LLMAuthError",
    "LLMClient",
    "LLMError",
    "LLMRequestError",
    "LLMResponse",
    "LLMUnavailableError",
    "Lore",
    "LoreAnthropic",
    "LoreConfig",
    "LoreError",
    "LoreSession",
    "NoStoredAnswerError",
    "RateLimitedError",
    "SchemaOutOfDateError",
    "SessionNotFoundError",
    "SessionStateView",
    "StoreError",
    "StoredAnswers",
    "TokenCounter",
    "TransformResult",
    "Usage",
    "check_context",
    "content_hash",
    "count_tokens",
    "message_id",
    "validate_messages",
]
