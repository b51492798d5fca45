"""Per-credential flusher leadership (BATCH.md 6.4).

Only the process leading a credential flushes, polls, downloads, rescues and runs fallbacks for it, because
only a process holding the credential can use it, and one leader at a time keeps every claim single.

- PostgreSQL: a session-level advisory lock on ``int64(sha256("lore_batch|" + fp)[:8])``, held on one dedicated
  connection per process. A process that dies (even by SIGKILL) drops its connection and so its locks; a
  leader whose lock connection fails stops leading at once.
- SQLite: a lease row per credential in ``lore_batch_leases``, taken when free, expired or already ours, and
  renewed on every check (lease 30 s *default*); a leader that stops renewing loses it after the lease.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from .store import PoolStore

__all__ = ["AdvisoryLeadership", "Leadership", "LeaseLeadership", "advisory_key", "make_leadership"]

logger = logging.getLogger(__name__)


def advisory_key(fp: str) -> int:
    """The signed 64-bit advisory-lock key of credential ``fp``."""
    digest = hashlib.sha256(f"lore_batch|{fp}".encode()).digest()[:8]
    return int.from_bytes(digest, "big", signed=True)


class Leadership(Protocol):
    """Who leads which credential."""

    async def hold(self, fp: str, *, now: datetime) -> bool:
        """Take or keep leadership of ``fp``; whether this process leads it now."""
        ...

    async def release(self, fp: str) -> None:
        """Stop leading ``fp``."""
        ...

    async def close(self) -> None:
        """Release everything."""
        ...


class AdvisoryLeadership:
    """PostgreSQL session-level advisory locks on one dedicated connection."""

    def __init__(self, store: PoolStore) -> None:
        self._store = store
        self._connection: AsyncConnection | None = None
        self._held: set[str] = set()

    async def hold(self, fp: str, *, now: datetime) -> bool:
        self._store.busy += 1
        try:
            return await self._hold(fp)
        finally:
            self._store.busy -= 1

    async def _hold(self, fp: str) -> bool:
        try:
            if self._connection is None:
                self._connection = await self._store.connection()
                await self._connection.execute(text("SELECT 1"))
                await self._connection.commit()
            if fp in self._held:
                await self._connection.execute(text("SELECT 1"))
                await self._connection.commit()
                return True
            got = await self._connection.scalar(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": advisory_key(fp)}
            )
            await self._connection.commit()
        except (SQLAlchemyError, OSError):
            logger.warning("advisory lock connection failed: leading nothing until it is back", exc_info=True)
            await self._drop()
            return False
        if got:
            self._held.add(fp)
        return bool(got)

    async def release(self, fp: str) -> None:
        if fp not in self._held or self._connection is None:
            return
        self._held.discard(fp)
        self._store.busy += 1
        try:
            await self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": advisory_key(fp)})
            await self._connection.commit()
        except (SQLAlchemyError, OSError):
            await self._drop()
        finally:
            self._store.busy -= 1

    async def close(self) -> None:
        self._held.clear()
        await self._drop()

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        self._held.clear()
        if connection is not None:
            try:
                await connection.close()
            except (SQLAlchemyError, OSError):
                logger.debug("closing the advisory lock connection failed", exc_info=True)

    def __repr__(self) -> str:
        return f"AdvisoryLeadership(held={len(self._held)})"


class LeaseLeadership:
    """SQLite lease rows in ``lore_batch_leases``, ``ttl`` seconds each, renewed on every check."""

    def __init__(self, store: PoolStore, *, holder: str, ttl: float) -> None:
        self._store = store
        self._holder = holder
        self._ttl = ttl
        self._held: set[str] = set()

    async def hold(self, fp: str, *, now: datetime) -> bool:
        try:
            got = await self._store.take_lease(f"fp:{fp}", self._holder, now=now, ttl=self._ttl)
        except Exception:
            logger.warning("lease check for %s failed: not leading it", fp, exc_info=True)
            got = False
        if got:
            self._held.add(fp)
        else:
            self._held.discard(fp)
        return got

    async def release(self, fp: str) -> None:
        if fp in self._held:
            self._held.discard(fp)
            await self._store.release_lease(f"fp:{fp}", self._holder)

    async def close(self) -> None:
        for fp in list(self._held):
            try:
                await self.release(fp)
            except Exception:
                logger.warning("releasing the lease of %s failed", fp, exc_info=True)

    def __repr__(self) -> str:
        return f"LeaseLeadership(held={len(self._held)}, ttl={self._ttl:g})"


def make_leadership(store: PoolStore, *, holder: str, lease_ttl: float) -> Leadership:
    """Advisory locks on PostgreSQL, lease rows on SQLite."""
    if store.dialect == "postgresql":
        return AdvisoryLeadership(store)
    return LeaseLeadership(store, holder=holder, ttl=lease_ttl)
