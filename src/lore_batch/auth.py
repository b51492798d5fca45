"""Credentials as values that never show their secret (BATCH.md section 7).

This module holds the pieces the synchronous client needs: :class:`AuthCredential`, its :func:`fingerprint`,
and the :class:`CredentialResolver` port a per-session registry implements (``CredentialRegistry`` grows here
later).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from lore_core.errors import ConfigError

__all__ = ["AuthCredential", "AuthScheme", "CredentialResolver", "fingerprint"]

AuthScheme = Literal["api-key", "bearer"]
_SCHEMES: frozenset[str] = frozenset({"api-key", "bearer"})


@dataclass(frozen=True, slots=True, repr=False)
class AuthCredential:
    """One credential: an API key (``x-api-key``) or an OAuth bearer token, and an optional workspace.

    ``repr``/``str`` show the scheme, the 16-hex fingerprint and ``value=<redacted>``, never any part of the
    secret. Raises :class:`~lore_core.errors.ConfigError` for an unknown scheme or an empty value.

    Example::

        cred = AuthCredential("api-key", "sk-ant-...")
        repr(cred)  # "AuthCredential(scheme='api-key', fingerprint='3f0c...', value=<redacted>)"
    """

    scheme: AuthScheme
    value: str
    workspace: str | None = None

    def __post_init__(self) -> None:
        if self.scheme not in _SCHEMES:
            raise ConfigError(f"unknown credential scheme {self.scheme!r}")
        if not self.value:
            raise ConfigError("a credential needs a non-empty value")

    @property
    def fingerprint(self) -> str:
        """``sha256(f"{scheme}|{value}")`` as 16 hex characters: a stable id that reveals nothing."""
        return fingerprint(self)

    def __repr__(self) -> str:
        workspace = f", workspace={self.workspace!r}" if self.workspace is not None else ""
        return (
            f"AuthCredential(scheme={self.scheme!r}, fingerprint={self.fingerprint!r}{workspace}, "
            "value=<redacted>)"
        )

    __str__ = __repr__


def fingerprint(cred: AuthCredential) -> str:
    """The credential's 16-hex id; the scheme keeps a key and a token with the same value apart.

    Example::

        fingerprint(AuthCredential("bearer", "tok")) != fingerprint(AuthCredential("api-key", "tok"))  # True
    """
    return hashlib.sha256(f"{cred.scheme}|{cred.value}".encode()).hexdigest()[:16]


@runtime_checkable
class CredentialResolver(Protocol):
    """Where per-session credentials come from (the later ``CredentialRegistry`` implements it).

    ``resolve_auth`` returns the session's credential, or a default only if one was configured explicitly,
    else ``None``; it never returns another session's credential.
    """

    def resolve_auth(self, session_id: str | None) -> AuthCredential | None: ...
