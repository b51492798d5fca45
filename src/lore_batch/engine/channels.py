"""Per-credential channels to the batch endpoints: an SDK copy on the shared pool and a request budget.

Polls, downloads and cancels use the batch's own credential (BATCH.md 7). Each credential gets
``client.with_options(api_key=...)`` or ``with_options(auth_token=...)`` (``max_retries=0``: the engine owns
retries), cached by fingerprint, and a :class:`~lore_batch.limits.TokenBucket` at ``batch_rpm`` that every
batch-endpoint call spends from (a results download spends 2).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

import anthropic

from lore_batch.auth import AuthCredential
from lore_batch.clock import Clock
from lore_batch.limits import TokenBucket

__all__ = ["DOWNLOAD_TOKENS", "Channel", "Channels", "client_credential", "describe_api_error"]

# A download is two requests: the SDK retrieves the batch, then fetches its results_url.
DOWNLOAD_TOKENS: Final = 2.0
# Channels kept; an evicted one is rebuilt on next use (the SDK copies share one pool).
_MAX_CHANNELS: Final = 1024


def client_credential(client: anthropic.AsyncAnthropic) -> AuthCredential | None:
    """The credential ``client`` sends (its API key, else its auth token), or ``None`` if it has neither."""
    if client.api_key:
        return AuthCredential("api-key", client.api_key)
    if client.auth_token:
        return AuthCredential("bearer", client.auth_token)
    return None


@dataclass(slots=True, eq=False)
class Channel:
    """One credential's way to the batch endpoints."""

    credential: AuthCredential
    client: anthropic.AsyncAnthropic
    bucket: TokenBucket

    def __repr__(self) -> str:
        return f"Channel(credential_fp={self.credential.fingerprint!r}, bucket={self.bucket!r})"


class Channels:
    """Channels by credential fingerprint. ``own`` is the base client's credential, used without a copy."""

    def __init__(
        self,
        client: anthropic.AsyncAnthropic,
        *,
        own: AuthCredential | None,
        batch_rpm: float,
        clock: Clock,
    ) -> None:
        self._base = client.with_options(max_retries=0)
        self._own_fp = own.fingerprint if own is not None else None
        self._batch_rpm = batch_rpm
        self._clock = clock
        self._channels: OrderedDict[str, Channel] = OrderedDict()

    def get(self, credential: AuthCredential) -> Channel:
        """The channel for ``credential`` (made on first use)."""
        fp = credential.fingerprint
        channel = self._channels.get(fp)
        if channel is not None:
            self._channels.move_to_end(fp)
            return channel
        if fp == self._own_fp:
            client = self._base
        elif credential.scheme == "api-key":
            client = self._base.with_options(api_key=credential.value)
        else:
            client = self._base.with_options(auth_token=credential.value)
        bucket = TokenBucket(
            self._batch_rpm, capacity=max(self._batch_rpm, DOWNLOAD_TOKENS), clock=self._clock
        )
        channel = Channel(credential, client, bucket)
        self._channels[fp] = channel
        if len(self._channels) > _MAX_CHANNELS:
            self._channels.popitem(last=False)
        return channel

    def __repr__(self) -> str:
        return f"Channels(count={len(self._channels)})"


def describe_api_error(exc: BaseException) -> str:
    """The provider error as one log field: status, type, request_id and the provider's message (no secrets)."""
    if isinstance(exc, anthropic.APIStatusError):
        body = exc.body if isinstance(exc.body, dict) else {}
        raw = body.get("error")
        error: dict[str, object] = raw if isinstance(raw, dict) else {}
        return (
            f"status={exc.status_code} type={exc.type or error.get('type')} request_id={exc.request_id} "
            f"message={error.get('message')!r}"
        )
    if isinstance(exc, anthropic.APITimeoutError):
        return "timeout"
    if isinstance(exc, anthropic.APIConnectionError):
        return "connection error"
    return type(exc).__name__
