"""The request log: one row per call that reaches a provider, whatever the route (BATCH.md section 8).

:class:`RequestLogEntry` is the row; :class:`CostLog` is the port the facades write to. By default the rows go
to :class:`MemoryCostLog`, a ring of the newest 10,000; :class:`SqlCostLog` keeps them in the store's
``lore_batch_request_log`` table. Savings are ``sum(sync_cost_usd - cost_usd)`` over route ``batch`` (rows
with both costs); wasted spend is ``sum(cost_usd)`` over ``batch_superseded`` (paid for, not delivered).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, Literal, Protocol, runtime_checkable

from sqlalchemy import BigInteger, ColumnElement, func, insert, select
from sqlalchemy import cast as sql_cast
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from lore_core.store.models import RequestLog
from lore_core.store.transactions import SqlStoreBase

__all__ = [
    "CostLog",
    "CostTotals",
    "LogRoute",
    "LogStatus",
    "MemoryCostLog",
    "RequestLogEntry",
    "SqlCostLog",
]

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
    """Where the facades write their request-log rows. A log may also offer
    ``async record_many(entries)`` (one write for many rows); the engines use it when present."""

    async def record(self, entry: RequestLogEntry) -> None: ...

    def totals(self) -> CostTotals: ...


class _RunningTotals:
    """The sums both logs keep in memory, with the same rules as the SQL in :meth:`SqlCostLog.query_totals`."""

    def __init__(self) -> None:
        self.requests = 0
        self.cost = Decimal(0)
        self.savings = Decimal(0)
        self.wasted = Decimal(0)

    def add(self, entry: RequestLogEntry) -> None:
        self.requests += 1
        cost = entry.cost_usd or Decimal(0)
        self.cost += cost
        if entry.route == "batch" and entry.sync_cost_usd is not None and entry.cost_usd is not None:
            self.savings += entry.sync_cost_usd - entry.cost_usd
        elif entry.route == "batch_superseded":
            self.wasted += cost

    def snapshot(self) -> CostTotals:
        return CostTotals(
            requests=self.requests, cost_usd=self.cost, batch_savings_usd=self.savings, wasted_usd=self.wasted
        )


class MemoryCostLog:
    """The request log without a store: a ring of the newest ``maxlen`` rows, plus running totals of all."""

    def __init__(self, *, maxlen: int = MEMORY_LOG_ROWS) -> None:
        self.entries: deque[RequestLogEntry] = deque(maxlen=maxlen)
        self._totals = _RunningTotals()

    async def record(self, entry: RequestLogEntry) -> None:
        """Keep the row and add it to the totals."""
        self.entries.append(entry)
        self._totals.add(entry)

    async def record_many(self, entries: Sequence[RequestLogEntry]) -> None:
        """Keep the rows and add them to the totals."""
        for entry in entries:
            await self.record(entry)

    def totals(self) -> CostTotals:
        """The running sums (over every row ever recorded, not only those still in the ring)."""
        return self._totals.snapshot()


# Sums run over whole nano-dollars (BIGINT), so they are exact on SQLite too, where NUMERIC values are REAL.
_NANO: Final = 10**9


def _nano(column: ColumnElement[Decimal | None]) -> ColumnElement[int]:
    return sql_cast(func.round(column * _NANO), BigInteger)


def _usd(nano: int | Decimal | None) -> Decimal:
    """A nano-dollar sum (``int`` on SQLite, ``Decimal`` on PostgreSQL, ``None`` over no rows) in USD."""
    return Decimal(int(nano or 0)).scaleb(-9)


# The entry's fields are the table's columns, one for one (a test holds them equal).
_COLUMNS: Final = tuple(field.name for field in fields(RequestLogEntry))


def _entry(row: Row[Any]) -> RequestLogEntry:
    """The one place a table row becomes a :class:`RequestLogEntry` (``route``/``status`` are CHECKed)."""
    return RequestLogEntry(**{name: row._mapping[name] for name in _COLUMNS})


def _values(entry: RequestLogEntry) -> dict[str, object]:
    return {name: getattr(entry, name) for name in _COLUMNS}


class SqlCostLog(SqlStoreBase):
    """The request log in the store's ``lore_batch_request_log`` table (SQLite or PostgreSQL).

    ``engine`` is an :class:`AsyncEngine` (shared, never disposed here) or a URL / ``None`` (``LORE_DB_URL``);
    an engine made from a URL is disposed by :meth:`aclose`. The constructor does no I/O and never migrates:
    use :meth:`open` (``upgrade head`` first) or ``lore db upgrade``. Costs round-trip exactly (``Numeric(18,
    9)``; on SQLite, exact up to 15 significant digits: any cost under a million dollars). Every database
    failure is a :class:`~lore_core.errors.StoreError` raised from its cause; use after close raises
    :class:`~lore_core.errors.ClosedError`.

    Raises:
        ConfigError: (constructor) a bad URL.

    Example::

        async with await SqlCostLog.open("sqlite+aiosqlite:///lore.db") as log:
            async with BatchLLMClient(inner, anthropic.AsyncAnthropic(), cost_log=log) as llm:
                ...
            print((await log.query_totals()).batch_savings_usd)
    """

    def __init__(self, engine: AsyncEngine | str | None = None) -> None:
        super().__init__(engine)
        self._totals = _RunningTotals()

    async def record(self, entry: RequestLogEntry) -> None:
        """Insert ``entry`` as one row (one transaction), then add it to :meth:`totals`.

        Raises:
            StoreError: the insert failed (a duplicate id or a naive ``ts`` is not retryable).
        """
        async with self._write("record request") as connection:
            await connection.execute(insert(RequestLog).values(_values(entry)))
        self._totals.add(entry)

    async def record_many(self, entries: Sequence[RequestLogEntry]) -> None:
        """Insert ``entries`` in one transaction, then add them to :meth:`totals`.

        Raises:
            StoreError: the insert failed (nothing was written).
        """
        if not entries:
            return
        async with self._write("record requests") as connection:
            await connection.execute(insert(RequestLog), [_values(entry) for entry in entries])
        for entry in entries:
            self._totals.add(entry)

    def totals(self) -> CostTotals:
        """Running sums over the rows recorded through this instance (no I/O); see :meth:`query_totals`."""
        return self._totals.snapshot()

    async def query_totals(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> CostTotals:
        """Sums over every row in the table with ``since <= ts < until`` (either bound optional).

        Raises:
            StoreError: the query failed.
        """
        table = RequestLog.__table__.c
        cost = _nano(func.coalesce(table.cost_usd, 0))
        statement = select(
            func.count(),
            func.sum(cost),
            func.sum(_nano(table.sync_cost_usd) - _nano(table.cost_usd)).filter(table.route == "batch"),
            func.sum(cost).filter(table.route == "batch_superseded"),
        ).where(*_window(since, until))
        async with self._read("query request totals") as connection:
            requests, spent, saved, wasted = (await connection.execute(statement)).one()
        return CostTotals(
            requests=int(requests),
            cost_usd=_usd(spent),
            batch_savings_usd=_usd(saved),
            wasted_usd=_usd(wasted),
        )

    async def rows(
        self, *, since: datetime | None = None, until: datetime | None = None, limit: int = 1000
    ) -> list[RequestLogEntry]:
        """Up to ``limit`` rows with ``since <= ts < until``, newest first (``ts``, then ``id``).

        Raises:
            ValueError: ``limit`` is below 1.
            StoreError: the query failed.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        statement = (
            select(RequestLog.__table__)
            .where(*_window(since, until))
            .order_by(RequestLog.ts.desc(), RequestLog.id.desc())
            .limit(limit)
        )
        async with self._read("list request log") as connection:
            result = await connection.execute(statement)
            return [_entry(row) for row in result]

    def __repr__(self) -> str:
        return f"SqlCostLog(requests={self._totals.requests})"


def _window(since: datetime | None, until: datetime | None) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if since is not None:
        clauses.append(RequestLog.ts >= since)
    if until is not None:
        clauses.append(RequestLog.ts < until)
    return clauses
