"""Model prices, from the shipped append-only catalog ``lore_batch/data/pricing.toml``.

A catalog is a list of :class:`PriceRow`; :meth:`PricingCatalog.price` picks the row for a model at a
moment and :meth:`PriceRow.cost` prices a usage in USD. Everything is :class:`~decimal.Decimal`: prices are
USD per million tokens, exactly as written in the TOML file (``tomllib`` is told ``parse_float=Decimal``).

::

    catalog = PricingCatalog.default()
    row = catalog.price("anthropic", "claude-sonnet-4-5-20250929")
    row.cost(Usage(input_tokens=1000, output_tokens=200), batch=True)   # Decimal('0.003')
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from lore_batch.usage import usage_from_api
from lore_core.errors import ConfigError

__all__ = ["PriceRow", "PricingCatalog"]

_PER_TOKENS = Decimal(1_000_000)
_SYNC_COLUMNS = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")
_BATCH_COLUMNS = tuple(f"batch_{name}" for name in _SYNC_COLUMNS)
_KEYS = frozenset({"provider", "model", "effective_at", *_SYNC_COLUMNS, *_BATCH_COLUMNS})


@dataclass(frozen=True, slots=True, kw_only=True)
class PriceRow:
    """One catalog row: a model's prices (USD per million tokens) from ``effective_at`` on.

    Batch columns are ``None`` when the catalog gives no batch price for the row.
    """

    provider: str
    model: str
    effective_at: datetime
    input: Decimal
    output: Decimal
    cache_write_5m: Decimal
    cache_write_1h: Decimal
    cache_read: Decimal
    batch_input: Decimal | None = None
    batch_output: Decimal | None = None
    batch_cache_write_5m: Decimal | None = None
    batch_cache_write_1h: Decimal | None = None
    batch_cache_read: Decimal | None = None

    @property
    def has_batch_prices(self) -> bool:
        """Whether every batch column is present."""
        return all(getattr(self, name) is not None for name in _BATCH_COLUMNS)

    def cost(self, usage: object, *, batch: bool) -> Decimal:
        """Price ``usage`` in USD: Σ tokens × rate / 1e6 over the five token kinds.

        ``usage`` is a :class:`Usage`, an API usage mapping or the SDK's ``Usage`` (see
        :meth:`usage_from_api`). ``batch=True`` uses the ``batch_*`` columns.

        Raises:
            ConfigError: ``batch=True`` but this row has no batch price.
        """
        tokens = usage_from_api(usage)
        names = _BATCH_COLUMNS if batch else _SYNC_COLUMNS
        rates: list[Decimal] = []
        for name in names:
            rate = getattr(self, name)
            if rate is None:
                raise ConfigError(f"no {name} price for {self.provider}/{self.model}")
            rates.append(rate)
        counts = (
            tokens.input_tokens,
            tokens.output_tokens,
            tokens.cache_write_5m_tokens,
            tokens.cache_write_1h_tokens,
            tokens.cache_read_tokens,
        )
        return (
            sum((Decimal(n) * rate for n, rate in zip(counts, rates, strict=True)), Decimal(0)) / _PER_TOKENS
        )


class PricingCatalog:
    """An immutable set of :class:`PriceRow`, looked up by provider, model and time."""

    __slots__ = ("_rows",)

    def __init__(self, rows: Iterable[PriceRow]) -> None:
        self._rows: tuple[PriceRow, ...] = tuple(
            sorted(rows, key=lambda r: (r.provider, r.model, r.effective_at))
        )

    @classmethod
    def default(cls) -> PricingCatalog:
        """The catalog shipped with lore-memory (loaded once, then shared).

        Raises:
            ConfigError: the shipped file is malformed.
        """
        return _default_catalog()

    @classmethod
    def from_path(cls, path: str | Path) -> PricingCatalog:
        """Load a catalog from a TOML file with ``[[price]]`` rows.

        Raises:
            ConfigError: the file is missing, not TOML, or a row is malformed.
        """
        try:
            with Path(path).open("rb") as fh:
                data = tomllib.load(fh, parse_float=Decimal)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read price catalog {path}") from exc
        return cls.from_mapping(data)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> PricingCatalog:
        """Build from parsed TOML (``{"price": [row, ...]}``).

        Raises:
            ConfigError: a row lacks a field, has an unknown one, or a value has the wrong type.
        """
        raw_rows = data.get("price", [])
        if not isinstance(raw_rows, list):
            raise ConfigError("price catalog: `price` must be an array of tables")
        return cls(_parse_row(index, raw) for index, raw in enumerate(raw_rows))

    @property
    def rows(self) -> tuple[PriceRow, ...]:
        """Every row, sorted by provider, model and effective_at."""
        return self._rows

    def max_effective_at(self) -> datetime | None:
        """The newest ``effective_at`` in the catalog (the staleness signal); ``None`` when empty."""
        return max((row.effective_at for row in self._rows), default=None)

    def price(self, provider: str, model: str, at: datetime | None = None) -> PriceRow | None:
        """The row pricing ``model`` at ``at``, or ``None`` when no catalog model matches.

        A ``provider/`` prefix on ``model`` is stripped. The catalog model chosen is the longest one equal to
        ``model`` or a prefix of it ending at a ``-`` boundary; of its rows, the newest with
        ``effective_at <= at`` (``at=None`` means the latest; before the first row, the earliest).

        Raises:
            ConfigError: ``at`` is a naive datetime.
        """
        if at is not None and at.tzinfo is None:
            raise ConfigError("price lookup time must be timezone-aware")
        bare = model.split("/", 1)[1] if "/" in model else model
        candidates = [
            row for row in self._rows if row.provider == provider and _model_matches(row.model, bare)
        ]
        if not candidates:
            return None
        best = max(len(row.model) for row in candidates)
        history = [row for row in candidates if len(row.model) == best]  # sorted by effective_at
        if at is None:
            return history[-1]
        eligible = [row for row in history if row.effective_at <= at]
        return eligible[-1] if eligible else history[0]


def _model_matches(catalog_model: str, model: str) -> bool:
    return model == catalog_model or model.startswith(catalog_model + "-")


def _parse_row(index: int, raw: object) -> PriceRow:
    where = f"price catalog row {index}"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: not a table")
    unknown = set(raw) - _KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)}")
    provider, model = raw.get("provider"), raw.get("model")
    if not isinstance(provider, str) or not isinstance(model, str) or not provider or not model:
        raise ConfigError(f"{where}: provider and model must be non-empty strings")
    prices = {name: _required_decimal(where, name, raw.get(name)) for name in _SYNC_COLUMNS}
    batch = {name: _optional_decimal(where, name, raw.get(name)) for name in _BATCH_COLUMNS}
    return PriceRow(
        provider=provider,
        model=model,
        effective_at=_timestamp(where, raw.get("effective_at")),
        input=prices["input"],
        output=prices["output"],
        cache_write_5m=prices["cache_write_5m"],
        cache_write_1h=prices["cache_write_1h"],
        cache_read=prices["cache_read"],
        batch_input=batch["batch_input"],
        batch_output=batch["batch_output"],
        batch_cache_write_5m=batch["batch_cache_write_5m"],
        batch_cache_write_1h=batch["batch_cache_write_1h"],
        batch_cache_read=batch["batch_cache_read"],
    )


def _required_decimal(where: str, name: str, value: object) -> Decimal:
    result = _optional_decimal(where, name, value)
    if result is None:
        raise ConfigError(f"{where}: missing {name}")
    return result


def _optional_decimal(where: str, name: str, value: object) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise ConfigError(f"{where}: {name} must be a number")
    result = Decimal(value)
    if result < 0:
        raise ConfigError(f"{where}: {name} must not be negative")
    return result


def _timestamp(where: str, value: object) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ConfigError(f"{where}: effective_at is not RFC 3339") from exc
    else:
        raise ConfigError(f"{where}: effective_at must be an RFC 3339 timestamp")
    if parsed.tzinfo is None:
        raise ConfigError(f"{where}: effective_at needs a UTC offset")
    return parsed.astimezone(UTC)


@cache
def _default_catalog() -> PricingCatalog:
    source = resources.files("lore_batch").joinpath("data/pricing.toml")
    try:
        with source.open("rb") as fh:
            data = tomllib.load(fh, parse_float=Decimal)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError("cannot read the shipped price catalog") from exc
    return PricingCatalog.from_mapping(data)
