"""Layer 4, the terminal layer (ENGINE.md 8.7): a small tail around the whole current turn, or an error.

The tail budget is ``clamp(floor(0.25 x usable), 2_000, 8_000)``. The current turn is included whole; older
units are added walking back while they fit in ``tail - current``, their tool outputs stripped; the window
starts at a human message. If the fit test still fails, in order: drop the prefix; drop the older units [ours:
the current turn goes last]; strip the current turn's outputs except those of its last unit; cut its largest
texts to head + tail. Still over: :class:`~lore_core.errors.ContextOverflowError`, never a request the API
would refuse.
"""

from __future__ import annotations

from lore_core.context.budgets import Budgets, fits
from lore_core.context.cut import cut_largest
from lore_core.context.fit import Prefix, Window, collect, walk_back, window_start
from lore_core.context.strip import strip_message
from lore_core.context.turns import unit_start
from lore_core.context.view import TailView
from lore_core.errors import ContextOverflowError
from lore_core.messages import Message, has_tool_use
from lore_core.tokens import TokenCounter, estimate_message

__all__ = ["last_unit_start", "terminal"]


def last_unit_start(view: TailView) -> int:
    """The first index of the current turn's last unit (a trailing prefill does not count as that unit)."""
    messages, last = view.messages, len(view) - 1
    prefill = messages[last].get("role") == "assistant" and not has_tool_use(messages[last])
    if prefill and last > view.turn_start:
        last -= 1
    return max(unit_start(messages, last), view.turn_start)


def terminal(
    view: TailView,
    *,
    prefix: Prefix | None,
    budgets: Budgets,
    session_id: str,
    counter: TokenCounter,
) -> Window:
    """The layer-4 window; raises ``ContextOverflowError`` when even the cut current turn does not fit.

    ``prefix`` is the fresh render of ``select(rows, 2)``, never checked against a budget.
    Example: ``terminal(view, prefix=None, budgets=b, session_id="s1", counter=count_tokens).layer == 4``.
    """
    turn = view.turn_start
    start = walk_back(view, limit=budgets.layer4_tail - view.current_tokens, strip_before=turn)
    start = window_start(view, start)
    messages, raw = collect(view, start, strip_before=turn)
    if prefix is not None and fits(prefix.tokens + raw, budgets=budgets):
        return Window(layer=4, start=start, messages=messages, raw_tokens=raw, prefix=prefix)
    if fits(raw, budgets=budgets):
        return Window(layer=4, start=start, messages=messages, raw_tokens=raw, prefix=None)
    messages = messages[turn - start :]
    raw = view.current_tokens
    if fits(raw, budgets=budgets):
        return Window(layer=4, start=turn, messages=messages, raw_tokens=raw, prefix=None)
    messages, raw = _strip_current(view, messages, raw, counter=counter)
    if fits(raw, budgets=budgets):
        return Window(layer=4, start=turn, messages=messages, raw_tokens=raw, prefix=None)
    messages, raw = cut_largest(messages, raw - budgets.max_total, counter=counter)
    if fits(raw, budgets=budgets):
        return Window(layer=4, start=turn, messages=messages, raw_tokens=raw, prefix=None)
    raise ContextOverflowError(
        session_id=session_id, needed_tokens=budgets.needed(raw), limit_tokens=budgets.max_input
    )


def _strip_current(
    view: TailView, messages: list[Message], raw: int, *, counter: TokenCounter
) -> tuple[list[Message], int]:
    """Strip the outputs of the current turn before its last unit; the window must start at ``turn_start``."""
    turn = view.turn_start
    out = list(messages)
    for i in range(turn, last_unit_start(view)):
        original = view.messages[i]
        stripped = strip_message(original, view.messages[i - 1] if i > 0 else None, config=view.config)
        if stripped is not original:
            out[i - turn] = stripped
            raw += estimate_message(stripped, counter=counter) - view.history.tokens[i]
    return out, raw
