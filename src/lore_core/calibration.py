"""Calibration and cache-bust tracking for one session (ENGINE.md 3.2, 3.3 and 8.8): pure, no I/O, no clock.

The engine never sees the main model's tokenizer; it learns how far its own estimate falls short from the
usage the caller reports after each response. Everything here reads and writes the one
:class:`~lore_core.state.SessionState` passed in by its owner; nothing lives in a process global (pitfall 1).

- :func:`expected_input` predicts the input size of a full passthrough of the caller's messages.
- :func:`record_usage` pairs a reported usage with the latest transform: it updates the per-model overhead EMA
  (a sample is ``actual - est(request actually sent)``, pitfall 2), the delta baseline, and the bust counter.

Delta baseline: ``last_known_input`` is the real size of one particular request. The calibrated formula adds
what changed since *that* request, so it needs the window ids and system/tools estimates of the transform that
produced it. Normally that is the latest transform (``last_window_ids`` ...); while a transform still awaits
its usage (or never gets one: a failed API call, a retry), the older, paired values wait in
:attr:`SessionState.usage_baseline`, so the delta is never measured against a request of unknown size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lore_core.config import LoreConfig

if TYPE_CHECKING:
    from lore_core.state import SessionState

__all__ = [
    "DeltaBaseline",
    "UsageOutcome",
    "bust_pressure",
    "delta_baseline",
    "expected_input",
    "read_usage",
    "record_usage",
    "unsustainable",
]


@dataclass(frozen=True, slots=True)
class DeltaBaseline:
    """What the transform that ``last_known_input`` measured sent: its window ids, system and tools
    estimates, the message count it saw and the index of its first raw message."""

    window_ids: frozenset[str]
    system_estimate: int
    tools_estimate: int
    input_count: int
    window_start: int


def delta_baseline(state: SessionState) -> DeltaBaseline:
    """The baseline the calibrated expected input is measured from (see the module docstring).

    ``state.usage_baseline`` while the latest transform still awaits its usage, else the latest transform's
    values. A caller with running token sums may use ``input_count`` and ``window_start`` for an O(new)
    version of :func:`expected_input`: messages at ``[input_count, len)`` and ``[0, window_start)`` are new.
    """
    if state.usage_baseline is not None:
        return state.usage_baseline
    return DeltaBaseline(
        state.last_window_ids,
        state.last_system_estimate,
        state.last_tools_estimate,
        state.last_input_count,
        state.last_window_start,
    )


@dataclass(frozen=True, slots=True)
class UsageOutcome:
    """What :func:`record_usage` did.

    ``calibrated_sample`` is the overhead sample folded into the EMA (None: no calibration change); ``bust``
    says whether the turn counted as a cache bust (None: not judged, e.g. an expected-cold or unpaired turn);
    ``actual`` is ``input + cache_creation + cache_read`` of the usage.
    """

    calibrated_sample: int | None
    bust: bool | None
    actual: int


_USAGE_KEYS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


def _count(usage: Mapping[str, object] | object, key: str) -> int:
    value = usage.get(key) if isinstance(usage, Mapping) else getattr(usage, key, None)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"usage.{key} must be an integer or None (got {type(value).__name__})")
    return max(0, int(value))


def read_usage(usage: Mapping[str, object] | object) -> tuple[int, int, int]:
    """``(uncached_input, cache_write, cache_read)`` of an SDK ``Usage`` or a dict with the same keys.

    Missing or None counts are 0; negative counts are clamped to 0.

    Raises:
        TypeError: a count is neither a number nor None.

    Example::

        read_usage({"input_tokens": 10, "cache_read_input_tokens": 90})  # (10, 0, 90)
    """
    uncached, write, read = (_count(usage, key) for key in _USAGE_KEYS)
    return uncached, write, read


def expected_input(
    state: SessionState,
    *,
    message_ids: Sequence[str],
    message_tokens: Sequence[int],
    system_estimate: int,
    tools_estimate: int,
    config: LoreConfig,
) -> int:
    """The expected input size of sending every message as is (ENGINE.md 3.3), never negative.

    Calibrated: ``last_known_input`` + the estimates of messages whose id was not in the baseline window
    (messages evicted by the previous compression count as new, which errs safe) + the system and tools
    deltas.
    Uncalibrated: ``sum(message_tokens) + system_estimate + tools_estimate + overhead``; the uncalibrated
    safety factor is applied by the caller, to every size decision.

    ``message_tokens[i]`` is the overhead-free estimate of the message with id ``message_ids[i]``.

    Complexity: uncalibrated, one C-level ``sum`` over ``message_tokens`` (``message_ids`` is not read);
    calibrated, one pass over both sequences with an O(1) set lookup per message. No message is re-estimated.

    Raises:
        ValueError: calibrated, and the two sequences differ in length.

    Example::

        expected = expected_input(state, message_ids=ids, message_tokens=tokens, system_estimate=120,
                                  tools_estimate=0, config=config)
    """
    if not state.calibrated:
        return max(0, sum(message_tokens) + system_estimate + tools_estimate + state.overhead(config))
    base = delta_baseline(state)
    window = base.window_ids
    if window:
        pairs = zip(message_ids, message_tokens, strict=True)
        new = sum(tokens for id_, tokens in pairs if id_ not in window)
    else:
        new = sum(message_tokens)
    delta = (system_estimate - base.system_estimate) + (tools_estimate - base.tools_estimate)
    return max(0, state.last_known_input + new + delta)


def record_usage(
    state: SessionState,
    usage: Mapping[str, object] | object,
    *,
    stop_reason: str | None,
    model: str | None,
    config: LoreConfig,
) -> UsageOutcome:
    """Learn from one API response's usage (ENGINE.md 3.2 and the busts of 8.8).

    ``model`` is the model the usage is for, ``None`` for the session's current model. Pass the session's
    model name, not ``response.model``: a dated id never equals the session's model, so it never calibrates.

    Rules, in order:

    - ``actual == 0`` (input + cache writes + cache reads): nothing changes.
    - ``last_stop_reason = stop_reason`` (idle detection).
    - No transform since the previous usage (unpaired): nothing else changes.
    - Paired: ``sample = max(0, actual - last_request_estimate)``; the (session, model) overhead becomes the
      sample the first time, then ``round((1 - w) * old + w * sample)`` with ``w = calibration_new_weight``;
      ``last_known_input = actual``, ``last_usage_model = model``; the last transform becomes the delta
      baseline.
    - Busts (paired turns only): an expected-cold turn (first transform, after an idle-resume trigger or a
      model switch) is not judged and clears ``expected_cold``; otherwise
      ``write / (write + read + uncached) > bust_ratio`` adds one to ``consecutive_busts``, anything else
      resets it to 0.

    Raises:
        TypeError: a usage count is neither a number nor None.

    Example::

        outcome = record_usage(state, response.usage, stop_reason=response.stop_reason, model=None,
                               config=config)
    """
    uncached, write, read = read_usage(usage)
    actual = uncached + write + read
    if actual == 0:
        return UsageOutcome(None, None, 0)
    if state.last_stop_reason != stop_reason:
        state.last_stop_reason = stop_reason
        state.dirty = True
    if not state.transformed_since_usage:
        return UsageOutcome(None, None, actual)
    state.transformed_since_usage = False
    used_model = state.model if model is None else model
    sample = max(0, actual - state.last_request_estimate)
    old = state.calibration.get(used_model)
    weight = config.calibration_new_weight
    state.calibration[used_model] = sample if old is None else round((1.0 - weight) * old + weight * sample)
    state.last_known_input = actual
    state.last_usage_model = used_model
    state.usage_baseline = None  # the latest transform's window and estimates are the baseline now
    state.dirty = True
    bust: bool | None = None
    if state.expected_cold:
        state.expected_cold = False
    else:
        bust = write / actual > config.bust_ratio
        state.consecutive_busts = state.consecutive_busts + 1 if bust else 0
    return UsageOutcome(sample, bust, actual)


def unsustainable(state: SessionState, config: LoreConfig) -> bool:
    """``consecutive_busts >= config.unsustainable_busts`` (ENGINE.md 8.8: flag every return path)."""
    return state.consecutive_busts >= config.unsustainable_busts


def bust_pressure(state: SessionState, config: LoreConfig) -> bool:
    """``consecutive_busts >= config.bust_pressure_turns`` (lowers the meta threshold, ENGINE.md 5)."""
    return state.consecutive_busts >= config.bust_pressure_turns
