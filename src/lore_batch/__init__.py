"""lore-memory's batching: pool non-urgent LLM calls into the Anthropic Message Batches API.

What exists today: :class:`BatchLLMClient` (memory mode: queue, flush, create, poll, results, fallback, bounded
close; durable mode with ``store=``: rows shared by every process on the store, see :mod:`lore_batch.pool`),
:class:`FleetDispatcher` (any agent's ``messages.create`` calls routed by latency budget), the synchronous :class:`AnthropicLLMClient` (one retry layer, a background circuit breaker and
concurrency cap), credentials with masked reprs and the per-session :class:`CredentialRegistry`, the
``BatchError`` branch of the error tree, the pricing catalog (:mod:`lore_batch.pricing`) and the Anthropic API
emulator (:mod:`lore_batch.emulator`).
"""

from lore_batch.auth import (
    AuthCredential,
    CredentialRegistry,
    auth_headers,
    extract_auth,
    fingerprint,
    resolve_auth,
)
from lore_batch.client import BatchClientStats, BatchLLMClient
from lore_batch.dispatcher import DispatchStats, FleetDispatcher, PendingBatch, RoutingPolicy
from lore_batch.errors import (
    BatchAbandoned,
    BatchError,
    BatchItemErrored,
    ClientClosed,
    CredentialUnavailable,
    DispatcherClosed,
    FallbackFailed,
    HandlerRetry,
    NoCredentials,
    UnsupportedParams,
    UnsupportedProvider,
)
from lore_batch.limits import CircuitBreaker, RetryPolicy
from lore_batch.sync_client import AnthropicLLMClient

__all__ = [
    "AnthropicLLMClient",
    "AuthCredential",
    "BatchAbandoned",
    "BatchClientStats",
    "BatchError",
    "BatchItemErrored",
    "BatchLLMClient",
    "CircuitBreaker",
    "ClientClosed",
    "CredentialRegistry",
    "CredentialUnavailable",
    "DispatchStats",
    "DispatcherClosed",
    "FallbackFailed",
    "FleetDispatcher",
    "HandlerRetry",
    "NoCredentials",
    "PendingBatch",
    "RetryPolicy",
    "RoutingPolicy",
    "UnsupportedParams",
    "UnsupportedProvider",
    "auth_headers",
    "extract_auth",
    "fingerprint",
    "resolve_auth",
]
