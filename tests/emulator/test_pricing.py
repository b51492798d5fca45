"""The shipped price catalog and its lookup rules."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from anthropic.types import CacheCreation
from anthropic.types import Usage as AnthropicUsage

from lore_batch.pricing import PriceRow, PricingCatalog
from lore_batch.usage import usage_from_api
from lore_core.errors import ConfigError
from lore_core.llm import Usage

SYNC = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")


def test_every_anthropic_batch_column_is_exactly_half_its_sync_column() -> None:
    rows = [row for row in PricingCatalog.default().rows if row.provider == "anthropic"]
    assert rows
    for row in rows:
        for name in SYNC:
            batch = getattr(row, f"batch_{name}")
            assert isinstance(batch, Decimal), (row.model, name)
            assert batch * 2 == getattr(row, name), (row.model, name)


def test_anthropic_cache_multipliers() -> None:
    for row in (row for row in PricingCatalog.default().rows if row.provider == "anthropic"):
        assert row.cache_write_5m == row.input * Decimal("1.25"), row.model
        assert row.cache_write_1h == row.input * 2, row.model
        assert row.cache_read == row.input / 10, row.model


@pytest.mark.parametrize(
    ("model", "catalog_model", "price_in", "price_out"),
    [
        ("claude-opus-4-6", "claude-opus-4-6", "5", "25"),
        ("claude-opus-4-5-20251101", "claude-opus-4-5", "5", "25"),
        ("claude-opus-4-1-20250805", "claude-opus-4-1", "15", "75"),
        ("claude-opus-4-20250514", "claude-opus-4", "15", "75"),
        ("claude-sonnet-4-6", "claude-sonnet-4-6", "3", "15"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5", "3", "15"),
        ("claude-sonnet-4-0", "claude-sonnet-4", "3", "15"),
        ("claude-haiku-4-5-20251001", "claude-haiku-4-5", "1", "5"),
        ("claude-3-5-haiku-20241022", "claude-3-5-haiku", "0.8", "4"),
        ("anthropic/claude-haiku-4-5", "claude-haiku-4-5", "1", "5"),
    ],
)
def test_longest_prefix_at_a_dash_boundary(
    model: str, catalog_model: str, price_in: str, price_out: str
) -> None:
    row = PricingCatalog.default().price("anthropic", model)
    assert row is not None
    assert row.model == catalog_model
    assert (row.input, row.output) == (Decimal(price_in), Decimal(price_out))


@pytest.mark.parametrize("model", ["claude-opus-45", "claude", "gpt-4o", "claude-opus"])
def test_no_match_is_none(model: str) -> None:
    assert PricingCatalog.default().price("anthropic", model) is None


def test_other_provider_is_none() -> None:
    assert PricingCatalog.default().price("openai", "claude-opus-4-6") is None


def _row(model: str, when: str, price: str, **extra: Any) -> dict[str, Any]:
    value = Decimal(price)
    return {
        "provider": "anthropic",
        "model": model,
        "effective_at": when,
        "input": value,
        "output": value * 5,
        "cache_write_5m": value,
        "cache_write_1h": value,
        "cache_read": value,
        **extra,
    }


def test_history_picks_the_newest_row_in_force() -> None:
    catalog = PricingCatalog.from_mapping(
        {"price": [_row("m", "2025-06-01T00:00:00Z", "2"), _row("m", "2025-01-01T00:00:00Z", "1")]}
    )
    at = datetime(2025, 3, 1, tzinfo=UTC)
    assert catalog.price("anthropic", "m", at)
    assert catalog.price("anthropic", "m", at).input == 1
    assert catalog.price("anthropic", "m", datetime(2025, 6, 1, tzinfo=UTC)).input == 2
    assert catalog.price("anthropic", "m").input == 2
    assert catalog.price("anthropic", "m", datetime(2020, 1, 1, tzinfo=UTC)).input == 1
    assert catalog.max_effective_at() == datetime(2025, 6, 1, tzinfo=UTC)
    with pytest.raises(ConfigError):
        catalog.price("anthropic", "m", datetime(2025, 1, 1))  # naive


def test_cost_sums_every_token_kind() -> None:
    row = PricingCatalog.default().price("anthropic", "claude-opus-4-6")
    assert row is not None
    usage = Usage(
        input_tokens=1_000_000,
        output_tokens=1_000_000,
        cache_read_tokens=1_000_000,
        cache_write_5m_tokens=1_000_000,
        cache_write_1h_tokens=1_000_000,
    )
    assert row.cost(usage, batch=False) == Decimal("5") + 25 + Decimal("0.5") + Decimal("6.25") + 10
    assert row.cost(usage, batch=True) * 2 == row.cost(usage, batch=False)


def test_usage_from_the_sdk_and_from_json() -> None:
    sdk = AnthropicUsage(
        input_tokens=10,
        output_tokens=5,
        cache_read_input_tokens=3,
        cache_creation_input_tokens=7,
        cache_creation=CacheCreation(ephemeral_5m_input_tokens=2, ephemeral_1h_input_tokens=5),
    )
    assert usage_from_api(sdk) == Usage(
        input_tokens=10,
        output_tokens=5,
        cache_read_tokens=3,
        cache_write_5m_tokens=2,
        cache_write_1h_tokens=5,
    )
    only_total = {"input_tokens": 1, "output_tokens": 1, "cache_creation_input_tokens": 4}
    assert usage_from_api(only_total).cache_write_5m_tokens == 4
    assert usage_from_api(only_total, default_write_ttl="1h").cache_write_1h_tokens == 4


def test_a_row_without_batch_prices_refuses_a_batch_cost() -> None:
    catalog = PricingCatalog.from_mapping({"price": [_row("m", "2025-01-01T00:00:00Z", "1")]})
    row = catalog.price("anthropic", "m")
    assert isinstance(row, PriceRow)
    assert not row.has_batch_prices
    assert row.cost(Usage(input_tokens=1_000_000), batch=False) == 1
    with pytest.raises(ConfigError):
        row.cost(Usage(input_tokens=1), batch=True)


@pytest.mark.parametrize(
    "bad",
    [
        {"price": [{**_row("m", "2025-01-01T00:00:00Z", "1"), "surprise": 1}]},
        {"price": [{k: v for k, v in _row("m", "2025-01-01T00:00:00Z", "1").items() if k != "output"}]},
        {"price": [_row("m", "2025-01-01", "1")]},
        {"price": [_row("m", "yesterday", "1")]},
        {"price": [{**_row("m", "2025-01-01T00:00:00Z", "1"), "input": "cheap"}]},
        {"price": [{**_row("m", "2025-01-01T00:00:00Z", "1"), "input": Decimal(-1)}]},
        {"price": [{**_row("m", "2025-01-01T00:00:00Z", "1"), "model": ""}]},
        {"price": {"not": "a list"}},
    ],
)
def test_malformed_rows_are_config_errors(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        PricingCatalog.from_mapping(bad)


def test_from_path_reads_toml(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text(
        '[[price]]\nprovider = "anthropic"\nmodel = "m"\neffective_at = 2025-01-01T00:00:00Z\n'
        "input = 0.1\noutput = 0.3\ncache_write_5m = 0.125\ncache_write_1h = 0.2\ncache_read = 0.01\n"
    )
    row = PricingCatalog.from_path(path).price("anthropic", "m")
    assert row is not None
    assert row.input == Decimal("0.1")  # exact: parsed as Decimal, never through float
    with pytest.raises(ConfigError):
        PricingCatalog.from_path(tmp_path / "missing.toml")
