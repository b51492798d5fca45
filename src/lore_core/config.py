"""``LoreConfig``: every tunable number of the engine, with the defaults of ENGINE.md section 12.

Fixed rules that are not tunable live as named constants next to the code that uses them, each with a comment
saying why. Budgets given as triples are ``(factor, floor, cap)``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

from lore_core.errors import ConfigError

__all__ = ["LoreConfig"]


@dataclass(frozen=True, slots=True, kw_only=True)
class LoreConfig:
    """Engine settings. Construct with keyword arguments; invalid values raise :class:`ConfigError`.

    Example::

        config = LoreConfig(max_segment_tokens=8_192, curate_after_turns=5)
    """

    # store, workers
    auto_migrate: bool = True
    timezone: str = "UTC"
    worker_model: str | None = None
    background_concurrency: int = 2
    backoff_seconds: tuple[float, ...] = (60.0, 120.0, 240.0, 480.0, 600.0)
    worker_lease_seconds: float = 600.0
    state_flush_seconds: float = 30.0
    shutdown_grace_seconds: float = 30.0
    worker_error_history: int = 20
    # limits, calibration
    default_context_window: int = 200_000
    output_reserve_cap: int = 32_000
    first_turn_overhead_tokens: int = 15_000
    uncalibrated_safety: float = 1.5
    calibration_new_weight: float = 0.3
    # layer budgets
    budget_distilled: float = 0.25
    budget_raw: float = 0.40
    post_idle_raw: float = 0.20
    pin_hysteresis: float = 0.15
    layer2_raw: float = 0.50
    layer2_protected_messages: int = 4
    layer3_raw: float = 0.55
    layer3_distilled: float = 0.15
    layer3_max_distillations: int = 5
    layer4_max_distillations: int = 2
    layer4_tail: tuple[float, int, int] = (0.25, 2_000, 8_000)
    # layer 0, cost
    max_layer0_tokens: int = 0
    target_cache_read_cost_per_turn: float = 0.10
    layer0_cap_floor: int = 40_000
    cold_ceiling_factor: float = 0.7
    compress_threshold: float = 0.85
    cache_write_price_per_mtok: float | None = None
    cache_read_price_per_mtok: float | None = None
    # cache, busts
    cache_ttl: Literal["5m", "1h"] = "5m"
    prefix_cache_breakpoint: bool = True
    bust_ratio: float = 0.5
    bust_pressure_turns: int = 3
    unsustainable_busts: int = 5
    high_layer_hint_turns: int = 3
    # tool outputs
    strip_hint: str = ""
    dedup_min_chars: int = 600
    file_read_tools: tuple[str, ...] = ("read", "read_file", "Read", "view")
    tool_output_max_chars: int = 4_000
    tool_input_max_chars: int = 1_000
    # distillation
    min_messages: int = 5
    min_segment_tokens: int = 64
    max_segment_tokens: int = 16_384
    segment_gap_multiplier: float = 3.0
    max_rounds: int = 3
    observer_input_cap_tokens: int = 60_000
    distill_budget: tuple[float, int, int] = (10.0, 256, 4_096)
    max_assertions: int = 5
    observer_failures_before_digest: int = 3
    # meta-distillation
    meta_threshold: int = 20
    keep_recent_segments: int = 5
    meta_budget: tuple[float, int, int] = (0.25, 1_024, 8_192)
    # validation
    validate_enabled: bool = True
    retention_threshold: float = 0.8
    artifacts_per_kind: int = 20
    validate_budget: tuple[float, int, int] = (64.0, 256, 1_024)
    # knowledge
    knowledge_enabled: bool = True
    curator_enabled: bool = True
    curate_after_turns: int = 3
    curate_inflight_multiplier: int = 2
    curator_input_cap_tokens: int = 30_000
    curator_max_tokens: int = 2_048
    consolidate_max_tokens: int = 4_096
    consolidate_max_entries: int = 25
    max_entry_chars: int = 1_200
    title_overlap: float = 0.7
    title_shared_words: int = 4
    knowledge_min_confidence: float = 0.2
    budget_ltm: float = 0.05
    budget_preferences: float = 0.02
    # idle
    idle_timeout_seconds: float = 60.0
    idle_poll_seconds: float = 30.0
    tool_use_idle_seconds: float = 600.0
    idle_resume_minutes: float | None = None
    # retention
    retention_days: int = 120
    max_storage_mb: int = 1_024
    # recall (docs/recall.md)
    recall_max_chars: int = 6_000
    recall_snippet_chars: int = 600
    recall_expand: bool = False
    recall_expansions: int = 3
    recall_expand_timeout_seconds: float = 3.0

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, bool) or value is None:
                continue
            if isinstance(value, int | float) and value < 0:
                raise ConfigError(f"LoreConfig.{item.name} must not be negative (got {value!r})")
        fractions = (
            "budget_distilled", "budget_raw", "post_idle_raw", "pin_hysteresis", "layer2_raw", "layer3_raw",
            "layer3_distilled", "cold_ceiling_factor", "compress_threshold", "bust_ratio",
            "retention_threshold", "title_overlap", "knowledge_min_confidence", "budget_ltm",
            "budget_preferences", "calibration_new_weight",
        )  # fmt: skip
        for name in fractions:
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"LoreConfig.{name} must be between 0 and 1")
        for name in ("background_concurrency", "recall_max_chars", "recall_snippet_chars"):
            if getattr(self, name) < 1:
                raise ConfigError(f"LoreConfig.{name} must be at least 1")
        if not self.backoff_seconds:
            raise ConfigError("LoreConfig.backoff_seconds must not be empty")
        if self.min_segment_tokens > self.max_segment_tokens:
            raise ConfigError("LoreConfig.min_segment_tokens must not exceed max_segment_tokens")
        if self.cache_ttl not in ("5m", "1h"):
            raise ConfigError("LoreConfig.cache_ttl must be '5m' or '1h'")
        if self.uncalibrated_safety < 1:
            raise ConfigError("LoreConfig.uncalibrated_safety must be at least 1")

    @property
    def idle_resume_seconds(self) -> float:
        """The idle-resume threshold: the prompt-cache TTL unless set; 0 disables (ENGINE.md 9.3)."""
        if self.idle_resume_minutes is not None:
            return self.idle_resume_minutes * 60.0
        return 3600.0 if self.cache_ttl == "1h" else 300.0
