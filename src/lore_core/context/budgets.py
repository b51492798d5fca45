"""Budgets, the fit test and the tier gate (ENGINE.md 8.2 and 8.3 steps 4-6), per call and per session.

Every number comes from :class:`~lore_core.config.LoreConfig`; nothing here is global. Token amounts are
message estimates (ENGINE.md 3.1) unless named ``expected`` (the session's expected input, overhead included).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lore_core.config import LoreConfig

__all__ = ["Budgets", "budgets", "fits", "layer0_size", "should_compress"]

_PER_MTOK = 1_000_000  # prices are configured per million tokens


@dataclass(frozen=True, slots=True, kw_only=True)
class Budgets:
    """The budgets of one call (ENGINE.md 8.2); ``usable``, ``distilled`` and ``raw`` are the base values.

    ``layer0_cap`` is None when no cap applies; ``ceiling`` is the layer-0 limit (cold factor applied when
    uncalibrated and capped). ``safety`` is the uncalibrated multiplier (1.5).
    """

    output_reserve: int
    max_input: int
    fixed: int
    overhead: int
    calibrated: bool
    safety: float
    usable: int
    distilled: int
    raw: int
    post_idle_raw: int
    layer2_raw: int
    layer3_raw: int
    layer3_distilled: int
    layer4_tail: int
    layer0_cap: int | None
    ceiling: int

    @property
    def max_total(self) -> int:
        """The largest message total (prefix + raw) that passes the fit test."""
        if self.calibrated:
            return self.max_input - self.fixed - self.overhead
        return math.floor((self.max_input - self.overhead) / self.safety - self.fixed)

    def stage_raw(self, budget: int, prefix_tokens: int) -> int:
        """A stage's raw budget, capped when uncalibrated so a filled window can pass the fit test [ours].

        The cap is ``floor((max_input - overhead) / 1.5) - fixed - prefix``.
        """
        if self.calibrated:
            return budget
        cap = math.floor((self.max_input - self.overhead) / self.safety) - self.fixed - prefix_tokens
        return min(budget, cap)

    def needed(self, total: int) -> int:
        """What the fit test compares with ``max_input`` for a message total (rounded up)."""
        if self.calibrated:
            return total + self.fixed + self.overhead
        return math.ceil(self.safety * (total + self.fixed) + self.overhead)


def _fraction(value: float, usable: int) -> int:
    return math.floor(value * usable)


def _layer0_cap(config: LoreConfig) -> int | None:
    if config.max_layer0_tokens > 0:
        return config.max_layer0_tokens
    price = config.cache_read_price_per_mtok
    if price is None or price <= 0:
        return None
    return max(
        math.floor(config.target_cache_read_cost_per_turn / (price / _PER_MTOK)), config.layer0_cap_floor
    )


def budgets(
    *,
    context_window: int,
    max_output_tokens: int | None,
    fixed_tokens: int,
    overhead: int,
    calibrated: bool,
    config: LoreConfig,
) -> Budgets:
    """The budgets of ENGINE.md 8.2 for one call.

    ``output_reserve = min(max_output_tokens or 32_000, 32_000)``, ``max_input = context_window -
    output_reserve``, ``usable = max(0, max_input - fixed - overhead)``, then the per-layer fractions of
    ``usable``, the layer-4 tail ``clamp(floor(0.25 x usable), 2_000, 8_000)``, the layer-0 cap and ceiling.

    Example::

        b = budgets(context_window=200_000, max_output_tokens=None, fixed_tokens=5_000, overhead=15_000,
                    calibrated=True, config=LoreConfig())
        (b.max_input, b.usable, b.distilled, b.raw) == (168_000, 148_000, 37_000, 59_200)
    """
    reserve = min(max_output_tokens or config.output_reserve_cap, config.output_reserve_cap)
    max_input = context_window - reserve
    usable = max(0, max_input - fixed_tokens - overhead)
    tail_factor, tail_floor, tail_cap = config.layer4_tail
    cap = _layer0_cap(config)
    ceiling = min(max_input, cap) if cap else max_input
    if not calibrated and ceiling < max_input:
        ceiling = math.floor(config.cold_ceiling_factor * ceiling)
    return Budgets(
        output_reserve=reserve,
        max_input=max_input,
        fixed=fixed_tokens,
        overhead=overhead,
        calibrated=calibrated,
        safety=config.uncalibrated_safety,
        usable=usable,
        distilled=_fraction(config.budget_distilled, usable),
        raw=_fraction(config.budget_raw, usable),
        post_idle_raw=_fraction(config.post_idle_raw, usable),
        layer2_raw=_fraction(config.layer2_raw, usable),
        layer3_raw=_fraction(config.layer3_raw, usable),
        layer3_distilled=_fraction(config.layer3_distilled, usable),
        layer4_tail=min(max(_fraction(tail_factor, usable), tail_floor), tail_cap),
        layer0_cap=cap,
        ceiling=ceiling,
    )


def fits(total: int, *, budgets: Budgets) -> bool:
    """The fit test of every stage: ``total`` (prefix + raw message estimates) fits the window.

    Calibrated ``total + fixed + overhead <= max_input``; uncalibrated ``1.5 x (total + fixed) + overhead <=
    max_input``.
    Example: ``fits(b.max_total, budgets=b) and not fits(b.max_total + 1, budgets=b)``.
    """
    if budgets.calibrated:
        return total + budgets.fixed + budgets.overhead <= budgets.max_input
    return budgets.safety * (total + budgets.fixed) + budgets.overhead <= budgets.max_input


def layer0_size(expected: int, *, budgets: Budgets) -> float:
    """The size the layer-0 decision compares: ``expected``, or ``1.5 x (expected - overhead) + overhead``.

    Example: ``layer0_size(40_000, budgets=uncalibrated) == 1.5 * 25_000 + 15_000``.
    """
    if budgets.calibrated:
        return float(expected)
    return budgets.safety * (expected - budgets.overhead) + budgets.overhead


def should_compress(current: float, compressed: float, busts: int, *, config: LoreConfig) -> bool:
    """The tier gate: whether busting the cache for a compressed request is cheaper than reading it all.

    False when ``busts >= unsustainable_busts`` (5) or a cache price is missing, else ``compressed x
    write_price < 0.85 x current x read_price``.
    Example: ``should_compress(500_000, 100_000, 0, config=LoreConfig(cache_write_price_per_mtok=3.75,
    cache_read_price_per_mtok=0.3)) is False``.
    """
    write, read = config.cache_write_price_per_mtok, config.cache_read_price_per_mtok
    if busts >= config.unsustainable_busts or write is None or read is None:
        return False
    return compressed * write < config.compress_threshold * current * read
