"""The disable list: credentials and (session, scheme) pairs that may not batch for a while (BATCH.md 7).

A 401/403 from a batch endpoint (or an ``authentication_error``/``permission_error`` result) adds one entry
for the credential fingerprint, which also covers calls without a session, and one per (session id, scheme)
in the batch. OAuth bearer tokens lack batch scope and a refreshed token has a new fingerprint, so the session
entry keeps the session off the batch path across refreshes; it applies only while the session's credential
has the same scheme, so a session that switches to an API key batches again at once. Entries expire after
``ttl`` seconds (24 h *default*). Memory mode keeps them in memory only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

from lore_batch.auth import AuthCredential
from lore_batch.clock import Clock

__all__ = ["DEFAULT_DISABLE_TTL", "DisableEntry", "DisableList"]

logger = logging.getLogger(__name__)

# How long a refused credential stays off the batch path (BATCH.md 5.4).
DEFAULT_DISABLE_TTL: Final = 24 * 3600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class DisableEntry:
    """Why and until when (clock ``monotonic()``) a key is disabled. Carries ids only."""

    kind: str  # "credential" or "session"
    key: str
    scheme: str
    status_code: int | None
    reason: str
    expires_at: float


class DisableList:
    """Disabled credential fingerprints and (session, scheme) pairs, each with a TTL on ``clock``.

    Example::

        disabled = DisableList(clock=clock)
        disabled.disable(cred, sessions=["s1"], status_code=403, reason="permission_error")
        disabled.blocks(cred, session_id=None)  # True for the next 24 h
    """

    def __init__(self, *, clock: Clock, ttl: float = DEFAULT_DISABLE_TTL) -> None:
        self.clock = clock
        self.ttl = ttl
        self._credentials: dict[str, DisableEntry] = {}
        self._sessions: dict[tuple[str, str], DisableEntry] = {}

    def disable(
        self,
        credential: AuthCredential,
        *,
        sessions: list[str],
        status_code: int | None,
        reason: str,
    ) -> None:
        """Disable ``credential`` and each of ``sessions`` under its scheme for ``ttl`` seconds."""
        expires_at = self.clock.monotonic() + self.ttl
        fp, scheme = credential.fingerprint, credential.scheme
        self._credentials[fp] = DisableEntry(
            kind="credential",
            key=fp,
            scheme=scheme,
            status_code=status_code,
            reason=reason,
            expires_at=expires_at,
        )
        for session_id in sessions:
            self._sessions[(session_id, scheme)] = DisableEntry(
                kind="session",
                key=session_id,
                scheme=scheme,
                status_code=status_code,
                reason=reason,
                expires_at=expires_at,
            )
        logger.warning(
            "batching disabled for credential %s and %d session(s): status=%s reason=%s ttl=%.0fs",
            fp,
            len(sessions),
            status_code,
            reason,
            self.ttl,
        )

    def blocks(self, credential: AuthCredential, *, session_id: str | None) -> bool:
        """Whether a call with ``credential`` for ``session_id`` must skip the batch path now."""
        now = self.clock.monotonic()
        entry = self._credentials.get(credential.fingerprint)
        if entry is not None:
            if entry.expires_at > now:
                return True
            del self._credentials[credential.fingerprint]
        if session_id is None:
            return False
        key = (session_id, credential.scheme)
        session_entry = self._sessions.get(key)
        if session_entry is not None:
            if session_entry.expires_at > now:
                return True
            del self._sessions[key]
        return False

    def entries(self) -> list[DisableEntry]:
        """Every live entry (for diagnostics)."""
        now = self.clock.monotonic()
        every = [*self._credentials.values(), *self._sessions.values()]
        return [entry for entry in every if entry.expires_at > now]

    def __repr__(self) -> str:
        return f"DisableList(entries={len(self.entries())}, ttl={self.ttl:.0f})"
