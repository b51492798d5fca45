"""Request-log segments for the advisor: requests summed per (provider, model, tag, price row, length band).

:func:`~lore_batch.advisor.advise` wants one :class:`~lore_batch.advisor.RequestAggregate` per segment, each
with a single price. :class:`SegmentBuilder` sums requests into them, pricing each request's row from the
catalog at its time and prompt size; a request without a cost is priced at sync prices there (and counts 0
when the model is unpriced). The requests come from an import file (:func:`read_import`: JSON Lines or CSV
with the columns ``ts, provider, model, tag, input_tokens, output_tokens, cache_read_tokens,
cache_write_tokens, cost_usd``) or from the ``lore_batch_request_log`` table (:func:`read_request_log`, one
GROUP BY per logged model, bucketed by the catalog's price dates and band thresholds).

Example::

    builder = SegmentBuilder(PricingCatalog.default())
    for request in read_import(Path("requests.jsonl"), since=None, until=None):
        builder.add(request)
    aggs = builder.aggregates()
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final

from sqlalchemy import BigInteger, ColumnElement, Select, case, func, literal_column, select
from sqlalchemy import cast as sql_cast
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from lore_batch.advisor import RequestAggregate
from lore_batch.pricing import PriceRow, PricingCatalog
from lore_core.errors import ConfigError, StoreError
from lore_core.llm import Usage
from lore_core.store.engine import READ_ONLY_OPTION
from lore_core.store.models import RequestLog

__all__ = ["IMPORT_COLUMNS", "LoggedRequests", "SegmentBuilder", "read_import", "read_request_log"]

IMPORT_COLUMNS: Final = (
    "ts",
    "provider",
    "model",
    "tag",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_usd",
)
_TOKEN_COLUMNS: Final = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
_NANO: Final = 10**9


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggedRequests:
    """One logged request, or several that share provider, model, tag, price row and band (summed).

    ``ts`` and ``prompt_tokens`` are those of one of the requests: they select its price row and band.
    ``first_ts`` is the earliest request's time (``None``: ``ts``). ``cost_usd`` is ``None`` when the log has
    no cost (it is then priced from the catalog at sync prices).
    """

    ts: datetime
    provider: str
    model: str
    tag: str | None
    usage: Usage
    cost_usd: Decimal | None
    prompt_tokens: int
    request_count: int = 1
    first_ts: datetime | None = None


class _Segment:
    __slots__ = (
        "as_of",
        "cache_read",
        "cache_write",
        "cost",
        "first",
        "input",
        "output",
        "prompt",
        "requests",
    )

    def __init__(self, first: LoggedRequests) -> None:
        self.as_of, self.prompt = first.ts, first.prompt_tokens
        self.first = first.first_ts or first.ts
        self.input = self.output = self.cache_read = self.cache_write = self.requests = 0
        self.cost = Decimal(0)


class SegmentBuilder:
    """Sums :class:`LoggedRequests` into advisor segments, one per (provider, model, tag, price row).

    Example::

        builder = SegmentBuilder(catalog)
        builder.add(LoggedRequests(ts=now, provider="openai", model="gpt-4.1", tag="bulk", usage=Usage(
            input_tokens=1000), cost_usd=None, prompt_tokens=1000))
        builder.aggregates()[0].cost_usd   # Decimal('0.002')
    """

    def __init__(self, catalog: PricingCatalog) -> None:
        self._catalog = catalog
        self._segments: dict[tuple[str, str, str | None, PriceRow | None], _Segment] = {}

    def add(self, requests: LoggedRequests) -> None:
        """Add ``requests`` to their segment, pricing them when they carry no cost."""
        row = self._catalog.price(
            requests.provider, requests.model, requests.ts, prompt_tokens=requests.prompt_tokens
        )
        cost = requests.cost_usd
        if cost is None:
            cost = row.cost(requests.usage, batch=False) if row is not None else Decimal(0)
        key = (requests.provider, requests.model, requests.tag, row)
        segment = self._segments.get(key)
        if segment is None:
            segment = self._segments[key] = _Segment(requests)
        segment.first = min(segment.first, requests.first_ts or requests.ts)
        usage = requests.usage
        segment.input += usage.input_tokens
        segment.output += usage.output_tokens
        segment.cache_read += usage.cache_read_tokens
        segment.cache_write += usage.cache_write_5m_tokens + usage.cache_write_1h_tokens
        segment.cost += cost
        segment.requests += requests.request_count

    def aggregates(self) -> list[RequestAggregate]:
        """The segments, sorted by their earliest request, then provider, model, tag, price date and band
        (so the advisor's "first spelling seen" of a tag is the one logged first, whatever the source)."""
        ordered = sorted(self._segments.items(), key=lambda item: (item[1].first, *_order(item[0])))
        return [
            RequestAggregate(
                provider,
                model,
                tag,
                s.input,
                s.output,
                s.cache_read,
                s.cache_write,
                s.cost,
                s.requests,
                as_of=s.as_of,
                prompt_tokens=s.prompt,
            )
            for (provider, model, tag, _row), s in ordered
        ]


def _order(key: tuple[str, str, str | None, PriceRow | None]) -> tuple[str, str, str, datetime, int]:
    provider, model, tag, row = key
    when = row.effective_at if row is not None else datetime.min.replace(tzinfo=UTC)
    return (provider, model, tag or "", when, (row.prompt_tokens_over or 0) if row is not None else 0)


def read_import(path: Path, *, since: datetime | None, until: datetime | None) -> Iterator[LoggedRequests]:
    """The requests of a ``.jsonl``/``.ndjson`` or ``.csv`` file with ``since <= ts < until``.

    ``ts`` is RFC 3339 (naive means UTC); ``provider``, ``model`` and ``ts`` are required; token columns
    default to 0; an empty ``tag`` is untagged; an empty or missing ``cost_usd`` is priced from the catalog.
    The one ``cache_write_tokens`` column is priced (when a cost is missing) at the 5-minute write price.

    Raises:
        ConfigError: the file cannot be read, has an unknown suffix, or a row is malformed (file and line).
    """
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".ndjson", ".csv"):
        raise ConfigError(f"{path}: unknown import format (use .jsonl or .csv)")
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            records = _csv_records(fh, path) if suffix == ".csv" else _jsonl_records(fh, path)
            for line, record in records:
                request = _request(record, f"{path}:{line}")
                if (since is None or request.ts >= since) and (until is None or request.ts < until):
                    yield request
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"cannot read {path}: {type(exc).__name__}") from exc


def _jsonl_records(lines: Iterator[str], path: Path) -> Iterator[tuple[int, Mapping[str, Any]]]:
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line, parse_float=Decimal)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}:{number}: not JSON") from exc
        if not isinstance(record, dict):
            raise ConfigError(f"{path}:{number}: not a JSON object")
        yield number, record


def _csv_records(lines: Iterator[str], path: Path) -> Iterator[tuple[int, Mapping[str, Any]]]:
    reader = csv.DictReader(lines)
    missing = {"ts", "provider", "model"} - set(reader.fieldnames or ())
    if missing:
        raise ConfigError(f"{path}:1: missing column(s) {sorted(missing)}")
    for record in reader:
        yield reader.line_num, record


def _request(record: Mapping[str, Any], where: str) -> LoggedRequests:
    ts = _timestamp(record.get("ts"), where)
    provider, model = record.get("provider"), record.get("model")
    if not isinstance(provider, str) or not isinstance(model, str) or not provider or not model:
        raise ConfigError(f"{where}: provider and model must be non-empty strings")
    tag = record.get("tag")
    if tag is not None and not isinstance(tag, str):
        raise ConfigError(f"{where}: tag must be a string")
    counts = {name: _count(record.get(name), name, where) for name in _TOKEN_COLUMNS}
    usage = Usage(
        input_tokens=counts["input_tokens"],
        output_tokens=counts["output_tokens"],
        cache_read_tokens=counts["cache_read_tokens"],
        cache_write_5m_tokens=counts["cache_write_tokens"],
    )
    return LoggedRequests(
        ts=ts,
        provider=provider,
        model=model,
        tag=tag or None,
        usage=usage,
        cost_usd=_money(record.get("cost_usd"), where),
        prompt_tokens=usage.total_input_tokens,
    )


def _timestamp(value: object, where: str) -> datetime:
    if isinstance(value, str) and value.strip():
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            pass
        else:
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    raise ConfigError(f"{where}: ts must be an RFC 3339 timestamp")


def _count(value: object, name: str, where: str) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if (
        isinstance(value, int | Decimal)
        and not isinstance(value, bool)
        and value >= 0
        and value == int(value)
    ):
        return int(value)
    raise ConfigError(f"{where}: {name} must be a non-negative integer")


def _money(value: object, where: str) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
            raise InvalidOperation
        result = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise ConfigError(f"{where}: cost_usd must be a number") from None
    if not result.is_finite() or result < 0:
        raise ConfigError(f"{where}: cost_usd must be a non-negative number")
    return result


async def read_request_log(
    engine: AsyncEngine, catalog: PricingCatalog, *, since: datetime | None, until: datetime | None
) -> list[LoggedRequests]:
    """The ``lore_batch_request_log`` rows with ``since <= ts < until``, summed in SQL per (provider, model,
    tag, price date bucket, band bucket, cost missing): few rows, one price each. Costs are summed in whole
    nano-dollars, exact on both backends. The schema must be at head already (nothing is migrated here).

    Raises:
        StoreError: a query failed.
    """
    table = RequestLog.__table__.c
    window: list[ColumnElement[bool]] = []
    if since is not None:
        window.append(table.ts >= since)
    if until is not None:
        window.append(table.ts < until)
    found: list[LoggedRequests] = []
    try:
        async with engine.connect() as connection:
            # one read transaction (deferred on SQLite: it never takes the write lock from the log's writers)
            await connection.execution_options(**{READ_ONLY_OPTION: True})
            models = (
                await connection.execute(select(table.provider, table.model).where(*window).distinct())
            ).all()
            for provider, model in sorted(models):
                history = catalog.history(provider, model)
                statement = _grouped(provider, model, history, window)
                for row in await connection.execute(statement):
                    found.append(_logged(provider, model, row._mapping))
    except SQLAlchemyError as exc:
        raise StoreError("read request log") from exc
    return found


def _grouped(
    provider: str, model: str, history: tuple[PriceRow, ...], window: list[ColumnElement[bool]]
) -> Select[Any]:
    """One model's rows grouped by tag, price-date bucket, band bucket and missing cost (a subquery names
    the buckets once, so PostgreSQL sees one GROUP BY expression per bucket)."""
    table = RequestLog.__table__.c
    prompt = (
        table.input_tokens
        + table.cache_read_tokens
        + table.cache_write_5m_tokens
        + table.cache_write_1h_tokens
    )
    dates = sorted({row.effective_at for row in history})[1:]
    bands = sorted({row.prompt_tokens_over for row in history if row.prompt_tokens_over is not None})
    inner = (
        select(
            table.tag,
            _bucket([table.ts >= when for when in dates]).label("date_bucket"),
            _bucket([prompt > band for band in bands]).label("band_bucket"),
            table.cost_usd.is_(None).label("no_cost"),
            table.ts,
            prompt.label("prompt"),
            table.input_tokens,
            table.output_tokens,
            table.cache_read_tokens,
            table.cache_write_5m_tokens,
            table.cache_write_1h_tokens,
            sql_cast(func.round(func.coalesce(table.cost_usd, 0) * _NANO), BigInteger).label("cost_nano"),
        )
        .where(table.provider == provider, table.model == model, *window)
        .subquery()
    )
    keys = (inner.c.tag, inner.c.date_bucket, inner.c.band_bucket, inner.c.no_cost)
    return select(
        *keys,
        func.count().label("requests"),
        func.max(inner.c.ts).label("ts"),
        func.min(inner.c.ts).label("first_ts"),
        func.max(inner.c.prompt).label("prompt"),
        *(
            func.sum(inner.c[name]).label(name)
            for name in (
                "input_tokens",
                "output_tokens",
                "cache_read_tokens",
                "cache_write_5m_tokens",
                "cache_write_1h_tokens",
                "cost_nano",
            )
        ),
    ).group_by(*keys)


def _bucket(conditions: list[ColumnElement[bool]]) -> ColumnElement[int]:
    """How many of ``conditions`` (thresholds in rising order) hold: the index of the bucket."""
    whens: list[tuple[ColumnElement[bool], ColumnElement[Any]]] = [
        (conditions[i], literal_column(str(i + 1))) for i in reversed(range(len(conditions)))
    ]
    return case(*whens, else_=literal_column("0")) if whens else literal_column("0")


def _logged(provider: str, model: str, row: Mapping[str, Any]) -> LoggedRequests:
    usage = Usage(
        input_tokens=int(row["input_tokens"] or 0),
        output_tokens=int(row["output_tokens"] or 0),
        cache_read_tokens=int(row["cache_read_tokens"] or 0),
        cache_write_5m_tokens=int(row["cache_write_5m_tokens"] or 0),
        cache_write_1h_tokens=int(row["cache_write_1h_tokens"] or 0),
    )
    return LoggedRequests(
        ts=_aware(row["ts"]),
        first_ts=_aware(row["first_ts"]),
        provider=provider,
        model=model,
        tag=row["tag"] or None,
        usage=usage,
        cost_usd=None if row["no_cost"] else Decimal(int(row["cost_nano"] or 0)).scaleb(-9),
        prompt_tokens=int(row["prompt"] or 0),
        request_count=int(row["requests"]),
    )


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
