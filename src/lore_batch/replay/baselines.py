"""What an agent without lore-memory would send: the two baselines of a replay, as pure request sequences.

Both send the whole history (system, then every message) until a limit, then **compact**: one extra call
sends the context the previous request held plus a short instruction, and gets back a summary; from then on
the context is the system, the summary and a recent tail of messages, and grows again from there.

- :data:`FULL_HISTORY` compacts only when the request would overflow the window (input + output reserve over
  the context window).
- :data:`COMPACT_AT_80` compacts when the input reaches 80% of the window (an agent's auto-compact).

The summary is 2% of the tokens it replaces (at least 1,000, at most 8,000); the tail keeps the most recent
messages up to 10% of the window. Like lore-memory's requests, each request carries the agent's cache
breakpoints: wherever the given system segments have one, and on the last message. Everything is a
:class:`~lore_batch.replay.simulate.SimRequest` priced later by the same simulator as lore-memory's own requests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from lore_batch.replay.simulate import Segment, SimRequest
from lore_core.errors import ConfigError

__all__ = [
    "COMPACT_AT_80",
    "FULL_HISTORY",
    "BaselineRun",
    "CompactionPolicy",
    "Turn",
    "run_baseline",
]

_INSTRUCTION: Final = Segment("compaction-instruction", 120)
"""The "summarise the conversation so far" message a compaction call appends."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CompactionPolicy:
    """When to compact (``trigger``: a fraction of the window, or ``None`` for "on overflow") and how."""

    name: str
    trigger: float | None
    summary_ratio: float = 0.02
    summary_min: int = 1_000
    summary_max: int = 8_000
    tail_fraction: float = 0.10

    def limit(self, *, context_window: int, output_reserve: int) -> int:
        """The largest input sent without compacting first."""
        if self.trigger is None:
            return context_window - output_reserve
        return min(math.floor(self.trigger * context_window), context_window - output_reserve)

    def summary_tokens(self, replaced: int) -> int:
        """The summary's size for ``replaced`` tokens of history."""
        return min(self.summary_max, max(self.summary_min, math.floor(self.summary_ratio * replaced)))


FULL_HISTORY: Final = CompactionPolicy(name="full_history", trigger=None)
COMPACT_AT_80: Final = CompactionPolicy(name="compaction_80", trigger=0.80)


@dataclass(frozen=True, slots=True, kw_only=True)
class Turn:
    """One model call of the recording: it sends messages ``[0, end)`` at ``at`` and gets ``output_tokens``."""

    end: int
    at: datetime
    output_tokens: int


@dataclass(frozen=True, slots=True, kw_only=True)
class BaselineRun:
    """A baseline's requests in time order; ``turn_index[i]`` is the turn of request ``i`` (compaction calls
    carry the turn they happen before) and ``compactions`` counts the compaction calls."""

    policy: CompactionPolicy
    requests: tuple[SimRequest, ...]
    turn_index: tuple[int, ...]
    is_compaction: tuple[bool, ...]

    @property
    def compactions(self) -> int:
        """How many compaction calls the baseline made."""
        return sum(self.is_compaction)


def run_baseline(
    policy: CompactionPolicy,
    *,
    system: Sequence[Segment],
    messages: Sequence[Segment],
    turns: Sequence[Turn],
    context_window: int,
    output_reserve: int,
) -> BaselineRun:
    """The requests ``policy`` makes for ``turns`` over ``messages`` (one segment per message).

    Raises:
        ConfigError: the window leaves no room for input, or turns go back in time or history.

    Example::

        run = run_baseline(FULL_HISTORY, system=[Segment("sys", 500)], messages=segs, turns=turns,
                           context_window=200_000, output_reserve=8_192)
        run.compactions   # 0 while the history fits
    """
    limit = policy.limit(context_window=context_window, output_reserve=output_reserve)
    if limit <= 0:
        raise ConfigError("the context window leaves no room for input")
    fixed = tuple(system)
    fixed_tokens = sum(segment.tokens for segment in fixed)
    tail_budget = math.floor(policy.tail_fraction * context_window)
    summary: Segment | None = None
    start = 0  # the first message still sent raw
    previous: tuple[Segment, ...] | None = None
    requests: list[SimRequest] = []
    turn_index: list[int] = []
    compaction: list[bool] = []
    last_end = 0
    for number, turn in enumerate(turns):
        if turn.end < last_end or turn.end > len(messages):
            raise ConfigError("turns must move forward through the messages")
        last_end = turn.end
        context = _context(fixed, summary, messages, start, turn.end)
        if _tokens(context) > limit:
            replaced = _tokens(context) - fixed_tokens
            source = previous if previous is not None and _tokens(previous) <= limit else context
            size = policy.summary_tokens(replaced)
            requests.append(SimRequest(at=turn.at, segments=(*source, _INSTRUCTION), output_tokens=size))
            turn_index.append(number)
            compaction.append(True)
            summary = Segment(f"summary:{policy.name}:{sum(compaction)}", size)
            start = _tail_start(
                messages, start, turn.end, budget=min(tail_budget, limit - fixed_tokens - size)
            )
            context = _context(fixed, summary, messages, start, turn.end)
        context = (*context[:-1], context[-1].marked()) if context else context
        requests.append(SimRequest(at=turn.at, segments=context, output_tokens=turn.output_tokens))
        turn_index.append(number)
        compaction.append(False)
        previous = context
    return BaselineRun(
        policy=policy,
        requests=tuple(requests),
        turn_index=tuple(turn_index),
        is_compaction=tuple(compaction),
    )


def _context(
    fixed: tuple[Segment, ...], summary: Segment | None, messages: Sequence[Segment], start: int, end: int
) -> tuple[Segment, ...]:
    head = (*fixed, summary) if summary is not None else fixed
    return (*head, *messages[start:end])


def _tokens(segments: Sequence[Segment]) -> int:
    return sum(segment.tokens for segment in segments)


def _tail_start(messages: Sequence[Segment], start: int, end: int, *, budget: int) -> int:
    """The first index of the longest run of messages ending at ``end`` that fits ``budget`` (at least the
    last message, so the request always ends with what the turn must answer)."""
    used = 0
    index = end
    while index > start and used + messages[index - 1].tokens <= budget:
        index -= 1
        used += messages[index].tokens
    return min(index, end - 1) if end > start else start
