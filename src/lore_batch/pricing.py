"""Model prices, from the shipped append-only catalog ``lore_batch/data/pricing.toml``.

A catalog is a list of :class:`PriceRow`; :meth:`PricingCatalog.price` picks the row for a model at a
moment (and, for models priced by prompt length, for a prompt size) and :meth:`PriceRow.cost` prices a usage
in USD. Everything is :class:`~decimal.Decimal`: prices are USD per million tokens, exactly as written in the
TOML file (``tomllib`` is told ``parse_float=Decimal``).

The file is append-only history: a price change is a new row with a later ``effective_at``. A row with
``prompt_tokens_over = N`` is a length band: it prices prompts of more than ``N`` tokens, where the prompt size
is input + cache read + cache write tokens (:attr:`lore_core.llm.Usage.total_input_tokens`). Batch columns
are explicit data; a missing one means "no batch price" and is never derived.

::

    catalog = PricingCatalog.default()
    row = catalog.price("anthropic", "claude-sonnet-4-5-20250929")
    row.cost(Usage(input_tokens=1000, output_tokens=200), batch=True)   # Decimal('0.003')
    catalog.price("google", "gemini-2.5-pro", prompt_tokens=250_000).input   # Decimal('2.50')
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
# Other spellings of a catalog provider name, accepted by :meth:`PricingCatalog.price`.
_PROVIDER_ALIASES = {"gemini": "google"}
_KEYS = frozenset(
    {"provider", "model", "effective_at", "prompt_tokens_over", *_SYNC_COLUMNS, *_BATCH_COLUMNS}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class PriceRow:
    """One catalog row: a model's prices (USD per million tokens) from ``effective_at`` on.

    Batch columns are ``None`` when the catalog gives no batch price for the row. ``prompt_tokens_over`` is
    ``None`` for the base row, or ``N`` for a length band that prices prompts of more than ``N`` tokens.

    Example::

        row = PricingCatalog.default().price("anthropic", "claude-haiku-4-5")
        row.cost(Usage(input_tokens=1_000_000), batch=True)   # Decimal('0.5')
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
    prompt_tokens_over: int | None = None

    @property
    def has_batch_prices(self) -> bool:
        """Whether every batch column is present."""
        return all(getattr(self, name) is not None for name in _BATCH_COLUMNS)

    def cost(self, usage: object, *, batch: bool) -> Decimal:
        """Price ``usage`` in USD: Σ tokens × rate / 1e6 over the five token kinds.

        ``usage`` is a :class:`Usage`, an API usage mapping or the SDK's ``Usage`` (see
        :meth:`usage_from_api`). ``batch=True`` uses the ``batch_*`` columns; a missing batch column is only an
        error when its token count is not zero.

        Raises:
            ConfigError: ``batch=True``, and a token kind the usage has is without a batch price on this row.
        """
        tokens = usage_from_api(usage)
        names = _BATCH_COLUMNS if batch else _SYNC_COLUMNS
        counts = (
            tokens.input_tokens,
            tokens.output_tokens,
            tokens.cache_write_5m_tokens,
            tokens.cache_write_1h_tokens,
            tokens.cache_read_tokens,
        )
        total = Decimal(0)
        for name, count in zip(names, counts, strict=True):
            rate: Decimal | None = getattr(self, name)
            if rate is None:
                if count:
                    raise ConfigError(f"no {name} price for {self.provider}/{self.model}")
                continue
            total += Decimal(count) * rate
        return total / _PER_TOKENS


class PricingCatalog:
    """An immutable set of :class:`PriceRow`, looked up by provider, model, time and prompt size.

    Raises:
        ConfigError: (constructor) two rows share provider, model, ``effective_at`` and band, or a model's
            first rows have no base row (one without ``prompt_tokens_over``).

    Example::

        catalog = PricingCatalog.from_path("prices.toml")
        catalog.price("openai", "openai/gpt-4.1-mini-2025-04-14").model   # 'gpt-4.1-mini'
    """

    __slots__ = ("_history", "_rows")

    def __init__(self, rows: Iterable[PriceRow]) -> None:
        self._rows: tuple[PriceRow, ...] = tuple(sorted(rows, key=_sort_key))
        history: dict[tuple[str, str], list[PriceRow]] = {}
        for row in self._rows:
            history.setdefault((row.provider, row.model), []).append(row)
        for (provider, model), rows_of_model in history.items():
            keys = [(row.effective_at, row.prompt_tokens_over or 0) for row in rows_of_model]
            if len(set(keys)) != len(keys):
                raise ConfigError(f"price catalog: duplicate rows for {provider}/{model}")
            first = rows_of_model[0]
            if first.prompt_tokens_over is not None:
                raise ConfigError(
                    f"price catalog: {provider}/{model} has a length band at {first.effective_at.isoformat()} "
                    "but no base row (without prompt_tokens_over) at or before it"
                )
        self._history: dict[tuple[str, str], tuple[PriceRow, ...]] = {
            key: tuple(value) for key, value in history.items()
        }

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
        """Every row, sorted by provider, model, effective_at and band."""
        return self._rows

    def max_effective_at(self) -> datetime | None:
        """The newest ``effective_at`` in the catalog (the staleness signal); ``None`` when empty."""
        return max((row.effective_at for row in self._rows), default=None)

    def price(
        self, provider: str, model: str, at: datetime | None = None, prompt_tokens: int | None = None
    ) -> PriceRow | None:
        """The row pricing ``model`` at ``at`` for a prompt of ``prompt_tokens``, or ``None`` when no catalog
        model matches.

        ``provider`` ``"gemini"`` means ``"google"``. Any ``provider/`` prefix on ``model`` is stripped. The catalog model chosen is the longest one equal to
        ``model`` or a prefix of it ending at a ``-`` boundary (so ``gpt-4.1`` never prices ``gpt-4.1-mini``
        when both exist). Of its rows, each band's newest with ``effective_at <= at`` is in force (``at=None``
        means the latest; before the first row, the earliest). Of those, the highest band whose threshold is
        below ``prompt_tokens`` (input + cache read + cache write tokens) wins; ``None`` picks the base row.

        Raises:
            ConfigError: ``at`` is a naive datetime.
            ValueError: ``prompt_tokens`` is negative.

        Example::

            catalog.price("google", "gemini-2.5-pro", prompt_tokens=200_001).prompt_tokens_over   # 200000
        """
        if at is not None and at.tzinfo is None:
            raise ConfigError("price lookup time must be timezone-aware")
        if prompt_tokens is not None and prompt_tokens < 0:
            raise ValueError("prompt_tokens must not be negative")
        history = self.history(provider, model)
        if not history:
            return None
        when = None if at is None else max(at, history[0].effective_at)
        in_force: dict[int, PriceRow] = {}
        for row in history:  # sorted by effective_at: later rows replace earlier ones of their band
            if when is None or row.effective_at <= when:
                in_force[row.prompt_tokens_over or 0] = row
        size = 0 if prompt_tokens is None else prompt_tokens
        threshold = max(band for band in in_force if band == 0 or band < size)
        return in_force[threshold]

    def history(self, provider: str, model: str) -> tuple[PriceRow, ...]:
        """Every row of the catalog model that prices ``model`` (the match :meth:`price` makes), sorted by
        ``effective_at`` then band; empty when no catalog model matches.

        Example::

            [row.effective_at.date() for row in catalog.history("openai", "o3-2025-04-16")]
            # [datetime.date(2025, 4, 16), datetime.date(2025, 6, 10)]
        """
        return self._match(_PROVIDER_ALIASES.get(provider, provider), model.rsplit("/", 1)[-1])

    def _match(self, provider: str, model: str) -> tuple[PriceRow, ...]:
        """The history of the longest catalog model equal to ``model`` or a prefix of it at a ``-``."""
        candidate = model
        while candidate:
            history = self._history.get((provider, candidate))
            if history:
                return history
            cut = candidate.rfind("-")
            candidate = candidate[:cut] if cut > 0 else ""
        return ()


def _sort_key(row: PriceRow) -> tuple[str, str, datetime, int]:
    return (row.provider, row.model, row.effective_at, row.prompt_tokens_over or 0)


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
    if "/" in model:
        raise ConfigError(f"{where}: model must not contain '/' (lookups strip a provider/ prefix)")
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
        prompt_tokens_over=_band(where, raw.get("prompt_tokens_over")),
    )


def _band(where: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where}: prompt_tokens_over must be a positive integer")
    return value


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
