"""``assemble``: the pure layer selection of ENGINE.md 8.3 from step 4 on, through the returned request.

Sync, deterministic, no I/O and no clock: the same input gives byte-identical output. Layer 0 is O(1); the
gradient layers do work proportional to the part of the history they walk (their window and the current turn).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lore_core.config import LoreConfig
from lore_core.context.budgets import Budgets, budgets, layer0_size, should_compress
from lore_core.context.fit import Prefix, Window, pinned_fit, plain_fit
from lore_core.context.history import History
from lore_core.context.prefix import (
    PrefixCache,
    pair_tokens,
    prefix_pair,
    render_rows,
    select_rows,
    update_prefix_cache,
)
from lore_core.context.terminal import terminal
from lore_core.context.turns import turn_start
from lore_core.context.view import TailView
from lore_core.errors import InvalidMessagesError
from lore_core.invariants import check_context, scan_messages
from lore_core.messages import Message
from lore_core.store.records import DistillationRecord, RawPin
from lore_core.tokens import TokenCounter, count_tokens

__all__ = ["MAX_BREAKPOINTS", "Assembly", "AssemblyInput", "assemble"]

MAX_BREAKPOINTS = 4
"""The Messages API accepts at most four ``cache_control`` breakpoints per request."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AssemblyInput:
    """Everything one :func:`assemble` call reads; the session prepares it (docs/internal/transform-api.md).

    ``system_breakpoints`` [addition] counts the ``cache_control`` breakpoints of the system blocks and tools
    the session will send, so the prefix breakpoint never makes the request hold more than four.
    """

    history: History
    session_id: str
    fixed_tokens: int
    overhead: int
    calibrated: bool
    expected: int
    context_window: int
    max_output_tokens: int | None
    min_layer: int
    post_idle_compact: bool
    rows: Sequence[DistillationRecord]
    prefix_cache: PrefixCache | None
    raw_pin: RawPin | None
    consecutive_busts: int
    config: LoreConfig
    counter: TokenCounter = count_tokens
    system_breakpoints: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Assembly:
    """The request messages and what the session keeps from this call.

    ``messages`` is the caller's list object itself at layer 0, else ``[notice, render, *window]`` (the pair
    omitted without a prefix). ``prefix_cache`` and ``raw_pin`` are the values to keep; ``urgent`` asks for an
    urgent distillation (ENGINE.md 8.8); ``window_start`` / ``window_ids`` name the raw messages sent (0 / all
    ids at layer 0).
    """

    messages: Sequence[Message]
    layer: int
    distilled_tokens: int
    raw_tokens: int
    usable: int
    distilled_budget: int
    raw_budget: int
    prefix_cache: PrefixCache | None
    raw_pin: RawPin | None
    urgent: bool
    window_start: int
    window_ids: tuple[str, ...]

    @property
    def total_tokens(self) -> int:
        """``distilled_tokens + raw_tokens``."""
        return self.distilled_tokens + self.raw_tokens


def assemble(inp: AssemblyInput) -> Assembly:
    """Choose the layer and build the request messages (ENGINE.md 8.3 steps 4-7, 8.4-8.9).

    Layer 0 (the caller's list, untouched) when ``min_layer == 0`` and the layer-0 size fits the ceiling, or
    when the tier gate finds compression not worth a cache bust. Otherwise gradient mode: stages 1-3 from
    ``min_layer`` on, the first accepted wins, else layer 4. Every layer >= 1 output passes ``check_context``.

    Raises ``ContextOverflowError`` when even layer 4 cannot fit, ``InvalidMessagesError`` when the output
    breaks a request invariant (only possible for an invalid input).
    Example::

        result = assemble(AssemblyInput(history=History.build(messages), session_id="s1", fixed_tokens=900,
                                        overhead=15_000, calibrated=False, expected=40_000,
                                        context_window=200_000, max_output_tokens=None, min_layer=0,
                                        post_idle_compact=False, rows=(), prefix_cache=None, raw_pin=None,
                                        consecutive_busts=0, config=LoreConfig()))
        result.messages is messages    # layer 0
    """
    config = inp.config
    b = budgets(
        context_window=inp.context_window,
        max_output_tokens=inp.max_output_tokens,
        fixed_tokens=inp.fixed_tokens,
        overhead=inp.overhead,
        calibrated=inp.calibrated,
        config=config,
    )
    min_layer = min(max(inp.min_layer, 0), 4)
    if min_layer == 0 and _layer0(inp, b):
        return _passthrough(inp, b)
    return _gradient(inp, b, min_layer)


def _layer0(inp: AssemblyInput, b: Budgets) -> bool:
    size = layer0_size(inp.expected, budgets=b)
    if size <= b.ceiling:
        return True
    config = inp.config
    priced = config.cache_write_price_per_mtok is not None and config.cache_read_price_per_mtok is not None
    if priced and size <= b.max_input:
        return not should_compress(size, b.distilled + b.raw, inp.consecutive_busts, config=config)
    return False


def _passthrough(inp: AssemblyInput, b: Budgets) -> Assembly:
    ids = inp.history.ids
    return Assembly(
        messages=inp.history.messages,
        layer=0,
        distilled_tokens=0,
        raw_tokens=inp.history.total,
        usable=b.usable,
        distilled_budget=b.distilled,
        raw_budget=b.raw,
        prefix_cache=inp.prefix_cache,
        raw_pin=inp.raw_pin,
        urgent=False,
        window_start=0,
        window_ids=ids if isinstance(ids, tuple) else tuple(ids),
    )


def _fresh(rows: Sequence[DistillationRecord], k: int, counter: TokenCounter) -> Prefix | None:
    if not rows:
        return None
    text = render_rows(select_rows(rows, k))
    return Prefix(text, pair_tokens(text, counter=counter))


def _gradient(inp: AssemblyInput, b: Budgets, min_layer: int) -> Assembly:
    config, counter, rows = inp.config, inp.counter, inp.rows
    view = TailView(inp.history, turn_start=turn_start(inp.history.messages), config=config, counter=counter)
    cache = inp.prefix_cache
    window: Window | None = None
    if min_layer <= 2:
        if rows:
            cache = update_prefix_cache(inp.prefix_cache, rows, counter=counter)
        full = Prefix(cache.text, cache.tokens) if rows and cache is not None else None
        tokens = full.tokens if full is not None else 0
        if min_layer <= 1:
            window = pinned_fit(
                view,
                pin=inp.raw_pin,
                raw_budget=b.stage_raw(b.post_idle_raw if inp.post_idle_compact else b.raw, tokens),
                distilled_budget=b.distilled,
                prefix=full,
                hysteresis=config.pin_hysteresis,
                budgets=b,
            )
        if window is None:
            protect = min(view.turn_start, len(view) - config.layer2_protected_messages)
            window = plain_fit(
                view,
                layer=2,
                raw_budget=b.stage_raw(b.layer2_raw, tokens),
                distilled_budget=b.distilled,
                prefix=full,
                strip_before=max(protect, 0),
                budgets=b,
            )
    if window is None and min_layer <= 3:
        best = _fresh(rows, config.layer3_max_distillations, counter)
        window = plain_fit(
            view,
            layer=3,
            raw_budget=b.stage_raw(b.layer3_raw, best.tokens if best is not None else 0),
            distilled_budget=b.layer3_distilled,
            prefix=best,
            strip_before=view.turn_start,
            budgets=b,
        )
    if window is None:
        prefix = _fresh(rows, config.layer4_max_distillations, counter)
        window = terminal(view, prefix=prefix, budgets=b, session_id=inp.session_id, counter=counter)
    return _build(inp, b, window, cache)


def _build(inp: AssemblyInput, b: Budgets, window: Window, cache: PrefixCache | None) -> Assembly:
    # check_context on the output, in parts: one pass over the window validates it and counts the caller's
    # breakpoints, the prefix pair is checked on its own. The pair is a user message then an assistant
    # message without tool_use, so the window follows it exactly as it starts a list of its own: the output
    # passes check_context exactly when both parts do. On any failure the full check runs on the output, so
    # the error raised is the one check_context gives.
    error: InvalidMessagesError | None = None
    try:
        window_breakpoints = scan_messages(window.messages)
    except InvalidMessagesError as exc:
        error, window_breakpoints = exc, 0
    messages: list[Message] = []
    if window.prefix is not None:
        room = MAX_BREAKPOINTS - inp.system_breakpoints - window_breakpoints
        pair = prefix_pair(window.prefix.text, config=inp.config, breakpoint=room >= 1)
        try:
            scan_messages(pair)
        except InvalidMessagesError as exc:
            error = error or exc
        messages.extend(pair)
    messages.extend(window.messages)
    if error is not None or not messages:
        check_context(messages)
        if error is not None:
            raise error
    layer = window.layer
    return Assembly(
        messages=messages,
        layer=layer,
        distilled_tokens=window.distilled_tokens,
        raw_tokens=window.raw_tokens,
        usable=b.usable,
        distilled_budget=b.distilled,
        raw_budget=b.raw,
        prefix_cache=cache,
        raw_pin=window.pin if layer == 1 else None,
        urgent=layer >= 2 or window.prefix is None,
        window_start=window.start,
        window_ids=tuple(inp.history.ids[window.start :]),
    )
