"""The ``BatchError`` branch of lore-memory's one exception tree.

``lore_batch`` raises these, plus the ``LLMError`` family of :mod:`lore_core.errors` for calls that reach a
model. Like every lore-memory error they carry ids (session, batch, custom_id, request id), never prompts,
message text or credentials.

::

    LoreError (lore_core.errors)
    └── BatchError
        ├── NoCredentials(session_id)          no credential for this session and no configured default
        ├── UnsupportedProvider(provider)      a "provider/model" prefix we have no client for
        ├── UnsupportedParams(field)           a parameter the chosen route cannot honour (e.g. stream=True)
        ├── BatchItemErrored(custom_id, batch_id, error_type, message, request_id)
        │                                      an errored batch result; also an LLMError
        ├── BatchAbandoned(batch_id, custom_id) memory-mode close gave up on an in-batch item
        ├── CredentialUnavailable(credential_fp, waited)
        │                                      durable mode: no live process held the item's credential
        ├── FallbackFailed(error_type, status)  durable mode: another process's fallback failed; also an LLMError
        ├── HandlerRetry(after)                a result handler asks to be called again later
        └── ClientClosed                       use after aclose(); also a lore_core ClosedError
            └── DispatcherClosed
"""

from __future__ import annotations

from lore_core.errors import ClosedError, LLMError, LoreError

__all__ = [
    "BatchAbandoned",
    "BatchError",
    "BatchItemErrored",
    "ClientClosed",
    "CredentialUnavailable",
    "DispatcherClosed",
    "FallbackFailed",
    "HandlerRetry",
    "NoCredentials",
    "UnsupportedParams",
    "UnsupportedProvider",
]

# Result error types after which the same request may succeed later (BATCH.md 5.4).
_RETRYABLE_ITEM_ERRORS = frozenset({"api_error", "overloaded_error", "rate_limit_error", "timeout_error"})


class BatchError(LoreError):
    """Base of every error that :mod:`lore_batch` raises on purpose (apart from the ``LLMError`` family)."""


class NoCredentials(BatchError, LookupError):
    """No credential could be resolved for ``session_id`` (``None`` for a call without a session).

    Nothing was sent. Register the session's credential, or configure a default on the registry.
    """

    def __init__(self, session_id: str | None) -> None:
        self.session_id = session_id
        who = "calls without a session" if session_id is None else f"session {session_id!r}"
        super().__init__(f"no credential for {who}")


class UnsupportedProvider(BatchError, ValueError):
    """A model was named ``"provider/model-id"`` with a provider this client cannot call."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        super().__init__(f"unsupported provider {provider!r}")


class UnsupportedParams(BatchError, ValueError):
    """A request parameter cannot be honoured on the route that was chosen (``field`` names it)."""

    def __init__(self, field: str) -> None:
        self.field = field
        super().__init__(f"unsupported parameter {field!r}")


class BatchItemErrored(BatchError, LLMError):
    """A batch returned an ``errored`` result for this item.

    ``message`` is the provider's error message, kept as an attribute for diagnosis and left out of ``str()``;
    ``retryable`` is true for transient error types (``api_error``, ``overloaded_error``, ...).
    """

    def __init__(
        self,
        custom_id: str,
        batch_id: str,
        error_type: str | None,
        message: str | None = None,
        request_id: str | None = None,
    ) -> None:
        self.custom_id = custom_id
        self.batch_id = batch_id
        self.message = message
        LLMError.__init__(
            self,
            f"batch {batch_id} item {custom_id} errored: {error_type or 'unknown'}"
            + (f" (request_id={request_id})" if request_id else ""),
            request_id=request_id,
            error_type=error_type,
            retryable=error_type in _RETRYABLE_ITEM_ERRORS,
        )


class BatchAbandoned(BatchError):
    """Closing in memory mode gave up waiting for ``batch_id``; the item ``custom_id`` got no answer."""

    retryable = True

    def __init__(self, batch_id: str, custom_id: str) -> None:
        self.batch_id = batch_id
        self.custom_id = custom_id
        super().__init__(f"batch {batch_id} item {custom_id} abandoned at close")


class CredentialUnavailable(BatchError):
    """Durable mode: item ``item_id`` waited ``waited`` seconds and no live process held its credential
    (fingerprint ``credential_fp``), so it could not be submitted or polled. Register the credential again on
    some host (``CredentialRegistry.set``) within ``credential_wait`` to keep such items alive."""

    retryable = True

    def __init__(self, item_id: str, credential_fp: str, waited: float) -> None:
        self.item_id = item_id
        self.credential_fp = credential_fp
        self.waited = waited
        super().__init__(
            f"item {item_id} expired after {waited:.0f}s: no live process holds credential {credential_fp}"
        )


class FallbackFailed(BatchError, LLMError):
    """Durable mode: the synchronous fallback of item ``item_id`` failed in the process that ran it.

    ``error_type`` names the original exception class (``RateLimitedError``, ...) and ``status`` its HTTP status,
    as recorded in the item's row; the original object lived in another process.
    """

    def __init__(self, item_id: str, error_type: str, status: int | None = None) -> None:
        self.item_id = item_id
        LLMError.__init__(
            self,
            f"fallback of item {item_id} failed: {error_type}" + (f" (status {status})" if status else ""),
            status=status,
            error_type=error_type,
        )


class HandlerRetry(BatchError):
    """Raised by a result handler that cannot apply a result *yet* (the step it feeds is busy elsewhere): the
    pool calls it again after ``after`` seconds, without counting an attempt, for up to
    ``PoolSettings.handler_defer_limit`` seconds in all."""

    retryable = True

    def __init__(self, after: float, reason: str = "busy") -> None:
        self.after = after
        self.reason = reason
        super().__init__(f"handler asks to be called again in {after:.0f}s ({reason})")


class ClientClosed(BatchError, ClosedError):
    """The client was closed with ``aclose()`` and refuses further calls."""

    def __init__(self, message: str = "client is closed") -> None:
        super().__init__(message)


class DispatcherClosed(ClientClosed):
    """The :class:`FleetDispatcher` was closed and refuses further submissions."""

    def __init__(self, message: str = "dispatcher is closed") -> None:
        super().__init__(message)
