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
from lore_core.recall import (
    DistillationSource,
    KnowledgeSource,
    MessageSource,
    RecallHit,
    RecallResult,
)
from lore_core.recall_tool import answer_recall, recall_tool, render_recall
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
    "DistillationSource",
    "IdleResume",
    "InvalidMessagesError",
    "KnowledgeSource",
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
    "MessageSource",
    "NoStoredAnswerError",
    "RateLimitedError",
    "RecallHit",
    "RecallResult",
    "SchemaOutOfDateError",
    "SessionNotFoundError",
    "SessionStateView",
    "StoreError",
    "StoredAnswers",
    "TokenCounter",
    "TransformResult",
    "Usage",
    "answer_recall",
    "check_context",
    "content_hash",
    "count_tokens",
    "message_id",
    "recall_tool",
    "render_recall",
    "validate_messages",
]
