"""Credentials as the emulator sees them: extracted from headers, fingerprinted, never stored.

The SDK sends an API key and an OAuth token alike as ``Authorization: Bearer``; the emulator tells them apart
by value (``oauth_tokens``), not by header.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["AuthPolicy", "Credential", "Scheme", "extract_credential", "fingerprint"]

Scheme = Literal["api-key", "bearer"]

_BEARER = re.compile(r"^Bearer\s+(\S+)$", re.IGNORECASE)
_OAUTH_PREFIX = "sk-ant-oat"


def fingerprint(scheme: Scheme, value: str) -> str:
    """``sha256(f"{scheme}|{value}").hexdigest()[:16]``: identifies a credential without revealing it."""
    return hashlib.sha256(f"{scheme}|{value}".encode()).hexdigest()[:16]


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Credential:
    """A credential from one request. Lives only while the request is handled; its repr hides the value."""

    scheme: Scheme
    value: str = field(repr=False)

    @property
    def fingerprint(self) -> str:
        """See :func:`fingerprint`."""
        return fingerprint(self.scheme, self.value)

    def __repr__(self) -> str:
        return f"Credential(scheme={self.scheme!r}, fingerprint={self.fingerprint!r}, value=<redacted>)"

    __str__ = __repr__


def extract_credential(headers: Mapping[str, str]) -> Credential | None:
    """The request's credential: a non-empty ``x-api-key`` wins, else ``Authorization: Bearer <token>``.

    ``headers`` must be case-insensitive (Starlette's are). Anything else (Basic, spaces, empty): ``None``.
    """
    api_key = headers.get("x-api-key", "").strip()
    if api_key:
        return Credential("api-key", api_key)
    match = _BEARER.match(headers.get("authorization", "").strip())
    if match:
        return Credential("bearer", match.group(1))
    return None


class AuthPolicy:
    """Which credential values are accepted, and which are OAuth tokens (no batch scope).

    Only sha256 digests of the configured values are kept. ``api_keys=None`` accepts any value.
    ``oauth_tokens=None`` treats any value starting ``sk-ant-oat`` as an OAuth token.
    """

    __slots__ = ("_api_keys", "_oauth_tokens")

    def __init__(self, *, api_keys: Iterable[str] | None, oauth_tokens: Iterable[str] | None) -> None:
        self._api_keys = None if api_keys is None else frozenset(_digest(v) for v in api_keys)
        self._oauth_tokens = None if oauth_tokens is None else frozenset(_digest(v) for v in oauth_tokens)

    def is_oauth(self, value: str) -> bool:
        """Whether ``value`` is an OAuth token."""
        if self._oauth_tokens is None:
            return value.startswith(_OAUTH_PREFIX)
        return _digest(value) in self._oauth_tokens

    def accepts(self, value: str) -> bool:
        """Whether ``value`` authenticates at all (an API key in ``api_keys``, or an OAuth token)."""
        if self._api_keys is None or self.is_oauth(value):
            return True
        return _digest(value) in self._api_keys

    def __repr__(self) -> str:
        keys = "any" if self._api_keys is None else f"{len(self._api_keys)} configured"
        return f"AuthPolicy(api_keys={keys})"
