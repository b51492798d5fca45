"""The synchronous :class:`~lore_core.llm.LLMClient` for Anthropic: one ``messages.create`` per call.

:class:`AnthropicLLMClient` is the *inner* client behind ``BatchLLMClient`` and the executor of its fallbacks.
It owns the only retry layer: the SDK client it calls is a ``with_options(max_retries=0)`` copy of the one it
was given, so retries never stack. Urgent and background calls get separate retry budgets; background calls
also share a concurrency cap and a 429 :class:`~lore_batch.limits.CircuitBreaker`, neither of which ever holds
an urgent call. Failures surface as :mod:`lore_core.errors` types raised ``from`` the SDK error; messages and
logs carry ids only.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anthropic
from anthropic.types import Message, MessageParam, TextBlockParam

from lore_batch.auth import AuthCredential, CredentialResolver
from lore_batch.clock import Clock, SystemClock
from lore_batch.errors import NoCredentials, UnsupportedProvider
from lore_batch.limits import (
    RETRYABLE_STATUSES,
    CircuitBreaker,
    ConcurrencyLimit,
    RetryPolicy,
    parse_retry_after,
)
from lore_batch.usage import usage_from_api
from lore_core.errors import (
    LLMAuthError,
    LLMError,
    LLMRequestError,
    LLMUnavailableError,
    RateLimitedError,
)
from lore_core.llm import LLMResponse, Route

__all__ = ["AnthropicLLMClient", "llm_response_from_message", "resolve_model"]

logger = logging.getLogger(__name__)

PROVIDER = "anthropic"
# Per-credential SDK copies kept; they share the base client's pool, so evicting one costs nothing.
_MAX_CREDENTIAL_CLIENTS = 1024


def resolve_model(model: str | None, default: str) -> str:
    """The bare Anthropic model id for ``model`` (``"anthropic/<id>"`` or ``"<id>"``; empty: ``default``).

    Raises :class:`~lore_batch.errors.UnsupportedProvider` for any other provider prefix.

    Example::

        resolve_model("anthropic/claude-haiku-4-5", "claude-sonnet-4-6")  # "claude-haiku-4-5"
    """
    name = model or default
    provider, sep, model_id = name.partition("/")
    if not sep:
        return name
    if provider.lower() != PROVIDER or not model_id:
        raise UnsupportedProvider(provider)
    return model_id


def llm_response_from_message(message: Message, *, route: Route = "sync") -> LLMResponse:
    """Turn an SDK ``Message`` into an :class:`~lore_core.llm.LLMResponse` (text blocks joined in order).

    Example::

        llm_response_from_message(message, route="batch").text
    """
    return LLMResponse(
        text="".join(block.text for block in message.content if block.type == "text"),
        usage=usage_from_api(message.usage),
        model=message.model,
        route=route,
        stop_reason=message.stop_reason,
    )


@dataclass(frozen=True, slots=True)
class _Failure:
    """What one failed attempt tells us: ids and status only, never the provider's message text."""

    status: int | None
    error_type: str | None
    request_id: str | None
    retry_after: float | None  # as the server said, uncapped
    retryable: bool

    @classmethod
    def from_exception(cls, exc: anthropic.APIError, *, now: float) -> _Failure:
        if isinstance(exc, anthropic.APIStatusError):
            return cls(
                status=exc.status_code,
                error_type=str(exc.type) if exc.type else None,
                request_id=exc.request_id,
                retry_after=parse_retry_after(exc.response.headers, now=now),
                retryable=exc.status_code in RETRYABLE_STATUSES,
            )
        if isinstance(exc, anthropic.APITimeoutError):
            return cls(None, "timeout", None, None, retryable=True)
        if isinstance(exc, anthropic.APIConnectionError):
            return cls(None, "connection", None, None, retryable=True)
        return cls(None, "invalid_response", None, None, retryable=False)

    def describe(self) -> str:
        what = f"status {self.status}" if self.status is not None else "no response"
        return f"{what} ({self.error_type or 'unknown'})"

    def to_error(self, *, attempts: int, retry_after: float | None, context: str) -> LLMError:
        """The lore error for this failure once we stop trying."""
        text = f"anthropic messages.create failed: {self.describe()} after {attempts} attempt(s); {context}"
        if self.request_id:
            text += f", request_id={self.request_id}"
        status, request_id, error_type = self.status, self.request_id, self.error_type
        if status == 429:
            return RateLimitedError(
                text, retry_after=retry_after, status=status, request_id=request_id, error_type=error_type
            )
        kind: type[LLMError]
        if status in (401, 403):
            kind = LLMAuthError
        elif status is None or status in RETRYABLE_STATUSES or status >= 500:
            kind = LLMUnavailableError
        else:
            kind = LLMRequestError
        return kind(
            text, status=status, request_id=request_id, error_type=error_type, retryable=self.retryable
        )


class AnthropicLLMClient:
    """The synchronous :class:`~lore_core.llm.LLMClient`: one Anthropic ``messages.create`` per ``prompt``.

    ``client`` is an ordinary ``anthropic.AsyncAnthropic``; calls go through a ``with_options(max_retries=0)``
    copy so this class is the only retry layer. With ``registry`` each call uses the credential it resolves
    for the call's ``session_id`` (a cached ``with_options`` copy on the same connection pool); without one,
    the client's own credential. ``retry`` sets the attempt budgets and waits; ``breaker`` (shared across
    clients if you pass the same instance) pauses background calls after a 429; ``background_limit`` caps
    background calls on the wire (an ``int``, or a shared :class:`~lore_batch.limits.ConcurrencyLimit`).
    Urgent calls skip both. ``clock`` drives every wait. ``cache_system`` marks the system block for prompt
    caching with the default TTL.

    Example::

        llm = AnthropicLLMClient(anthropic.AsyncAnthropic())
        reply = await llm.prompt("You are terse.", "Say hi", worker="curate", session_id="s1")
        reply.text, reply.usage.output_tokens
    """

    background_slots: int | None = None
    """Tells the engine not to add its own cap on background calls: this client already holds them to
    ``background_limit`` requests in flight (see ``lore_core.workers.runtime``)."""

    def __init__(
        self,
        client: anthropic.AsyncAnthropic,
        *,
        registry: CredentialResolver | None = None,
        default_model: str = "claude-sonnet-4-6",
        max_tokens: int = 8192,
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        clock: Clock | None = None,
        background_limit: int | ConcurrencyLimit = 2,
        cache_system: bool = True,
    ) -> None:
        resolve_model(default_model, default_model)  # fail fast on an unsupported default
        self._base = client.with_options(max_retries=0)
        self._registry = registry
        self.default_model = default_model
        self.max_tokens = max_tokens
        self.retry = retry or RetryPolicy()
        self.clock: Clock = clock or SystemClock()
        self.breaker = breaker or CircuitBreaker(clock=self.clock)
        self.background_limit = (
            background_limit
            if isinstance(background_limit, ConcurrencyLimit)
            else ConcurrencyLimit(background_limit)
        )
        self.cache_system = cache_system
        self._credential_clients: OrderedDict[str, anthropic.AsyncAnthropic] = OrderedDict()

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
    ) -> LLMResponse:
        """Send one message and return the reply with route ``"sync"``.

        ``system`` becomes one text block (omitted when empty), ``user`` the single user message;
        ``temperature`` is sent unless ``None``. Retries 408/429/5xx/529, timeouts and connection errors
        within the urgent or background budget, honouring Retry-After.

        Raises :class:`~lore_batch.errors.UnsupportedProvider` for a non-Anthropic ``model`` prefix,
        :class:`~lore_batch.errors.NoCredentials` when the registry has no credential for ``session_id``,
        :class:`~lore_core.errors.LLMRequestError` (400/404/413 and other refusals, at once),
        :class:`~lore_core.errors.LLMAuthError` (401/403, at once),
        :class:`~lore_core.errors.RateLimitedError` (429 after the budget, or the breaker's ``max_wait``),
        :class:`~lore_core.errors.LLMUnavailableError` (5xx/529/network after the budget); each raised from
        the SDK error.

        Example::

            reply = await llm.prompt("", "2+2?", model="anthropic/claude-haiku-4-5", urgent=True)
        """
        model_id = resolve_model(model, self.default_model)
        client, credential = self._client_for(session_id)
        messages: list[MessageParam] = [{"role": "user", "content": user}]
        system_blocks: list[TextBlockParam] = []
        if system:
            block: TextBlockParam = {"type": "text", "text": system}
            if self.cache_system:
                block["cache_control"] = {"type": "ephemeral"}
            system_blocks.append(block)
        extra_body = {"temperature": temperature} if temperature is not None else None
        workspace = credential.workspace if credential is not None else None

        async def send() -> Message:
            return await client.messages.create(
                model=model_id,
                max_tokens=self.max_tokens if max_tokens is None else max_tokens,
                messages=messages,
                system=system_blocks or anthropic.omit,
                workspace_id=workspace or anthropic.omit,
                extra_body=extra_body,
            )

        context = f"worker={worker or '-'} session={session_id or '-'} urgent={urgent}"
        message = await self._with_retries(send, urgent=urgent, context=context)
        logger.debug("sync call done: %s request_id=%s", context, message._request_id)
        return llm_response_from_message(message, route="sync")

    async def _with_retries(
        self, send: Callable[[], Awaitable[Message]], *, urgent: bool, context: str
    ) -> Message:
        attempts = self.retry.attempts(urgent=urgent)
        attempt = 0
        while True:
            attempt += 1
            sent_epoch: int | None = None
            try:
                if urgent:
                    return await send()
                async with self._background_turn() as sent_epoch:
                    message = await send()
                self.breaker.record_success(sent_epoch=sent_epoch)
                return message
            except anthropic.APIError as exc:
                failure = _Failure.from_exception(exc, now=self.clock.now())
                error = exc
            capped = self.retry.cap_retry_after(failure.retry_after, urgent=urgent)
            tripped = not urgent and failure.status == 429
            if tripped:
                self.breaker.trip(capped, sent_epoch=sent_epoch)
            if not failure.retryable or attempt >= attempts:
                retry_after = self.breaker.remaining() if tripped else failure.retry_after
                logger.info(
                    "sync call gave up: %s status=%s type=%s request_id=%s attempts=%d",
                    context,
                    failure.status,
                    failure.error_type,
                    failure.request_id,
                    attempt,
                )
                raise failure.to_error(attempts=attempt, retry_after=retry_after, context=context) from error
            # A tripped breaker already holds the next background attempt for at least the Retry-After.
            wait = 0.0 if tripped else self.retry.delay(attempt, urgent=urgent, retry_after=capped)
            logger.info(
                "sync call failed, retrying: %s status=%s type=%s request_id=%s attempt=%d/%d wait=%.2fs",
                context,
                failure.status,
                failure.error_type,
                failure.request_id,
                attempt,
                attempts,
                wait,
            )
            if wait > 0:
                await self.clock.sleep(wait)

    @asynccontextmanager
    async def _background_turn(self) -> AsyncIterator[int]:
        """Wait out the breaker, take a background slot, and yield the breaker epoch the request goes in."""
        while True:
            await self.breaker.wait()
            await self.background_limit.acquire()
            if not self.breaker.is_open:
                break
            self.background_limit.release()  # it tripped while we queued for a slot: wait again
        try:
            yield self.breaker.epoch
        finally:
            self.background_limit.release()

    def _client_for(self, session_id: str | None) -> tuple[anthropic.AsyncAnthropic, AuthCredential | None]:
        if self._registry is None:
            return self._base, None
        credential = self._registry.resolve_auth(session_id)
        if credential is None:
            raise NoCredentials(session_id)
        key = credential.fingerprint
        client = self._credential_clients.get(key)
        if client is None:
            if credential.scheme == "api-key":
                client = self._base.with_options(api_key=credential.value)
            else:
                client = self._base.with_options(auth_token=credential.value)
            self._credential_clients[key] = client
            if len(self._credential_clients) > _MAX_CREDENTIAL_CLIENTS:
                self._credential_clients.popitem(last=False)
        else:
            self._credential_clients.move_to_end(key)
        return client, credential

    def __repr__(self) -> str:
        return (
            f"AnthropicLLMClient(default_model={self.default_model!r}, max_tokens={self.max_tokens}, "
            f"registry={'yes' if self._registry is not None else 'no'}, breaker={self.breaker!r})"
        )
