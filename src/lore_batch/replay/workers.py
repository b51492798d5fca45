"""The workers' side of a replay: their calls from the batch client's request log, priced and summed."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Final, get_args

from lore_batch.client import BatchClientStats
from lore_batch.costlog import MemoryCostLog, RequestLogEntry
from lore_batch.pricing import PriceRow, PricingCatalog
from lore_batch.replay.report import RouteTotals, WorkerTotals
from lore_batch.replay.simulate import WorkerCall, WorkerRoute, price_worker_calls
from lore_core.errors import ConfigError
from lore_core.llm import Usage

__all__ = ["worker_calls", "worker_totals"]

_ROUTES: Final = get_args(WorkerRoute)
_ALWAYS: Final = (
    "sync",
    "batch",
    "fallback",
)  # shown even without calls; batch_superseded only when it happened


def worker_calls(entries: Iterable[RequestLogEntry]) -> list[WorkerCall]:
    """The request log's rows as :class:`WorkerCall` values (every route the log knows)."""
    calls: list[WorkerCall] = []
    for entry in entries:
        route = entry.route if entry.route in _ROUTES else "sync"
        calls.append(
            WorkerCall(
                at=entry.ts,
                model=entry.model,
                worker=entry.worker,
                route=route,
                usage=Usage(
                    input_tokens=entry.input_tokens,
                    output_tokens=entry.output_tokens,
                    cache_read_tokens=entry.cache_read_tokens,
                    cache_write_5m_tokens=entry.cache_write_5m_tokens,
                    cache_write_1h_tokens=entry.cache_write_1h_tokens,
                ),
            )
        )
    return calls


def worker_totals(log: MemoryCostLog, *, stats: BatchClientStats, catalog: PricingCatalog) -> WorkerTotals:
    """Sum the log by route (``sync``, ``batch`` and ``fallback`` always, ``batch_superseded`` when it
    occurred) and by worker; each call priced by :func:`price_worker_calls`.

    Raises:
        ConfigError: a call's model is not in the catalog.
    """

    def prices(model: str, at: datetime) -> PriceRow:
        row = catalog.price("anthropic", model, at)
        if row is None:
            raise ConfigError(f"model {model!r} is not in the price catalog")
        return row

    entries = list(log.entries)
    priced = price_worker_calls(worker_calls(entries), prices=prices)
    routes: dict[str, list[Decimal]] = {route: [Decimal(0), Decimal(0), Decimal(0)] for route in _ALWAYS}
    by_worker: dict[str, int] = {}
    for item in priced:
        totals = routes.setdefault(item.call.route, [Decimal(0), Decimal(0), Decimal(0)])
        totals[0] += 1
        totals[1] += item.cost_usd
        totals[2] += item.sync_cost_usd
        name = item.call.worker or "(none)"
        by_worker[name] = by_worker.get(name, 0) + 1
    cost = sum((item.cost_usd for item in priced), Decimal(0))
    sync = sum((item.sync_cost_usd for item in priced), Decimal(0))
    return WorkerTotals(
        routes=tuple(
            RouteTotals(route=route, calls=int(values[0]), cost_usd=values[1], sync_cost_usd=values[2])
            for route, values in sorted(routes.items(), key=lambda pair: _ROUTES.index(pair[0]))
        ),
        by_worker=dict(sorted(by_worker.items())),
        cost_usd=cost,
        sync_cost_usd=sync,
        batch_savings_usd=sum(
            (item.sync_cost_usd - item.cost_usd for item in priced if item.call.route == "batch"), Decimal(0)
        ),
        logged_cost_usd=sum((entry.cost_usd or Decimal(0) for entry in entries), Decimal(0)),
        batches_submitted=stats.batches_submitted,
    )
