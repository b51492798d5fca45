"""The one exception tree of lore-memory.

Every error the library raises on purpose derives from :class:`LoreError`, so a caller never has to import
SQLAlchemy, httpx2 or anthropic to catch ours. Third-party errors are wrapped with ``raise ... from exc``.
Errors carry ids, counts and a ``retryable`` flag; they never carry message text, prompts or credentials.

::

    LoreError
    ├── ConfigError                     a bad argument or environment value
    ├── InvalidMessagesError            messages that break an API invariant (index, reason)
    ├── ContextOverflowError            nothing fits the window, even at the terminal layer
    ├── SessionNotFoundError            unknown session id
    ├── ClosedError                     use of a resource after close()
    ├── StoreError                      the database failed (retryable unless stated)
    │   └── SchemaOutOfDateError        the database is behind the code's migrations
    └── LLMError                        a model call failed
        ├── RateLimitedError            429 (retry_after seconds when the provider said)
        ├── LLMUnavailableError         5xx, 529, timeouts, network, an open circuit breaker
        ├── LLMAuthError                401 / 403
        ├── LLMRequestError             the provider refused the request as invalid (400, 404, 413)
        └── NoStoredAnswerError         a replay client holds no answer for this prompt (no call was made)

``lore_batch.errors`` grows the ``BatchError`` branch under :class:`LoreError`.
"""

from __future__ import annotations

__all__ = [
    "ClosedError",
    "ConfigError",
    "ContextOverflowError",
    "InvalidMessagesError",
    "LLMAuthError",
    "LLMError",
    "LLMRequestError",
    "LLMUnavailableError",
    "LoreError",
    "NoStoredAnswerError",
    "RateLimitedError",
    "SchemaOutOfDateError",
    "SessionNotFoundError",
    "StoreError",
]


class LoreError(Exception):
    """Base of every error lore-memory raises on purpose.

    ``retryable`` tells a caller whether the same call may succeed later without changes.
    """

    retryable: bool = False

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        if retryable is not None:
            self.retryable = retryable


class ConfigError(LoreError, ValueError):
    """A configuration value (argument or environment variable) is invalid."""


class InvalidMessagesError(LoreError, ValueError):
    """A message list breaks an invariant of the Messages API.

    ``index`` is the offending message's position (``-1`` for the list as a whole); ``reason`` is a short
    machine-friendly code such as ``"orphan_tool_result"``; ``detail`` adds ids, never message text.
    """

    def __init__(self, index: int, reason: str, detail: str = "") -> None:
        self.index = index
        self.reason = reason
        self.detail = detail
        where = "messages" if index < 0 else f"messages[{index}]"
        text = f"{where}: {reason}" + (f" ({detail})" if detail else "")
        super().__init__(text)


class ContextOverflowError(LoreError):
    """Even the terminal layer cannot fit the request inside the model's window."""

    def __init__(self, *, session_id: str, needed_tokens: int, limit_tokens: int) -> None:
        self.session_id = session_id
        self.needed_tokens = needed_tokens
        self.limit_tokens = limit_tokens
        super().__init__(
            f"session {session_id!r}: context needs about {needed_tokens} tokens, limit is {limit_tokens}"
        )


class SessionNotFoundError(LoreError, LookupError):
    """No session with this id is known to the store."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        super().__init__(f"unknown session {session_id!r}")


class ClosedError(LoreError, RuntimeError):
    """The object was closed; it refuses further use."""


class StoreError(LoreError):
    """The database failed. ``operation`` names what we were doing; the cause is chained."""

    retryable = True

    def __init__(self, operation: str, *, retryable: bool | None = None) -> None:
        self.operation = operation
        super().__init__(f"store operation failed: {operation}", retryable=retryable)


class SchemaOutOfDateError(StoreError):
    """The database schema is behind this code's Alembic head and auto-migration is off."""

    retryable = False

    def __init__(self, *, current: str | None, head: str) -> None:
        self.current = current
        self.head = head
        LoreError.__init__(
            self,
            f"database schema is at {current or 'nothing'}, code expects {head}: run `lore db upgrade`",
        )
        self.operation = "schema check"


class LLMError(LoreError):
    """A model call failed.

    ``status`` is the HTTP status when there was one; ``request_id`` the provider's.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        request_id: str | None = None,
        error_type: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        self.status = status
        self.request_id = request_id
        self.error_type = error_type
        super().__init__(message, retryable=retryable)


class RateLimitedError(LLMError):
    """The provider answered 429, or our breaker holds background calls. ``retry_after`` is in seconds."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class LLMUnavailableError(LLMError):
    """The provider is down, overloaded, timed out or unreachable."""

    retryable = True


class LLMAuthError(LLMError):
    """The credential was refused (401) or lacks permission (403)."""


class LLMRequestError(LLMError):
    """The provider rejected the request itself; sending it again would fail the same way."""


class NoStoredAnswerError(LLMError):
    """A client that only replays stored answers (:class:`lore_core.workers.replay.StoredAnswers`) holds no
    answer for this prompt. No model was called; ``worker`` is the call's label. The message never carries
    prompt text.
    """

    def __init__(self, worker: str | None) -> None:
        self.worker = worker
        super().__init__(
            f"no stored answer for this {worker or 'unlabelled'} call (no model was called)",
            error_type="no_stored_answer",
            retryable=False,
        )
