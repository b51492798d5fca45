"""Data tests on the shipped catalog (``lore_batch/data/pricing.toml``): batch columns, families, history."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources

import pytest

from lore_batch.pricing import PriceRow, PricingCatalog

SYNC = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")
CATALOG = PricingCatalog.default()


def _price(provider: str, model: str, **kwargs: object) -> PriceRow:
    row = CATALOG.price(provider, model, **kwargs)  # type: ignore[arg-type]
    assert row is not None, model
    return row


def test_every_anthropic_batch_column_is_exactly_half_its_sync_column() -> None:
    rows = [row for row in CATALOG.rows if row.provider == "anthropic"]
    assert len(rows) >= 13
    for row in rows:
        for name in SYNC:
            batch = getattr(row, f"batch_{name}")
            assert isinstance(batch, Decimal), (row.model, name)
            assert batch * 2 == getattr(row, name), (row.model, name)


@pytest.mark.parametrize("provider", ["openai", "google"])
def test_openai_and_gemini_batch_is_half_of_input_and_output_and_has_no_cache_price(provider: str) -> None:
    rows = [row for row in CATALOG.rows if row.provider == provider]
    assert len(rows) >= 6
    for row in rows:
        assert row.batch_input is not None, row.model
        assert row.batch_output is not None, row.model
        assert (row.batch_input * 2, row.batch_output * 2) == (row.input, row.output), row.model
        # no published batch cache price is recorded: the columns are absent, never derived
        assert (row.batch_cache_read, row.batch_cache_write_5m, row.batch_cache_write_1h) == (
            None,
            None,
            None,
        )
        # neither provider bills a cache write: writes are ordinary input
        assert row.cache_write_5m == row.cache_write_1h == row.input, row.model
        assert row.cache_read <= row.input, row.model


def test_every_provider_block_names_its_source() -> None:
    text = resources.files("lore_batch").joinpath("data/pricing.toml").read_text()
    sources = [line for line in text.splitlines() if line.startswith("# --- ") and "Source:" in line]
    assert [line.split()[2].rstrip(".,") for line in sources] == [
        "Anthropic",
        "Anthropic",
        "OpenAI",
        "Google",
    ]


@pytest.mark.parametrize(
    ("provider", "model", "catalog_model", "price_in", "price_out"),
    [
        # the longer family never prices as the shorter one, nor the reverse
        ("openai", "gpt-5-mini", "gpt-5-mini", "0.25", "2.00"),
        ("openai", "gpt-5", "gpt-5", "1.25", "10.00"),
        ("openai", "gpt-5-nano-2025-08-07", "gpt-5-nano", "0.05", "0.40"),
        ("openai", "gpt-5-pro", "gpt-5-pro", "15.00", "120.00"),
        ("openai", "gpt-4.1-mini-2025-04-14", "gpt-4.1-mini", "0.40", "1.60"),
        ("openai", "gpt-4.1-2025-04-14", "gpt-4.1", "2.00", "8.00"),
        ("openai", "gpt-4o-mini-2024-07-18", "gpt-4o-mini", "0.15", "0.60"),
        ("openai", "gpt-4o-2024-11-20", "gpt-4o", "2.50", "10.00"),
        ("openai", "gpt-4o-2024-05-13", "gpt-4o-2024-05-13", "5.00", "15.00"),  # an exact id beats its family
        ("openai", "o3-pro-2025-06-10", "o3-pro", "20.00", "80.00"),
        ("openai", "o4-mini-deep-research", "o4-mini-deep-research", "2.00", "8.00"),
        ("openai", "openai/gpt-5.1", "gpt-5.1", "1.25", "10.00"),
        ("google", "gemini-2.5-flash-lite", "gemini-2.5-flash-lite", "0.10", "0.40"),
        ("google", "gemini-2.5-flash-preview-09-2025", "gemini-2.5-flash", "0.30", "2.50"),
        ("google", "models/gemini-2.5-pro", "gemini-2.5-pro", "1.25", "10.00"),
        ("gemini", "gemini-3-pro-preview", "gemini-3-pro", "2.00", "12.00"),
        ("anthropic", "claude-3-7-sonnet-20250219", "claude-3-7-sonnet", "3.00", "15.00"),
        ("anthropic", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5", "3.00", "15.00"),
    ],
)
def test_a_model_id_finds_its_family(
    provider: str, model: str, catalog_model: str, price_in: str, price_out: str
) -> None:
    row = _price(provider, model)
    assert (row.model, row.input, row.output) == (catalog_model, Decimal(price_in), Decimal(price_out))


@pytest.mark.parametrize("model", ["gpt-5.3", "gpt-50", "o1", "gemini-1.5-pro", "gpt-4"])
def test_unknown_openai_and_gemini_models_are_unpriced(model: str) -> None:
    provider = "google" if model.startswith("gemini") else "openai"
    assert CATALOG.price(provider, model) is None


def test_o3_history_prices_old_traffic_at_the_old_price() -> None:
    before_cut = datetime(2025, 5, 1, tzinfo=UTC)
    assert _price("openai", "o3-2025-04-16", at=before_cut).input == Decimal("10.00")
    assert _price("openai", "o3", at=datetime(2025, 6, 10, tzinfo=UTC)).input == Decimal("2.00")
    assert _price("openai", "o3").input == Decimal("2.00")


@pytest.mark.parametrize(
    ("provider", "model", "base_in", "long_in", "long_out"),
    [
        ("google", "gemini-2.5-pro", "1.25", "2.50", "15.00"),
        ("google", "gemini-3-pro-preview", "2.00", "4.00", "18.00"),
        ("anthropic", "claude-sonnet-4-5", "3.00", "6.00", "22.50"),
    ],
)
def test_long_prompts_take_the_band_over_200k(
    provider: str, model: str, base_in: str, long_in: str, long_out: str
) -> None:
    assert _price(provider, model, prompt_tokens=200_000).input == Decimal(base_in)
    band = _price(provider, model, prompt_tokens=200_001)
    assert (band.prompt_tokens_over, band.input, band.output) == (
        200_000,
        Decimal(long_in),
        Decimal(long_out),
    )


def test_sonnet_4_long_context_band_starts_with_the_1m_window() -> None:
    before = datetime(2025, 8, 1, tzinfo=UTC)
    assert _price("anthropic", "claude-sonnet-4-20250514", at=before, prompt_tokens=500_000).input == 3
    assert _price("anthropic", "claude-sonnet-4-20250514", prompt_tokens=500_000).input == 6
