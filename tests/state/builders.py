"""Small builders for the state-machine tests: a fresh state and a one-call transform/usage turn."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lore_core.config import LoreConfig
from lore_core.state import SessionState, after_transform, record_usage

CONFIG = LoreConfig()
T0 = 1_700_000_000.0
MODEL = "claude-sonnet-4-5"


def make_state(session_id: str = "s1", *, model: str = MODEL, **fields: Any) -> SessionState:
    """A fresh state for ``session_id`` with some fields overridden."""
    state = SessionState(session_id=session_id, project="default", model=model)
    for name, value in fields.items():
        setattr(state, name, value)
    return state


def transform(
    state: SessionState,
    *,
    layer: int = 0,
    window_ids: Iterable[str] = ("a", "b"),
    message_count: int | None = None,
    window_start: int = 0,
    request_estimate: int = 10_000,
    system_estimate: int = 0,
    tools_estimate: int = 0,
    now: float = T0,
    urgent: bool = False,
    config: LoreConfig = CONFIG,
) -> bool:
    """``after_transform`` with defaults; ``message_count`` defaults to the window size."""
    ids = tuple(window_ids)
    return after_transform(
        state,
        layer=layer,
        window_ids=ids,
        message_count=len(ids) if message_count is None else message_count,
        window_start=window_start,
        request_estimate=request_estimate,
        system_estimate=system_estimate,
        tools_estimate=tools_estimate,
        now=now,
        urgent=urgent,
        config=config,
    )


def usage(uncached: int = 0, write: int = 0, read: int = 0) -> dict[str, object]:
    """An API usage dict with the SDK's keys."""
    return {
        "input_tokens": uncached,
        "cache_creation_input_tokens": write,
        "cache_read_input_tokens": read,
        "output_tokens": 10,
    }


def warm_up(state: SessionState, *, actual: int = 20_000, estimate: int = 12_000) -> None:
    """One cold turn (transform + usage) so the session is calibrated and no longer expected cold."""
    transform(state, request_estimate=estimate)
    record_usage(state, usage(uncached=actual), stop_reason="end_turn", model=None, config=CONFIG)


def bust_turn(state: SessionState, *, bust: bool, config: LoreConfig = CONFIG) -> None:
    """One transform + usage whose usage is (or is not) a cache bust."""
    transform(state, config=config)
    write, read = (9_000, 1_000) if bust else (1_000, 9_000)
    record_usage(state, usage(write=write, read=read), stop_reason="end_turn", model=None, config=config)
