"""Tool units and token-based segmentation of undistilled messages (ENGINE.md 2 "Tool units" and 4.3).

A *unit* is what must never be separated: a plain message alone, or an assistant message that called tools
together with the ``tool_results`` row(s) answering it (``unit_id`` = the assistant row's id). A *segment*
is a run of whole units that one observer call distils. Sizes are the rows' stored ``tokens``.

Splitting follows ENGINE.md 4.3: everything under ``max_segment_tokens`` is one segment; otherwise a single
unit is a segment however large (the base case that stops the recursion, pitfall 19); else the best time
gap splits (the largest gap with ``min_segment_tokens`` on each side, used when it is >=
``segment_gap_multiplier`` x the median gap), else the cap splits at the first unit that makes the running
sum exceed the maximum. A right remainder under ``min_segment_tokens`` merges into the last left segment.
Order and identity are preserved. The recursion runs on an explicit stack, so a long history cannot exhaust
Python's recursion limit.
"""

from __future__ import annotations

import statistics
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

from lore_core.config import LoreConfig
from lore_core.store.records import MessageRecord

__all__ = ["Segment", "Unit", "segment", "units_of"]

Unit = tuple[MessageRecord, ...]
"""One or more rows that segmentation, windows and dedup never separate."""


@dataclass(frozen=True, slots=True)
class Segment:
    """A run of whole units distilled by one call; ``tokens`` is the sum of the rows' stored tokens.

    Example::

        seg = Segment(records=(r1, r2), tokens=r1.tokens + r2.tokens)
        seg.ids   # (r1.id, r2.id)
    """

    records: tuple[MessageRecord, ...]
    tokens: int

    @property
    def ids(self) -> tuple[str, ...]:
        """The message ids of the segment, in order (the ``source_ids`` of the row it becomes)."""
        return tuple(record.id for record in self.records)


def units_of(records: Sequence[MessageRecord]) -> list[Unit]:
    """Group ``records`` (in position order) into units; never reorders, drops or duplicates a row.

    A ``tool_results`` row joins the current unit when its ``unit_id`` is the id of the assistant row that
    opened that unit (several result rows for one call message all join it); every other row opens a unit.
    Never raises.

    Example::

        units_of([question, call, results, answer])   # [(question,), (call, results), (answer,)]
    """
    units: list[list[MessageRecord]] = []
    for record in records:
        if units and _joins(record, units[-1][0]):
            units[-1].append(record)
        else:
            units.append([record])
    return [tuple(unit) for unit in units]


def _joins(record: MessageRecord, head: MessageRecord) -> bool:
    return (
        record.kind == "tool_results"
        and record.unit_id is not None
        and head.role == "assistant"
        and record.unit_id == head.id
    )


def segment(records: Sequence[MessageRecord], *, config: LoreConfig) -> list[Segment]:
    """Split ``records`` (one session's undistilled rows, in position order) into segments per ENGINE.md 4.3.

    Returns ``[]`` for no records. Every record appears in exactly one segment, in its original order; units
    are never split. A segment is at most ``max_segment_tokens`` unless it is a single unit, or ends with a
    merged remainder of fewer than ``min_segment_tokens`` tokens. Never raises.

    Example::

        segment(records, config=LoreConfig(max_segment_tokens=8_192))   # [Segment(...), Segment(...)]
    """
    units = units_of(records)
    if not units:
        return []
    spans = _Spans.of(units, config)
    groups: list[list[int]] = []  # unit indexes of each segment
    # (start, end, is_right_side): processed last-in first-out, so a left side is finished before its right.
    stack: list[tuple[int, int, bool]] = [(0, len(units), False)]
    while stack:
        start, end, is_right = stack.pop()
        if is_right and groups and spans.total(start, end) < config.min_segment_tokens:
            groups[-1].extend(range(start, end))
            continue
        cut = spans.cut(start, end)
        if cut is None:
            groups.append(list(range(start, end)))
            continue
        stack.append((cut, end, True))
        stack.append((start, cut, False))
    return [_make_segment([record for i in group for record in units[i]]) for group in groups]


def _make_segment(records: list[MessageRecord]) -> Segment:
    return Segment(records=tuple(records), tokens=sum(record.tokens for record in records))


@dataclass(frozen=True, slots=True, kw_only=True)
class _Spans:
    """Token sums and split points over unit index ranges ``[start, end)``.

    ``prefix[i]`` is the token sum of the first ``i`` units (non-decreasing, so side sizes bisect);
    ``gaps[i]`` is the time in seconds between unit ``i`` and unit ``i + 1`` (clock skew counts as 0).
    """

    prefix: list[int]
    gaps: list[float]
    config: LoreConfig

    @classmethod
    def of(cls, units: list[Unit], config: LoreConfig) -> _Spans:
        prefix = [0]
        for unit in units:
            prefix.append(prefix[-1] + sum(record.tokens for record in unit))
        gaps = [
            max((_first_at(right) - _last_at(left)).total_seconds(), 0.0) for left, right in pairwise(units)
        ]
        return cls(prefix=prefix, gaps=gaps, config=config)

    def total(self, start: int, end: int) -> int:
        return self.prefix[end] - self.prefix[start]

    def cut(self, start: int, end: int) -> int | None:
        """The index of the first unit of the right side, or None when the span is one segment."""
        if end - start <= 1 or self.total(start, end) <= self.config.max_segment_tokens:
            return None
        gap_cut = self._gap_cut(start, end)
        return gap_cut if gap_cut is not None else self._cap_cut(start, end)

    def _gap_cut(self, start: int, end: int) -> int | None:
        floor = self.config.min_segment_tokens
        # Cuts c (the right side starts at unit c) whose sides both hold >= floor tokens form one range.
        first = max(bisect_left(self.prefix, self.prefix[start] + floor, start + 1, end), start + 1)
        last = bisect_right(self.prefix, self.prefix[end] - floor, start, end) - 1
        if first > last:
            return None
        candidates = self.gaps[first - 1 : last]  # gaps[c - 1] lies before unit c
        best_gap = max(candidates)
        if best_gap <= 0:
            return None
        median = statistics.median(self.gaps[start : end - 1])
        if best_gap < self.config.segment_gap_multiplier * median:
            return None
        return first + candidates.index(best_gap)  # the earliest of equal gaps

    def _cap_cut(self, start: int, end: int) -> int:
        # The first unit whose running sum exceeds the maximum; at least one unit stays on the left.
        index = bisect_right(self.prefix, self.prefix[start] + self.config.max_segment_tokens, start, end) - 1
        return max(index, start + 1)


def _first_at(unit: Unit) -> datetime:
    return unit[0].created_at


def _last_at(unit: Unit) -> datetime:
    return unit[-1].created_at
