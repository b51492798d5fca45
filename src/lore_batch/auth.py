"""Credentials as values that never show their secret, and where a call's credential comes from (BATCH.md 7).

- :class:`AuthCredential` and its :func:`fingerprint`: an API key or an OAuth bearer token, plus a workspace.
- :func:`extract_auth` / :func:`auth_headers`: credentials from and to HTTP headers.
- :func:`session_fingerprint`: a session id for hosts that see raw HTTP and have none.
- :class:`CredentialResolver` (the port) and :class:`CredentialRegistry` (its bounded per-session
  implementation, defined in :mod:`lore_batch.registry`); :func:`resolve_auth` picks between a registry and
  a single-tenant client's own credential, which :func:`credential_of` reads.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import anthropic

from lore_batch.errors import UnsupportedProvider
from lore_batch.registry import CredentialRegistry
from lore_core.errors import ConfigError

__all__ = [
    "WORKSPACE_HEADER",
    "AuthCredential",
    "AuthScheme",
    "CredentialRegistry",
    "CredentialResolver",
    "auth_headers",
    "credential_of",
    "extract_auth",
    "fingerprint",
    "resolve_auth",
    "session_fingerprint",
]

AuthScheme = Literal["api-key", "bearer"]
_SCHEMES: frozenset[str] = frozenset({"api-key", "bearer"})

WORKSPACE_HEADER = "anthropic-workspace-id"
_BEARER = re.compile(r"Bearer\s+(\S+)", re.IGNORECASE)  # matched against the whole stripped value


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
    """Where per-session credentials come from (:class:`CredentialRegistry` implements it).

    ``resolve_auth`` returns the session's credential, or a default only if one was configured explicitly,
    else ``None``; it never returns another session's credential.
    """

    def resolve_auth(self, session_id: str | None) -> AuthCredential | None: ...


def extract_auth(headers: Mapping[str, str]) -> AuthCredential | None:
    """The credential an incoming request carries, or ``None``; header names are matched case-insensitively.

    A non-empty ``x-api-key`` gives an api-key credential and wins over ``Authorization``; otherwise an
    ``Authorization`` value matching ``^Bearer\\s+(\\S+)$`` (any case) gives a bearer credential. Anything
    else (Basic, a token with spaces, an empty value) is ``None``. A non-empty ``anthropic-workspace-id``
    becomes the credential's workspace.

    Example::

        extract_auth({"Authorization": "bearer sk-ant-oat01-..."})  # AuthCredential(scheme='bearer', ...)
        extract_auth({"authorization": "Basic dXNlcjpwYXNz"})  # None
    """
    workspace = _header(headers, WORKSPACE_HEADER) or None
    api_key = _header(headers, "x-api-key")
    if api_key:
        return AuthCredential("api-key", api_key, workspace)
    match = _BEARER.fullmatch(_header(headers, "authorization"))
    if match is None:
        return None
    return AuthCredential("bearer", match.group(1), workspace)


def _header(headers: Mapping[str, str], name: str) -> str:
    """The first non-blank value of header ``name`` (lower case), stripped; ``""`` when there is none."""
    for key, value in headers.items():
        if key.lower() == name and value.strip():
            return value.strip()
    return ""


def auth_headers(cred: AuthCredential, *, provider: str = "anthropic") -> dict[str, str]:
    """The HTTP headers that present ``cred`` to ``provider`` (``"anthropic"`` or ``"openai"``).

    Anthropic: ``{"x-api-key": value}`` or ``{"authorization": "Bearer " + value}`` by scheme, plus
    ``anthropic-workspace-id`` when the credential has a workspace. OpenAI: always Bearer, no workspace.
    Raises :class:`~lore_batch.errors.UnsupportedProvider` for any other provider.

    Example::

        auth_headers(AuthCredential("api-key", "sk-ant-..."))  # {"x-api-key": "sk-ant-..."}
    """
    name = provider.lower()
    if name == "openai":
        return {"authorization": f"Bearer {cred.value}"}
    if name != "anthropic":
        raise UnsupportedProvider(provider)
    if cred.scheme == "api-key":
        headers = {"x-api-key": cred.value}
    else:
        headers = {"authorization": f"Bearer {cred.value}"}
    if cred.workspace:
        headers[WORKSPACE_HEADER] = cred.workspace
    return headers


def session_fingerprint(messages: Iterable[Mapping[str, object]], cred: AuthCredential | None) -> str:
    """A 16-hex session id for hosts without one: ``sha256(first_user_text + fingerprint(cred) or "")[:16]``.

    ``first_user_text`` is the first user message's string content, or its text blocks joined with ``""``
    (``""`` when there is no user message). The model is deliberately left out: model names change within a
    conversation and would split it. An explicit session id from the host always takes precedence over this.

    Example::

        session_fingerprint([{"role": "user", "content": "hi"}], cred)  # e.g. "9b1f0c3a7d2e4f60"
    """
    text = _first_user_text(messages)
    suffix = fingerprint(cred) if cred is not None else ""
    return hashlib.sha256((text + suffix).encode()).hexdigest()[:16]


def _first_user_text(messages: Iterable[Mapping[str, object]]) -> str:
    for message in messages:
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if not isinstance(content, Iterable):
            return ""
        parts: list[str] = []
        for block in content:
            if isinstance(block, Mapping):
                kind, text = block.get("type"), block.get("text")
            else:  # an SDK content-block object rather than a dict
                kind, text = getattr(block, "type", None), getattr(block, "text", None)
            if kind == "text" and isinstance(text, str):
                parts.append(text)
        return "".join(parts)
    return ""


def credential_of(client: anthropic.AsyncAnthropic) -> AuthCredential | None:
    """The static credential an SDK client sends: its ``api_key`` (api-key) or else its ``auth_token`` (bearer).

    The workspace comes from the client's ``anthropic-workspace-id`` default header, if any. Returns ``None``
    when neither can be read, as for a client built on a token-provider object (``credentials=``).

    Example::

        credential_of(anthropic.AsyncAnthropic(api_key="sk-ant-..."))  # AuthCredential(scheme='api-key', ...)
    """
    api_key, auth_token = client.api_key, client.auth_token
    workspace = next(
        (
            value.strip()
            for key, value in client.default_headers.items()
            if key.lower() == WORKSPACE_HEADER and isinstance(value, str) and value.strip()
        ),
        None,
    )
    if isinstance(api_key, str) and api_key:
        return AuthCredential("api-key", api_key, workspace)
    if isinstance(auth_token, str) and auth_token:
        return AuthCredential("bearer", auth_token, workspace)
    return None


def resolve_auth(
    session_id: str | None,
    *,
    registry: CredentialResolver | None,
    client_credential: AuthCredential | None = None,
) -> AuthCredential | None:
    """The credential a call for ``session_id`` uses.

    With a registry (any :class:`CredentialResolver`, normally a :class:`CredentialRegistry`), whatever it
    resolves: the session's entry, else its explicit default, else ``None``; ``client_credential`` is then
    ignored, so a tenant's call is never billed to the client's own key. With ``registry=None``
    (single-tenant) every call uses ``client_credential``.

    Example::

        resolve_auth("s1", registry=None, client_credential=credential_of(client))
    """
    if registry is None:
        return client_credential
    return registry.resolve_auth(session_id)
