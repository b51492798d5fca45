"""``SqlCostLog`` on a real SQLite file and a real PostgreSQL database: exact Decimals, the totals by hand,
time windows, errors and lifecycle."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from lore_batch.costlog import CostLog, CostTotals, MemoryCostLog, RequestLogEntry, SqlCostLog
from lore_core.errors import ClosedError, StoreError
from lore_core.store import create_engine
from lore_core.store.models import RequestLog

T0 = datetime(2026, 12, 1, 9, 30, 15, 123456, tzinfo=UTC)


def entry(number: int, **changes: Any) -> RequestLogEntry:
    values: dict[str, Any] = {
        "id": f"01JREQ{number:020d}",
        "ts": T0 + timedelta(seconds=number),
        "provider": "anthropic",
        "model": "claude-sonnet-4-6",
        "route": "sync",
        "status": "ok",
    }
    return RequestLogEntry(**(values | changes))


FULL = entry(
    1,
    route="batch",
    tag="background",
    worker="distill",
    session_id="session-without-engine-row",
    credential_fp="0123456789abcdef",
    input_tokens=1_234,
    output_tokens=567,
    cache_read_tokens=89,
    cache_write_5m_tokens=10,
    cache_write_1h_tokens=11,
    cost_usd=Decimal("123456.123456789"),
    sync_cost_usd=Decimal("246912.246913578"),
    price_effective_at=datetime(2026, 1, 1, tzinfo=UTC),
    latency_ms=61_500,
    batch_id="msgbatch_01",
    custom_id="c-0001",
)
TINY = entry(2, route="fallback", cost_usd=Decimal("0.000000001"), sync_cost_usd=Decimal("0.000000001"))
UNPRICED = entry(3, model="unknown-model", status="error")


def test_entry_fields_are_the_table_columns() -> None:
    assert {c.name for c in RequestLog.__table__.c} == {f.name for f in dataclasses.fields(RequestLogEntry)}


async def test_record_then_rows_round_trip_exactly_newest_first(migrated_url: str) -> None:
    async with SqlCostLog(migrated_url) as log:
        assert isinstance(log, CostLog)
        for row in (FULL, TINY, UNPRICED):
            await log.record(row)
        got = await log.rows()
    assert got == [UNPRICED, TINY, FULL]
    stored = got[2]
    assert stored.cost_usd == Decimal("123456.123456789")
    assert stored.sync_cost_usd == Decimal("246912.246913578")
    assert got[1].cost_usd == Decimal("0.000000001")
    assert got[0].cost_usd is None
    assert got[0].sync_cost_usd is None
    assert stored.ts.tzinfo is not None
    assert stored.ts.utcoffset() == timedelta(0)


async def test_query_totals_match_the_arithmetic_done_by_hand(migrated_url: str) -> None:
    rows = [
        entry(1, route="sync", cost_usd=Decimal("0.003"), sync_cost_usd=Decimal("0.003")),
        entry(2, route="batch", cost_usd=Decimal("0.0015"), sync_cost_usd=Decimal("0.003")),
        entry(3, route="batch", cost_usd=Decimal("0.000000001"), sync_cost_usd=Decimal("0.000000002")),
        entry(4, route="batch", status="errored", cost_usd=Decimal(0), sync_cost_usd=Decimal(0)),
        # A batch row without a batch price: no cost, so no savings either.
        entry(5, route="batch", cost_usd=None, sync_cost_usd=Decimal("0.01")),
        entry(6, route="batch_superseded", cost_usd=Decimal("0.0025"), sync_cost_usd=Decimal("0.005")),
        entry(7, route="batch_superseded", cost_usd=Decimal("0.1"), sync_cost_usd=Decimal("0.2")),
        entry(8, route="fallback", cost_usd=Decimal("0.2"), sync_cost_usd=Decimal("0.2")),
        entry(9, route="sync", cost_usd=None, sync_cost_usd=None),
    ]
    expected = CostTotals(
        requests=9,
        # 0.003 + 0.0015 + 0.000000001 + 0 + 0 + 0.0025 + 0.1 + 0.2 + 0
        cost_usd=Decimal("0.307000001"),
        # (0.003 - 0.0015) + (0.000000002 - 0.000000001) + (0 - 0)
        batch_savings_usd=Decimal("0.001500001"),
        # 0.0025 + 0.1
        wasted_usd=Decimal("0.1025"),
    )
    memory = MemoryCostLog()
    async with SqlCostLog(migrated_url) as log:
        assert await log.query_totals() == CostTotals(
            requests=0, cost_usd=Decimal(0), batch_savings_usd=Decimal(0), wasted_usd=Decimal(0)
        )
        for row in rows:
            await log.record(row)
            await memory.record(row)
        assert await log.query_totals() == expected
        assert log.totals() == expected
        assert memory.totals() == expected

    # A second instance sees every row in the table, but its running totals start at zero.
    async with SqlCostLog(migrated_url) as other:
        assert await other.query_totals() == expected
        assert other.totals().requests == 0


async def test_time_windows_are_since_inclusive_until_exclusive(migrated_url: str) -> None:
    hour = timedelta(hours=1)
    rows = [
        entry(n, ts=T0 + n * hour, route="batch", cost_usd=Decimal(n), sync_cost_usd=Decimal(2 * n))
        for n in range(3)
    ]
    async with SqlCostLog(migrated_url) as log:
        for row in rows:
            await log.record(row)
        assert await log.rows(since=T0 + hour) == [rows[2], rows[1]]
        assert await log.rows(until=T0 + hour) == [rows[0]]
        assert await log.rows(since=T0 + hour, until=T0 + 2 * hour) == [rows[1]]
        assert await log.rows(limit=2) == [rows[2], rows[1]]
        # Any aware timezone names the same instant.
        plus_two = timezone(timedelta(hours=2))
        assert await log.rows(since=(T0 + 2 * hour).astimezone(plus_two)) == [rows[2]]

        totals = await log.query_totals(since=T0 + hour)
        assert (totals.requests, totals.cost_usd, totals.batch_savings_usd) == (2, Decimal(3), Decimal(3))
        totals = await log.query_totals(until=T0 + hour)
        assert (totals.requests, totals.cost_usd) == (1, Decimal(0))
        assert (await log.query_totals(since=T0 + 3 * hour)).requests == 0
        with pytest.raises(ValueError, match="limit"):
            await log.rows(limit=0)


async def test_failures_are_store_errors_and_leave_the_totals_alone(migrated_url: str) -> None:
    async with SqlCostLog(migrated_url) as log:
        await log.record(TINY)
        with pytest.raises(StoreError) as duplicate:
            await log.record(TINY)
        assert duplicate.value.retryable is False
        assert isinstance(duplicate.value.__cause__, IntegrityError)
        with pytest.raises(StoreError):
            await log.record(entry(5, ts=datetime(2026, 12, 1)))  # naive: no defined instant
        assert log.totals().requests == 1
        assert len(await log.rows()) == 1


async def test_an_unmigrated_database_is_a_store_error(store_url: str) -> None:
    async with SqlCostLog(store_url) as log:
        with pytest.raises(StoreError):
            await log.rows()


async def test_open_migrates_and_close_refuses_further_use(store_url: str) -> None:
    log = await SqlCostLog.open(store_url)
    await log.record(TINY)
    await log.aclose()
    await log.aclose()
    with pytest.raises(ClosedError):
        await log.record(FULL)
    with pytest.raises(ClosedError):
        await log.query_totals()


async def test_a_shared_engine_is_not_disposed(migrated_url: str) -> None:
    engine = create_engine(migrated_url)
    try:
        async with SqlCostLog(engine) as log:
            await log.record(FULL)
        async with SqlCostLog(engine) as again:
            assert await again.rows() == [FULL]
    finally:
        await engine.dispose()
