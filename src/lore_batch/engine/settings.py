"""The engine's limits and counters (BATCH.md 5.1). Facades map their own arguments onto these."""

from __future__ import annotations

from dataclasses import dataclass

from .disable import DEFAULT_DISABLE_TTL
from .grouping import MAX_BATCH_BYTES, MAX_BATCH_REQUESTS

__all__ = ["EngineCounters", "EngineSettings"]


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineSettings:
    """The engine's limits. Facades map their own arguments onto these (BATCH.md 5.1)."""

    window: float = 30.0
    flush_now: int = 50
    max_requests: int = MAX_BATCH_REQUESTS
    max_bytes: int = MAX_BATCH_BYTES
    max_inflight_requests: int = MAX_BATCH_REQUESTS
    poll_cap: float = 60.0
    sync_reserve: float = 0.0
    give_up_after: float = 3600.0
    min_turnaround: float = 120.0
    max_attempts: int = 3
    fallback_concurrency: int = 2
    batch_rpm: float = 50.0
    jitter: float = 0.1
    shutdown_grace: float = 10.0
    disable_ttl: float = DEFAULT_DISABLE_TTL


@dataclass(slots=True)
class EngineCounters:
    """Running totals. Each finished call counts in exactly one of batched, fallback or failed (the facade
    adds its direct calls)."""

    total_queued: int = 0
    batched: int = 0
    fallback: int = 0
    failed: int = 0
    resubmitted: int = 0
    batches_submitted: int = 0
