"""Settings of the durable pool (BATCH.md 6); every number is a *default* a constructor may change."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["OnClose", "PoolSettings"]

OnClose = Literal["leave", "flush"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolSettings:
    """Timings of the durable pool, in seconds of the pool's clock.

    ``heartbeat``: how often a process refreshes its row (and renews its SQLite leases).
    ``stale_after``: a process whose heartbeat is older counts as gone; its finished items go to handlers.
    ``lock_retry``: how often a process tries to lead a credential it does not lead.
    ``lease_ttl``: a SQLite lease's life (renewed every ``heartbeat``).
    ``delivery_interval``: how often a process reads its own finished rows (results stored by other processes).
    ``credential_wait``: a queued item whose credential no live process holds fails after this long.
    ``handler_attempts``: a result handler that raises is retried on later passes, then the item is
    ``handler_failed``. ``handler_defer_limit``: how long in all a handler may put an item off by raising
    :class:`~lore_batch.errors.HandlerRetry` (such deferrals count no attempt).
    ``on_close``: ``"leave"`` queued items for the next start, or ``"flush"`` them into batches first.
    """

    heartbeat: float = 10.0
    stale_after: float = 60.0
    lock_retry: float = 5.0
    lease_ttl: float = 30.0
    delivery_interval: float = 1.0
    credential_wait: float = 3600.0
    handler_attempts: int = 3
    handler_defer_limit: float = 3600.0
    on_close: OnClose = "leave"

    def problems(self) -> list[str]:
        """What is wrong with these settings (empty when they are usable)."""
        found = []
        for name in (
            "heartbeat",
            "stale_after",
            "lock_retry",
            "lease_ttl",
            "delivery_interval",
            "credential_wait",
        ):
            if getattr(self, name) <= 0:
                found.append(f"{name} must be positive")
        if self.lease_ttl <= self.heartbeat:
            found.append("lease_ttl must be longer than heartbeat (leases are renewed every heartbeat)")
        if self.stale_after <= self.heartbeat:
            found.append("stale_after must be longer than heartbeat")
        if self.handler_attempts < 1:
            found.append("handler_attempts must be at least 1")
        if self.on_close not in ("leave", "flush"):
            found.append("on_close must be 'leave' or 'flush'")
        return found
