"""The per-session state machine of the engine: pure, synchronous, no I/O and no clock (time is an argument).

One :class:`SessionState` is owned by one ``LoreSession``; nothing here is process-global (pitfall 1). Per
turn the session calls :func:`on_idle_resume` (unless the host did), :func:`expected_input`,
:func:`min_layer`, then assembles and calls :func:`after_transform`; :func:`record_usage` follows the
response. :meth:`SessionState.from_record` and :meth:`SessionState.to_columns` restore and persist
(ENGINE.md 10); a function that changes a persisted field sets ``dirty`` and the owner clears it after a
successful flush. Calibration and bust tracking live in :mod:`lore_core.calibration`, re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypedDict

from lore_core.calibration import (
    DeltaBaseline,
    UsageOutcome,
    bust_pressure,
    delta_baseline,
    expected_input,
    read_usage,
    record_usage,
    unsustainable,
)
from lore_core.config import LoreConfig
from lore_core.store.records import KnowledgePin, RawPin, SessionStateRecord

__all__ = [
    "TERMINAL_LAYER",
    "DeltaBaseline",
    "IdleResume",
    "SessionState",
    "SessionStateView",
    "StateColumns",
    "UsageOutcome",
    "after_transform",
    "bust_pressure",
    "delta_baseline",
    "expected_input",
    "is_idle",
    "min_layer",
    "on_idle_resume",
    "read_usage",
    "record_usage",
    "unsustainable",
]

TERMINAL_LAYER = 4
"""Layer 4 is the emergency layer; it is never sticky and ``force_min_layer`` cannot ask for more."""

_DEFAULT_CONFIG = LoreConfig()
"""Immutable defaults, used by :meth:`SessionState.view` when the caller gives no config."""


def _epoch(value: datetime | None) -> float | None:
    if value is None:
        return None
    if value.tzinfo is None:  # the store hands out aware UTC; a naive value can only mean UTC
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def _utc(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=UTC)


class StateColumns(TypedDict):
    """The persisted fields as ``SessionStore.save_state`` keyword arguments (times as aware UTC)."""

    force_min_layer: int
    last_layer: int
    last_known_input: int
    last_usage_model: str | None
    last_input_count: int
    last_window_start: int
    last_turn_at: datetime | None
    last_stop_reason: str | None
    calibration: dict[str, int]
    raw_pin: RawPin | None
    knowledge_pin: KnowledgePin | None
    turns_since_curation: int
    last_curated_at: datetime | None
    idle_done_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionStateView:
    """A read-only snapshot of a session's engine state (ENGINE.md 10); times are epoch seconds."""

    session_id: str
    project: str
    model: str
    calibrated: bool
    overhead: int
    last_known_input: int
    last_layer: int
    last_turn_at: float | None
    last_stop_reason: str | None
    force_min_layer: int
    has_prefix_cache: bool
    has_raw_pin: bool
    snapshot_rows: int | None
    came_out_of_idle: bool
    post_idle_compact: bool
    urgent_pending: bool
    consecutive_busts: int
    consecutive_high_layer: int
    turns_since_curation: int
    last_curated_at: float | None
    idle_done_at: float | None


@dataclass(frozen=True, slots=True)
class IdleResume:
    """What :func:`on_idle_resume` found: whether it triggered, and the idle gap in ms (0 if not)."""

    triggered: bool
    idle_ms: int


@dataclass(slots=True)
class SessionState:
    """The mutable engine state of one session, owned by one ``LoreSession`` (never shared, never global).

    The first block of fields persists (ENGINE.md 10); the rest are short-term signals rebuilt in each
    process. Times are epoch seconds. ``usage_baseline`` is set while the latest transform awaits its usage
    (see :mod:`lore_core.calibration`). Example: ``SessionState(session_id="s1", project="default",
    model="claude-sonnet-4-5")``, uncalibrated and expected cold.
    """

    session_id: str
    project: str
    model: str
    # persisted (ENGINE.md 10)
    force_min_layer: int = 0
    last_layer: int = 0
    last_known_input: int = 0
    last_usage_model: str | None = None
    last_input_count: int = 0
    last_window_start: int = 0
    last_turn_at: float | None = None
    last_stop_reason: str | None = None
    calibration: dict[str, int] = field(default_factory=dict)
    raw_pin: RawPin | None = None
    knowledge_pin: KnowledgePin | None = None
    turns_since_curation: int = 0
    last_curated_at: float | None = None
    idle_done_at: float | None = None
    # not persisted
    consecutive_busts: int = 0
    consecutive_high_layer: int = 0
    came_out_of_idle: bool = False
    post_idle_compact: bool = False
    urgent_pending: bool = False
    expected_cold: bool = True
    last_window_ids: frozenset[str] = frozenset()
    last_request_estimate: int = 0
    last_system_estimate: int = 0
    last_tools_estimate: int = 0
    transformed_since_usage: bool = False
    usage_baseline: DeltaBaseline | None = None
    dirty: bool = False

    @classmethod
    def from_record(cls, record: SessionStateRecord, *, project: str, model: str) -> SessionState:
        """Restore a stored row (ENGINE.md 10).

        ``last_layer``, ``last_known_input``, ``last_usage_model``, ``last_turn_at``, ``last_input_count`` and
        ``last_window_start`` are restored together and only when ``last_turn_at`` is set; the last window ids
        are left empty for the session to rebuild from stored rows. Short-term signals (busts, high-layer
        count, idle flags, the urgent flag) are never restored; the first usage is expected cold. Example:
        ``SessionState.from_record(await store.load_state(sid), project="default", model=model)``.
        """
        state = cls(
            session_id=record.session_id,
            project=project,
            model=model,
            force_min_layer=record.force_min_layer,
            last_stop_reason=record.last_stop_reason,
            calibration=dict(record.calibration),
            raw_pin=record.raw_pin,
            knowledge_pin=record.knowledge_pin,
            turns_since_curation=record.turns_since_curation,
            last_curated_at=_epoch(record.last_curated_at),
            idle_done_at=_epoch(record.idle_done_at),
        )
        if record.last_turn_at is not None:
            state.last_turn_at = _epoch(record.last_turn_at)
            state.last_layer = record.last_layer
            state.last_known_input = record.last_known_input
            state.last_usage_model = record.last_usage_model
            state.last_input_count = record.last_input_count
            state.last_window_start = record.last_window_start
        return state

    def to_columns(self) -> StateColumns:
        """Every persisted field as keyword arguments for ``SessionStore.save_state`` (times as aware UTC).

        The caller clears ``dirty`` once written: ``await store.save_state(sid, **state.to_columns())``.
        """
        return {
            "force_min_layer": self.force_min_layer,
            "last_layer": self.last_layer,
            "last_known_input": self.last_known_input,
            "last_usage_model": self.last_usage_model,
            "last_input_count": self.last_input_count,
            "last_window_start": self.last_window_start,
            "last_turn_at": _utc(self.last_turn_at),
            "last_stop_reason": self.last_stop_reason,
            "calibration": dict(self.calibration),
            "raw_pin": self.raw_pin,
            "knowledge_pin": self.knowledge_pin,
            "turns_since_curation": self.turns_since_curation,
            "last_curated_at": _utc(self.last_curated_at),
            "idle_done_at": _utc(self.idle_done_at),
        }

    def view(
        self,
        *,
        has_prefix_cache: bool = False,
        snapshot_rows: int | None = None,
        config: LoreConfig | None = None,
    ) -> SessionStateView:
        """A frozen snapshot; the prefix cache and distillation snapshot belong to the session, so it says.

        ``config`` gives the first-turn overhead shown while uncalibrated (default: ``LoreConfig()``).
        """
        return SessionStateView(
            session_id=self.session_id,
            project=self.project,
            model=self.model,
            calibrated=self.calibrated,
            overhead=self.overhead(_DEFAULT_CONFIG if config is None else config),
            last_known_input=self.last_known_input,
            last_layer=self.last_layer,
            last_turn_at=self.last_turn_at,
            last_stop_reason=self.last_stop_reason,
            force_min_layer=self.force_min_layer,
            has_prefix_cache=has_prefix_cache,
            has_raw_pin=self.raw_pin is not None,
            snapshot_rows=snapshot_rows,
            came_out_of_idle=self.came_out_of_idle,
            post_idle_compact=self.post_idle_compact,
            urgent_pending=self.urgent_pending,
            consecutive_busts=self.consecutive_busts,
            consecutive_high_layer=self.consecutive_high_layer,
            turns_since_curation=self.turns_since_curation,
            last_curated_at=self.last_curated_at,
            idle_done_at=self.idle_done_at,
        )

    @property
    def calibrated(self) -> bool:
        """True when the last usage was for the current model and measured something (ENGINE.md 3.2)."""
        return self.last_known_input > 0 and self.last_usage_model == self.model

    def overhead(self, config: LoreConfig) -> int:
        """The (session, current model) overhead EMA, else ``config.first_turn_overhead_tokens``."""
        known = self.calibration.get(self.model)
        return config.first_turn_overhead_tokens if known is None else known

    def switch_model(self, model: str) -> None:
        """Use ``model`` from now on: uncalibrated until its first usage, and that usage is expected cold.

        A transform still waiting for its usage was made for the old model, so that usage is no longer paired
        with it (it is ignored). The old model's overhead EMA is kept for a switch back. Same model: no-op.
        """
        if model == self.model:
            return
        self.model = model
        self.expected_cold = True
        self.transformed_since_usage = False
        if self.last_known_input:
            self.last_known_input = 0  # a switch back must not look calibrated before its own usage
            self.dirty = True


def min_layer(
    state: SessionState, *, message_count: int, has_rows: bool, config: LoreConfig
) -> tuple[int, bool]:
    """The lowest layer this transform may use, and whether layer 1 takes the post-idle raw budget
    (ENGINE.md 8.3 steps 1-3).

    1. ``force_min_layer`` (one-shot recovery): used once, then cleared (``dirty`` set; the owner writes it at
       once).
    2. Sticky: calibrated, ``1 <= last_layer <= 3`` and the list did not shrink -> at least ``last_layer``.
       Layer 4 is never sticky.
    3. Post-idle compact (one-shot, always cleared): only when the session has non-archived distillations,
       at least layer 1 with the 20% raw budget.
    Example: ``floor, post_idle = min_layer(state, message_count=n, has_rows=True, config=config)``.
    """
    floor = 0
    if state.force_min_layer > 0:
        floor = min(state.force_min_layer, TERMINAL_LAYER)
        state.force_min_layer = 0
        state.dirty = True
    sticky = 1 <= state.last_layer < TERMINAL_LAYER and message_count >= state.last_input_count
    if sticky and state.calibrated:
        floor = max(floor, state.last_layer)
    use_post_idle_budget = False
    if state.post_idle_compact:
        state.post_idle_compact = False
        if has_rows:
            floor = max(floor, 1)
            use_post_idle_budget = True
    return floor, use_post_idle_budget


def on_idle_resume(state: SessionState, *, now: float, skip_compact: bool, config: LoreConfig) -> IdleResume:
    """Detect a return after the prompt cache expired (ENGINE.md 9.3).

    Not triggered (``IdleResume(False, 0)``) when the threshold (``config.idle_resume_seconds``) is 0, when
    the session was never transformed, or when ``now - last_turn_at`` is under the threshold. Triggered: the
    raw and knowledge pins are dropped, the next transform is marked as coming out of idle and expected cold,
    and ``post_idle_compact = not skip_compact``. The session drops its prefix cache and snapshot itself.
    Never touches ``last_layer``, calibration, ``consecutive_busts`` or ``force_min_layer``. Example:
    ``on_idle_resume(state, now=clock.now(), skip_compact=False, config=config).triggered``.
    """
    threshold = config.idle_resume_seconds
    if threshold <= 0 or state.last_turn_at is None:
        return IdleResume(False, 0)
    gap = now - state.last_turn_at
    if gap < threshold:
        return IdleResume(False, 0)
    if state.raw_pin is not None or state.knowledge_pin is not None:
        state.raw_pin = None
        state.knowledge_pin = None
        state.dirty = True
    state.came_out_of_idle = True
    state.expected_cold = True
    state.post_idle_compact = not skip_compact
    return IdleResume(True, int(gap * 1000))


def after_transform(
    state: SessionState,
    *,
    layer: int,
    window_ids: Iterable[str],
    message_count: int,
    window_start: int,
    request_estimate: int,
    system_estimate: int,
    tools_estimate: int,
    now: float,
    urgent: bool,
    config: LoreConfig,
) -> bool:
    """Record a finished transform (ENGINE.md 8.8); True exactly when the high-layer count reaches
    ``config.high_layer_hint_turns`` (the caller logs a hint that the host may suggest compaction).

    Sets ``last_layer``, the window ids, ``last_input_count``, ``last_window_start``, the overhead-free
    estimates (``request_estimate`` covers messages sent + system + tools), ``last_turn_at = now`` (a new idle
    period) and marks the transform as awaiting its usage; counts layers >= 2 (reset below 2); raises the
    urgent flag when ``urgent``; consumes ``came_out_of_idle``. Example: ``after_transform(state, layer=2,
    window_ids=ids, message_count=40, window_start=31, request_estimate=52_000, system_estimate=900,
    tools_estimate=0, now=now, urgent=True, config=config)``.
    """
    # Until this transform's usage arrives, last_known_input still measures the previous paired request.
    state.usage_baseline = delta_baseline(state)
    state.last_layer = layer
    state.last_window_ids = frozenset(window_ids)
    state.last_input_count = message_count
    state.last_window_start = window_start
    state.last_request_estimate = request_estimate
    state.last_system_estimate = system_estimate
    state.last_tools_estimate = tools_estimate
    state.last_turn_at = now
    state.transformed_since_usage = True
    state.consecutive_high_layer = state.consecutive_high_layer + 1 if layer >= 2 else 0
    state.urgent_pending = state.urgent_pending or urgent
    state.came_out_of_idle = False
    state.dirty = True
    return state.consecutive_high_layer == config.high_layer_hint_turns


def is_idle(state: SessionState, *, now: float, config: LoreConfig) -> bool:
    """Whether the idle work should run now (ENGINE.md 9.1): once per idle period.

    Idle when ``now - last_turn_at >= idle_timeout_seconds`` (after a ``tool_use`` stop reason the agent is
    running a tool: ``tool_use_idle_seconds``, never less than the plain timeout) and the idle work has not
    run since the last transform (``idle_done_at`` unset or before ``last_turn_at``). Never idle before the
    first transform.
    """
    if state.last_turn_at is None:
        return False
    timeout = config.idle_timeout_seconds
    if state.last_stop_reason == "tool_use":
        timeout = max(timeout, config.tool_use_idle_seconds)
    if now - state.last_turn_at < timeout:
        return False
    return state.idle_done_at is None or state.idle_done_at < state.last_turn_at
