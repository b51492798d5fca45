"""Stages 1-3: the plain fit and the pinned layer-1 window (ENGINE.md 8.4).

A window is ``[start, len(history))``: older whole units walked back from ``turn_start - 1`` while they fit,
then the start moved forward to a human message, then the whole current turn. Sizes are those of the messages
as they will be sent (after dedup, and after stripping where the stage strips: measured after stripping).
"""

from __future__ import annotations

from dataclasses import dataclass

from lore_core.context.budgets import Budgets, fits
from lore_core.context.turns import unit_start, window_start_at_or_after
from lore_core.context.view import TailView
from lore_core.messages import Message
from lore_core.store.records import RawPin

__all__ = ["Prefix", "Window", "collect", "pinned_fit", "plain_fit", "walk_back", "window_start"]


@dataclass(frozen=True, slots=True)
class Prefix:
    """A rendered prefix to send: the assistant-side ``text`` and the pair's estimate."""

    text: str
    tokens: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Window:
    """An accepted stage: the raw messages from history index ``start`` on, their total and the prefix."""

    layer: int
    start: int
    messages: list[Message]
    raw_tokens: int
    prefix: Prefix | None
    pin: RawPin | None = None

    @property
    def distilled_tokens(self) -> int:
        """The prefix estimate, 0 without a prefix."""
        return self.prefix.tokens if self.prefix is not None else 0


def walk_back(view: TailView, *, limit: int, strip_before: int) -> int:
    """The start after adding whole units back from ``turn_start - 1`` while ``older + unit <= limit``.

    Stops at the first unit that does not fit (no skipping); messages before ``strip_before`` count stripped.
    Cost: the units walked plus one.
    """
    older, start = 0, view.turn_start
    last = start - 1
    while last >= 0:
        first = unit_start(view.messages, last)
        size = sum(view.size(i, strip=i < strip_before) for i in range(first, last + 1))
        if older + size > limit:
            break
        older += size
        start, last = first, first - 1
    return start


def window_start(view: TailView, index: int) -> int:
    """The first human message at or after ``index``, never past ``turn_start`` (which always qualifies)."""
    return min(window_start_at_or_after(view.messages, index), view.turn_start)


def collect(view: TailView, start: int, *, strip_before: int) -> tuple[list[Message], int]:
    """The messages of ``[start, len)`` as sent (stripped before ``strip_before``) and their estimate."""
    messages: list[Message] = []
    total = 0
    for i in range(start, len(view)):
        strip = i < strip_before
        messages.append(view.get(i, strip=strip))
        total += view.size(i, strip=strip)
    return messages, total


def plain_fit(
    view: TailView,
    *,
    layer: int,
    raw_budget: int,
    distilled_budget: int,
    prefix: Prefix | None,
    strip_before: int,
    budgets: Budgets,
) -> Window | None:
    """``try_fit``: the window of one stage, or None when the stage fails (ENGINE.md 8.4).

    Fails when the prefix is over ``distilled_budget``, when the current turn alone is over ``raw_budget``, or
    when the result does not pass the fit test. ``strip_before`` is where stripping ends (0: none).
    """
    prefix_tokens = prefix.tokens if prefix is not None else 0
    if prefix is not None and prefix_tokens > distilled_budget:
        return None
    if view.current_tokens > raw_budget:
        return None
    start = walk_back(view, limit=raw_budget - view.current_tokens, strip_before=strip_before)
    start = window_start(view, start)
    messages, raw = collect(view, start, strip_before=strip_before)
    if not fits(prefix_tokens + raw, budgets=budgets):
        return None
    return Window(layer=layer, start=start, messages=messages, raw_tokens=raw, prefix=prefix)


def pinned_fit(
    view: TailView,
    *,
    pin: RawPin | None,
    raw_budget: int,
    distilled_budget: int,
    prefix: Prefix | None,
    hysteresis: float,
    budgets: Budgets,
) -> Window | None:
    """``try_fit_stable``: layer 1 keeps the pinned window while it stays within the hysteresis margin.

    With a pin, ``size = raw_count + max(0, len - total_count)`` and the window starts at ``len - size``
    (moved to a human message, never past the current turn). It is accepted when its tokens are <= ``(1 +
    hysteresis) x max(pin.budget, raw_budget)`` and the fit test passes; above ``(1 + hysteresis) x
    pin.budget`` the pin is renewed at the current size, length and budget (high-water). Without a pin, or
    when the pinned window overflows: a plain fit without stripping, pinned when it holds a raw message.
    """
    prefix_tokens = prefix.tokens if prefix is not None else 0
    if prefix is not None and prefix_tokens > distilled_budget:
        return None
    n = len(view)
    if pin is not None:
        size = pin.raw_count + max(0, n - pin.total_count)
        start = window_start(view, min(max(0, n - size), view.turn_start))
        limit = (1 + hysteresis) * max(pin.budget, raw_budget)
        tokens = 0
        for i in range(n - 1, start - 1, -1):
            tokens += view.tokens(i)
            if tokens > limit:
                break
        if tokens <= limit and fits(prefix_tokens + tokens, budgets=budgets):
            kept = pin
            if tokens > (1 + hysteresis) * pin.budget:
                kept = RawPin(raw_count=n - start, total_count=n, budget=raw_budget)
            messages = [view.message(i) for i in range(start, n)]
            return Window(layer=1, start=start, messages=messages, raw_tokens=tokens, prefix=prefix, pin=kept)
    window = plain_fit(
        view,
        layer=1,
        raw_budget=raw_budget,
        distilled_budget=distilled_budget,
        prefix=prefix,
        strip_before=0,
        budgets=budgets,
    )
    if window is None:
        return None
    new_pin = (
        RawPin(raw_count=n - window.start, total_count=n, budget=raw_budget) if n > window.start else None
    )
    return Window(
        layer=1,
        start=window.start,
        messages=window.messages,
        raw_tokens=window.raw_tokens,
        prefix=prefix,
        pin=new_pin,
    )
