"""Price lookup rules (BATCH.md section 8, behaviour 46) on a test catalog with history and length bands.

``history.toml`` holds invented prices: the rules are what is tested here, not the shipped data.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from lore_batch.pricing import PriceRow, PricingCatalog
from lore_core.errors import ConfigError
from lore_core.llm import Usage

HISTORY = Path(__file__).with_name("history.toml")


@pytest.fixture(scope="module")
def catalog() -> PricingCatalog:
    return PricingCatalog.from_path(HISTORY)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _price(catalog: PricingCatalog, *args: Any, **kwargs: Any) -> PriceRow:
    row = catalog.price(*args, **kwargs)
    assert row is not None
    return row


@pytest.mark.parametrize(
    ("model", "catalog_model", "price_in"),
    [
        ("gpt-5.4", "gpt-5.4", "2.00"),
        ("gpt-5.4-2026-03-05", "gpt-5.4", "2.00"),
        ("gpt-5.4-mini", "gpt-5.4-mini", "0.50"),  # never the shorter gpt-5.4 (R17)
        ("gpt-5.4-mini-2026-03-17", "gpt-5.4-mini", "0.50"),
        ("openai/gpt-5.4-mini", "gpt-5.4-mini", "0.50"),
        ("openrouter/openai/gpt-5.4-mini", "gpt-5.4-mini", "0.50"),
    ],
)
def test_longest_prefix_at_a_dash_boundary(
    catalog: PricingCatalog, model: str, catalog_model: str, price_in: str
) -> None:
    row = _price(catalog, "openai", model)
    assert (row.model, row.input) == (catalog_model, Decimal(price_in))


@pytest.mark.parametrize("model", ["gpt-5.40", "gpt-5", "gpt-5.4mini", "gpt", ""])
def test_a_prefix_that_is_not_at_a_dash_boundary_does_not_match(catalog: PricingCatalog, model: str) -> None:
    assert catalog.price("openai", model) is None


def test_at_picks_the_row_in_force(catalog: PricingCatalog) -> None:
    assert _price(catalog, "openai", "gpt-x", _at("2025-03-01")).input == Decimal("1.00")
    assert _price(catalog, "openai", "gpt-x-2025", _at("2025-06-30T23:59:59")).input == Decimal("1.00")
    assert _price(catalog, "openai", "gpt-x", _at("2025-07-01")).input == Decimal("0.50")  # on the day
    assert _price(catalog, "openai", "gpt-x").input == Decimal("0.50")  # None: the latest
    assert _price(catalog, "openai", "gpt-x", _at("2020-01-01")).input == Decimal("1.00")  # before: earliest
    with pytest.raises(ConfigError):
        catalog.price("openai", "gpt-x", datetime(2025, 3, 1))  # naive


def test_history_lists_the_matched_models_rows(catalog: PricingCatalog) -> None:
    assert [row.effective_at for row in catalog.history("openai", "gpt-x-preview")] == [
        _at("2025-01-01"),
        _at("2025-07-01"),
    ]
    assert catalog.history("openai", "gpt-y") == ()
    assert catalog.max_effective_at() == _at("2026-03-17")


def test_bands_count_cache_tokens(catalog: PricingCatalog) -> None:
    # prompt size = input + cache read + cache writes; the band prices prompts of MORE than 200,000 tokens
    at = _at("2025-03-01")
    small = Usage(input_tokens=100_000, cache_read_tokens=60_000, cache_write_5m_tokens=40_000)  # = 200,000
    large = Usage(input_tokens=100_000, cache_read_tokens=60_000, cache_write_1h_tokens=40_001)  # = 200,001
    assert _price(catalog, "google", "gem-pro", at, prompt_tokens=small.total_input_tokens).input == 1
    band = _price(catalog, "google", "gem-pro", at, prompt_tokens=large.total_input_tokens)
    assert (band.prompt_tokens_over, band.input) == (200_000, 2)
    # only 1 uncached input token, but 250,000 read from the cache: still the long-prompt band
    mostly_cached = Usage(input_tokens=1, cache_read_tokens=250_000)
    assert _price(catalog, "google", "gem-pro", at, prompt_tokens=mostly_cached.total_input_tokens).input == 2
    # band pricing: 1 input token at $2/M + 250,000 cache reads at $0.20/M = 0.000002 + 0.05
    assert band.cost(mostly_cached, batch=False) == Decimal("0.050002")
    assert _price(catalog, "google", "gem-pro", at).prompt_tokens_over is None  # no size: the base row


def test_each_band_has_its_own_history(catalog: PricingCatalog) -> None:
    later = _at("2025-10-01")
    assert _price(catalog, "google", "gem-pro", later, prompt_tokens=100).input == 1  # base row unchanged
    assert _price(catalog, "google", "gem-pro", later, prompt_tokens=300_000).input == 3  # band's newer row
    top = _price(catalog, "google", "gem-pro", later, prompt_tokens=1_000_001)
    assert (top.prompt_tokens_over, top.input) == (1_000_000, 4)
    # before 2025-09-01 the million-token band did not exist: the 200k band prices it
    assert _price(catalog, "google", "gem-pro", _at("2025-03-01"), prompt_tokens=2_000_000).input == 2
    with pytest.raises(ValueError, match="negative"):
        catalog.price("google", "gem-pro", prompt_tokens=-1)


def test_a_missing_batch_column_means_no_batch_price(catalog: PricingCatalog) -> None:
    row = _price(catalog, "anthropic", "claude-partial")
    assert (row.batch_input, row.batch_output) == (Decimal("1.00"), Decimal("5.00"))
    assert row.batch_cache_read is None
    assert row.batch_cache_write_5m is None
    assert row.batch_cache_write_1h is None
    assert not row.has_batch_prices
    # tokens the row has batch prices for: 1M input at $1 + 1M output at $5
    assert row.cost(Usage(input_tokens=1_000_000, output_tokens=1_000_000), batch=True) == 6
    with pytest.raises(ConfigError, match="batch_cache_read"):
        row.cost(Usage(input_tokens=1, cache_read_tokens=1), batch=True)
    with pytest.raises(ConfigError, match="batch_cache_write_1h"):
        row.cost(Usage(cache_write_1h_tokens=1), batch=True)
    history_row = _price(catalog, "openai", "gpt-x")
    assert history_row.batch_input is None
    with pytest.raises(ConfigError, match="batch_input"):
        history_row.cost(Usage(input_tokens=1), batch=True)


def _row(**extra: Any) -> dict[str, Any]:
    return {
        "provider": "google",
        "model": "m",
        "effective_at": "2025-01-01T00:00:00Z",
        "input": Decimal(1),
        "output": Decimal(2),
        "cache_write_5m": Decimal(1),
        "cache_write_1h": Decimal(1),
        "cache_read": Decimal("0.1"),
        **extra,
    }


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([_row(prompt_tokens_over=200_000)], "no base row"),
        ([_row(), _row(effective_at="2024-01-01T00:00:00Z", prompt_tokens_over=10)], "no base row"),
        ([_row(), _row()], "duplicate"),
        ([_row(), _row(prompt_tokens_over=5), _row(prompt_tokens_over=5)], "duplicate"),
        ([_row(prompt_tokens_over=0)], "positive integer"),
        ([_row(prompt_tokens_over=-5)], "positive integer"),
        ([_row(prompt_tokens_over=Decimal("2.5"))], "positive integer"),
        ([_row(prompt_tokens_over=True)], "positive integer"),
        ([_row(model="google/m")], "must not contain"),
    ],
)
def test_malformed_bands_and_models_are_config_errors(rows: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PricingCatalog.from_mapping({"price": rows})


def test_gemini_is_an_alias_of_google() -> None:
    catalog = PricingCatalog.from_mapping({"price": [_row()]})
    assert catalog.price("gemini", "m") == catalog.price("google", "m")
    assert catalog.price("gemini", "models/m") is not None
    assert catalog.price("vertex", "m") is None
