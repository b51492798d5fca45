"""Request-log rows for everything the engine and its facade send (BATCH.md 8).

Every call that reaches a provider gets a row with the route that actually answered: ``sync`` (inner, by
choice), ``batch`` (a result line, at batch prices, with the would-be sync cost beside it), ``fallback``, or
``batch_superseded`` (paid for, not delivered). Errored, expired and canceled batch items are logged at cost 0.
Non-urgent calls are tagged ``background``. Rows carry ids, never prompt text or secrets.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal

from anthropic.types import Message

from lore_batch.clock import Clock
from lore_batch.costlog import CostLog, LogRoute, LogStatus, RequestLogEntry
from lore_batch.pricing import PricingCatalog
from lore_batch.usage import usage_from_api
from lore_core.llm import Usage

from .items import Item, new_ulid

__all__ = ["BACKGROUND_TAG", "PROVIDER", "Ledger"]

logger = logging.getLogger(__name__)

BACKGROUND_TAG = "background"
PROVIDER = "anthropic"


class Ledger:
    """Prices rows and writes them to a :class:`~lore_batch.costlog.CostLog`; keeps the batch spend."""

    def __init__(self, cost_log: CostLog, *, catalog: PricingCatalog, clock: Clock) -> None:
        self.cost_log = cost_log
        self.catalog = catalog
        self.clock = clock
        self.batch_cost = Decimal(0)

    def entry(
        self,
        *,
        route: LogRoute,
        status: LogStatus,
        model: str,
        usage: Usage | None,
        tag: str | None,
        worker: str | None,
        session_id: str | None,
        credential_fp: str | None,
        latency_ms: int | None,
        batch_id: str | None = None,
        custom_id: str | None = None,
    ) -> RequestLogEntry:
        """One priced row; ``usage=None`` logs a call that produced nothing billable (cost 0). Adds batch
        spend to :attr:`batch_cost`."""
        now = self.clock.now()
        ts = datetime.fromtimestamp(now, tz=UTC)
        cost: Decimal | None = Decimal(0)
        sync_cost: Decimal | None = Decimal(0)
        effective_at = None
        if usage is not None:
            row = self.catalog.price(PROVIDER, model, ts, prompt_tokens=usage.total_input_tokens)
            cost = sync_cost = None
            if row is not None:
                effective_at = row.effective_at
                sync_cost = row.cost(usage, batch=False)
                if route in ("batch", "batch_superseded"):
                    cost = row.cost(usage, batch=True) if row.has_batch_prices else None
                else:
                    cost = sync_cost
        if route == "batch" and cost is not None:
            self.batch_cost += cost
        usage = usage or Usage()
        return RequestLogEntry(
            id=new_ulid(now),
            ts=ts,
            provider=PROVIDER,
            model=model,
            route=route,
            status=status,
            tag=tag,
            worker=worker,
            session_id=session_id,
            credential_fp=credential_fp,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_5m_tokens=usage.cache_write_5m_tokens,
            cache_write_1h_tokens=usage.cache_write_1h_tokens,
            cost_usd=cost,
            sync_cost_usd=sync_cost,
            price_effective_at=effective_at,
            latency_ms=latency_ms,
            batch_id=batch_id,
            custom_id=custom_id,
        )

    async def write(self, entries: list[RequestLogEntry]) -> None:
        """Write rows (in one write when the log offers ``record_many``); a failure is logged, never raised."""
        if not entries:
            return
        try:
            record_many = getattr(self.cost_log, "record_many", None)
            if callable(record_many) and len(entries) > 1:
                await record_many(entries)
            else:
                for entry in entries:
                    await self.cost_log.record(entry)
        except Exception:
            logger.exception(
                "request log write failed: %d row(s), route=%s batch_id=%s",
                len(entries),
                entries[0].route,
                entries[0].batch_id,
            )

    async def record_item(
        self,
        item: Item,
        *,
        route: LogRoute,
        status: LogStatus,
        message: Message | None,
        batch_id: str | None,
        custom_id: str | None,
        usage: Usage | None = None,
        model: str | None = None,
    ) -> None:
        """A row for a queued item; with ``message`` its usage (1-hour cache writes: what items ask for)."""
        if message is not None:
            usage = usage_from_api(message.usage, default_write_ttl="1h")
            model = message.model
        entry = self.entry(
            route=route,
            status=status,
            model=model or item.model,
            usage=usage,
            tag=item.tag,
            worker=item.worker,
            session_id=item.session_id,
            credential_fp=item.group.credential_fp,
            latency_ms=int((self.clock.monotonic() - item.enqueued_at) * 1000),
            batch_id=batch_id,
            custom_id=custom_id,
        )
        await self.write([entry])
