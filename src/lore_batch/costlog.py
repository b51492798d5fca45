"""The request log: one row per call that reaches a provider, whatever the route (BATCH.md section 8).

:class:`RequestLogEntry` is the row; :class:`CostLog` is the port the facades write to. Without a store the
rows go to :class:`MemoryCostLog`, a ring of the newest 10,000 (a store-backed log comes with durable mode).
Savings are ``sum(sync_cost_usd - cost_usd)`` over route ``batch``; wasted spend is ``sum(cost_usd)`` over
``batch_superseded`` (paid for, not delivered).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal, Protocol, runtime_checkable

__all__ = ["CostLog", "CostTotals", "LogRoute", "LogStatus", "MemoryCostLog", "RequestLogEntry"]

LogRoute = Literal["sync", "batch", "fallback", "batch_superseded"]
LogStatus = Literal["ok", "errored", "expired", "canceled", "error"]

# How many rows the in-memory log keeps (oldest dropped first).
MEMORY_LOG_ROWS = 10_000


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestLogEntry:
    """One call that reached a provider. Costs are ``None`` when the model is not in the price catalog."""

    id: str
    ts: datetime
    provider: str
    model: str
    route: LogRoute
    status: LogStatus
    tag: str | None = None
    worker: str | None = None
    session_id: str | None = None
    credential_fp: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    cost_usd: Decimal | None = None
    sync_cost_usd: Decimal | None = None
    price_effective_at: datetime | None = None
    latency_ms: int | None = None
    batch_id: str | None = None
    custom_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CostTotals:
    """Sums over a log: what was spent, what batching saved, what superseded results wasted."""

    requests: int
    cost_usd: Decimal
    batch_savings_usd: Decimal
    wasted_usd: Decimal


@runtime_checkable
class CostLog(Protocol):
    """Where the facades write their request-log rows."""

    async def record(self, entry: RequestLogEntry) -> None: ...

    def totals(self) -> CostTotals: ...


class MemoryCostLog:
    """The request log without a store: a ring of the newest ``maxlen`` rows, plus running totals of all."""

    def __init__(self, *, maxlen: int = MEMORY_LOG_ROWS) -> None:
        self.entries: deque[RequestLogEntry] = deque(maxlen=maxlen)
        self._requests = 0
        self._cost = Decimal(0)
        self._savings = Decimal(0)
        self._wasted = Decimal(0)

    async def record(self, entry: RequestLogEntry) -> None:
        """Keep the row and add it to the totals."""
        self.entries.append(entry)
        self._requests += 1
        cost = entry.cost_usd or Decimal(0)
        self._cost += cost
        if entry.route == "batch" and entry.sync_cost_usd is not None:
            self._savings += entry.sync_cost_usd - cost
        elif entry.route == "batch_superseded":
            self._wasted += cost

    def totals(self) -> CostTotals:
        """The running sums (over every row ever recorded, not only those still in the ring)."""
        return CostTotals(
            requests=self._requests,
            cost_usd=self._cost,
            batch_savings_usd=self._savings,
            wasted_usd=self._wasted,
        )
