"""Budgets, the fit test, the layer-0 size and the tier gate (ENGINE.md 8.2, 8.3 steps 4-6)."""

from __future__ import annotations

import pytest

from lore_core.config import LoreConfig
from lore_core.context import Budgets, budgets, fits, layer0_size, should_compress


def _budgets(**overrides: object) -> Budgets:
    values: dict[str, object] = {
        "context_window": 200_000,
        "max_output_tokens": None,
        "fixed_tokens": 5_000,
        "overhead": 15_000,
        "calibrated": True,
        "config": LoreConfig(),
    }
    values.update(overrides)
    return budgets(**values)  # type: ignore[arg-type]


def test_default_numbers() -> None:
    b = _budgets()
    assert (b.output_reserve, b.max_input, b.usable) == (32_000, 168_000, 148_000)
    assert (b.distilled, b.raw, b.post_idle_raw) == (37_000, 59_200, 29_600)
    assert (b.layer2_raw, b.layer3_raw, b.layer3_distilled) == (74_000, 81_400, 22_200)
    assert b.layer4_tail == 8_000  # clamp(37_000, 2_000, 8_000)
    assert (b.layer0_cap, b.ceiling) == (None, 168_000)


@pytest.mark.parametrize(
    ("max_output", "reserve"), [(None, 32_000), (0, 32_000), (8_000, 8_000), (64_000, 32_000)]
)
def test_output_reserve(max_output: int | None, reserve: int) -> None:
    b = _budgets(max_output_tokens=max_output)
    assert b.output_reserve == reserve
    assert b.max_input == 200_000 - reserve


def test_usable_never_negative_and_tail_floor() -> None:
    b = _budgets(context_window=40_000, fixed_tokens=30_000)
    assert b.usable == 0
    assert (b.distilled, b.raw, b.layer4_tail) == (0, 0, 2_000)


def test_tail_between_floor_and_cap() -> None:
    assert _budgets(context_window=60_000).layer4_tail == 2_000  # usable 8,000 -> 2,000
    assert _budgets(context_window=80_000).layer4_tail == 7_000  # usable 28,000 -> 7,000


def test_layer0_cap_explicit_and_cold_factor() -> None:
    config = LoreConfig(max_layer0_tokens=100_000)
    assert _budgets(config=config).ceiling == 100_000
    assert _budgets(config=config, calibrated=False).ceiling == 70_000
    # a cap above max_input does not bind, so the cold factor does not apply
    big = LoreConfig(max_layer0_tokens=500_000)
    assert _budgets(config=big, calibrated=False).ceiling == 168_000


def test_layer0_cap_from_read_price() -> None:
    # $0.10 per turn at $0.30 / MTok of cache reads -> 333,333 tokens, above max_input
    assert _budgets(config=LoreConfig(cache_read_price_per_mtok=0.3)).layer0_cap == 333_333
    # at $5 / MTok: 20,000 tokens, lifted to the 40,000 floor
    expensive = _budgets(config=LoreConfig(cache_read_price_per_mtok=5.0))
    assert (expensive.layer0_cap, expensive.ceiling) == (40_000, 40_000)
    assert _budgets(config=LoreConfig(cache_read_price_per_mtok=5.0), calibrated=False).ceiling == 28_000
    assert _budgets(config=LoreConfig(cache_read_price_per_mtok=0.0)).layer0_cap is None


def test_fit_test_calibrated_and_uncalibrated() -> None:
    calibrated = _budgets()
    assert fits(148_000, budgets=calibrated)
    assert not fits(148_001, budgets=calibrated)
    assert calibrated.max_total == 148_000
    assert calibrated.needed(148_001) == 168_001
    cold = _budgets(calibrated=False)
    # 1.5 x (total + 5,000) + 15,000 <= 168,000  <=>  total <= 97,000
    assert fits(97_000, budgets=cold)
    assert not fits(97_001, budgets=cold)
    assert cold.max_total == 97_000
    assert cold.needed(97_001) == 168_002  # ceil(1.5 x 102,001 + 15,000)


def test_uncalibrated_stage_raw_cap() -> None:
    cold = _budgets(calibrated=False)
    # floor((168,000 - 15,000) / 1.5) - 5,000 - prefix
    assert cold.stage_raw(59_200, 1_000) == min(59_200, 102_000 - 5_000 - 1_000)
    assert cold.stage_raw(100_000, 1_000) == 96_000
    assert _budgets().stage_raw(100_000, 1_000) == 100_000  # calibrated: no cap


def test_layer0_size() -> None:
    assert layer0_size(50_000, budgets=_budgets()) == 50_000
    assert layer0_size(50_000, budgets=_budgets(calibrated=False)) == 1.5 * 35_000 + 15_000


PRICED = LoreConfig(cache_write_price_per_mtok=3.75, cache_read_price_per_mtok=0.3)


def test_should_compress() -> None:
    # compress when 3.75 x compressed < 0.85 x 0.3 x current
    assert should_compress(1_000_000, 60_000, 0, config=PRICED)
    assert not should_compress(1_000_000, 70_000, 0, config=PRICED)
    assert not should_compress(1_000_000, 60_000, 5, config=PRICED)
    assert should_compress(1_000_000, 60_000, 4, config=PRICED)
    assert not should_compress(1_000_000, 1, 0, config=LoreConfig(cache_read_price_per_mtok=0.3))
