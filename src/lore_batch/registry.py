"""Per-session credentials with explicit bounds (BATCH.md section 7); re-exported by :mod:`lore_batch.auth`.

:class:`CredentialRegistry` maps session ids to :class:`~lore_batch.auth.AuthCredential` values, keeps at most
``max_sessions`` of them (least recently used out first) and forgets a session ``idle_ttl`` seconds after its
last use. Expiry happens on access, so there is no background task. The registry never answers a session
with another session's credential: the only fallback is a default configured explicitly.
"""

from __future__ import annotations

import builtins
import logging
import math
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

from lore_batch.clock import Clock, SystemClock
from lore_core.errors import ConfigError

if TYPE_CHECKING:  # auth re-exports this module, so the import is for types only
    from lore_batch.auth import AuthCredential

__all__ = ["DEFAULT_IDLE_TTL", "DEFAULT_MAX_SESSIONS", "CredentialRegistry"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_SESSIONS = 10_000
DEFAULT_IDLE_TTL = 86_400.0  # 24 h, in seconds
# How many fingerprints a repr lists before it summarises the rest as a count.
_REPR_FINGERPRINTS = 8

RegisterCallback = Callable[[str], object]


class _Entry:
    """One session's credential and the monotonic time it was last set or resolved."""

    __slots__ = ("credential", "last_used")

    def __init__(self, credential: AuthCredential, last_used: float) -> None:
        self.credential = credential
        self.last_used = last_used


class CredentialRegistry:
    """Session id → credential, bounded by count (LRU) and idle time, with an optional explicit default.

    ``max_sessions`` caps the sessions held (the default does not count); setting one more evicts the least
    recently used. A session not set or resolved for ``idle_ttl`` seconds is gone on the next access.
    ``default`` answers calls without a session, and sessions with no live entry, only when given here or
    through :meth:`set_default`. ``clock`` measures idleness (its ``monotonic()`` reading). Callbacks added
    with :meth:`on_register` get the credential's fingerprint on every :meth:`set`. Use it from one thread (or
    one event loop); it has no locks. Raises :class:`~lore_core.errors.ConfigError` for ``max_sessions < 1``
    or an ``idle_ttl`` that is not a positive finite number.

    Example::

        registry = CredentialRegistry(max_sessions=1_000, idle_ttl=3_600)
        registry.set("s1", AuthCredential("api-key", "sk-ant-..."))
        registry.resolve_auth("s1")  # the s1 credential
        registry.resolve_auth("s2")  # None: no default was configured
    """

    def __init__(
        self,
        *,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        idle_ttl: float = DEFAULT_IDLE_TTL,
        default: AuthCredential | None = None,
        clock: Clock | None = None,
    ) -> None:
        if isinstance(max_sessions, bool) or not isinstance(max_sessions, int) or max_sessions < 1:
            raise ConfigError(f"max_sessions must be a positive integer, got {max_sessions!r}")
        if not math.isfinite(idle_ttl) or idle_ttl <= 0:
            raise ConfigError(f"idle_ttl must be a positive number of seconds, got {idle_ttl!r}")
        self.max_sessions = max_sessions
        self.idle_ttl = float(idle_ttl)
        self._default = default
        self._clock: Clock = clock or SystemClock()
        # Ordered by last use, oldest first: set/resolve move an entry to the end, so the expired ones are
        # always a prefix and LRU eviction pops from the front.
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._callbacks: list[RegisterCallback] = []

    @property
    def default(self) -> AuthCredential | None:
        """The explicitly configured default credential, or ``None``."""
        return self._default

    def set(self, session_id: str, cred: AuthCredential) -> None:
        """Bind ``session_id`` to ``cred`` (replacing any earlier one) and mark the session as just used.

        Evicts the least recently used session when this one would pass ``max_sessions``, then calls every
        :meth:`on_register` callback with ``cred.fingerprint``; a callback that raises is logged and skipped.
        Raises :class:`~lore_core.errors.ConfigError` for an empty ``session_id``.

        Example::

            registry.set("s1", AuthCredential("bearer", "sk-ant-oat01-..."))
        """
        if not session_id:
            raise ConfigError("a session id must be a non-empty string")
        now = self._clock.monotonic()
        self._purge(now)
        self._entries[session_id] = _Entry(cred, now)
        self._entries.move_to_end(session_id)
        while len(self._entries) > self.max_sessions:
            evicted, entry = self._entries.popitem(last=False)
            logger.debug(
                "credential evicted (LRU): session=%s fingerprint=%s", evicted, entry.credential.fingerprint
            )
        logger.debug("credential set: session=%s fingerprint=%s", session_id, cred.fingerprint)
        self._notify(cred.fingerprint)

    def get(self, session_id: str) -> AuthCredential | None:
        """The session's live credential, or ``None``; a look that does not count as use.

        Unlike :meth:`resolve_auth` it neither refreshes the idle clock nor moves the LRU position, and it
        never falls back to the default.

        Example::

            registry.get("s1") is None  # not registered, evicted or expired
        """
        self._purge(self._clock.monotonic())
        entry = self._entries.get(session_id)
        return entry.credential if entry is not None else None

    def delete(self, session_id: str) -> bool:
        """Forget ``session_id``; return whether it had a live entry.

        Example::

            registry.delete("s1")  # True the first time, False after
        """
        self._purge(self._clock.monotonic())
        return self._entries.pop(session_id, None) is not None

    def set_default(self, cred: AuthCredential | None) -> None:
        """Configure (or, with ``None``, remove) the default credential. It fires no register callbacks.

        Example::

            registry.set_default(AuthCredential("api-key", "sk-ant-..."))
        """
        self._default = cred
        logger.debug("default credential set: fingerprint=%s", cred.fingerprint if cred is not None else None)

    def fingerprints(self) -> builtins.set[str]:
        """The fingerprints of every live session credential, and of the default when one is configured.

        Example::

            registry.fingerprints()  # {"3f0c9a1b2c3d4e5f", ...}
        """
        self._purge(self._clock.monotonic())
        found = {entry.credential.fingerprint for entry in self._entries.values()}
        if self._default is not None:
            found.add(self._default.fingerprint)
        return found

    def credential(self, fp: str) -> AuthCredential | None:
        """A live credential with fingerprint ``fp`` (a session's or the default), or ``None``; a look that
        does not count as use. Durable mode uses it to resume batches made with ``fp``.

        Example::

            registry.credential(AuthCredential("api-key", "sk-ant-...").fingerprint)
        """
        if self._default is not None and self._default.fingerprint == fp:
            return self._default
        self._purge(self._clock.monotonic())
        for entry in self._entries.values():
            if entry.credential.fingerprint == fp:
                return entry.credential
        return None

    def resolve_auth(self, session_id: str | None) -> AuthCredential | None:
        """The credential a call for ``session_id`` should use (implements ``CredentialResolver``).

        A live session entry wins and counts as use (it moves to most recently used and its idle clock
        restarts). Otherwise, and for ``session_id=None``, the explicitly configured default, else ``None``:
        never another session's credential.

        Example::

            registry.resolve_auth("s1") or registry.resolve_auth(None)
        """
        if session_id is None:
            return self._default
        now = self._clock.monotonic()
        self._purge(now)
        entry = self._entries.get(session_id)
        if entry is None:
            return self._default
        entry.last_used = now
        self._entries.move_to_end(session_id)
        return entry.credential

    def on_register(self, callback: RegisterCallback) -> Callable[[], None]:
        """Call ``callback(fingerprint)`` whenever a credential is set; return a function that removes it.

        Meant for durable mode, which records which credentials this process can resume. A callback that
        raises is logged (with the fingerprint only) and does not stop :meth:`set` or the other callbacks.

        Example::

            seen: list[str] = []
            remove = registry.on_register(seen.append)
            remove()  # stop listening
        """
        self._callbacks.append(callback)

        def remove() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

        return remove

    def __len__(self) -> int:
        """How many sessions hold a live credential (the default is not counted)."""
        self._purge(self._clock.monotonic())
        return len(self._entries)

    def __repr__(self) -> str:
        # Read-only: counts the live entries without purging the expired ones.
        cutoff = self._clock.monotonic() - self.idle_ttl
        live = [e.credential.fingerprint for e in self._entries.values() if e.last_used > cutoff]
        distinct = sorted(set(live))
        shown = ", ".join(repr(fp) for fp in distinct[:_REPR_FINGERPRINTS])
        if len(distinct) > _REPR_FINGERPRINTS:
            shown += f", +{len(distinct) - _REPR_FINGERPRINTS} more"
        default = repr(self._default.fingerprint) if self._default is not None else "None"
        return (
            f"CredentialRegistry(sessions={len(live)}, max_sessions={self.max_sessions}, "
            f"idle_ttl={self.idle_ttl!r}, default={default}, fingerprints=[{shown}])"
        )

    def _purge(self, now: float) -> None:
        """Drop the entries idle for ``idle_ttl`` seconds or more (a prefix of the use order)."""
        cutoff = now - self.idle_ttl
        while self._entries:
            session_id, entry = next(iter(self._entries.items()))
            if entry.last_used > cutoff:
                return
            del self._entries[session_id]
            logger.debug(
                "credential expired (idle): session=%s fingerprint=%s",
                session_id,
                entry.credential.fingerprint,
            )

    def _notify(self, fp: str) -> None:
        for callback in list(self._callbacks):
            try:
                callback(fp)
            except Exception:
                name = getattr(callback, "__qualname__", type(callback).__qualname__)
                logger.exception("on_register callback %s failed: fingerprint=%s", name, fp)
