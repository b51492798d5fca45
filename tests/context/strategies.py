"""Hypothesis strategies: valid conversations with every block kind, and inputs that reach each layer.

Conversations hold text and string content, images, thinking blocks with signatures, redacted thinking, and
multi-step tool chains with parallel calls (results as strings, as text + image lists, empty, or errors,
sometimes with text beside them). Reads of a few paths with offsets and limits, and a pool of long outputs,
make the dedup rules fire. The last turn may be unfinished (ending on results) or end with a prefill.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from lore_core.config import LoreConfig
from lore_core.context import AssemblyInput, History, update_prefix_cache
from lore_core.store.records import DistillationRecord, RawPin

from .builders import Msg, counter, image, row

WORDS = st.sampled_from(["alpha", "beta", "gamma", "fix", "bug", "src/app.py", "error", "ok", "line\n"])
LONG_OUTPUTS = ["A" * 700, "B\n" * 400, "line of output\n" * 60]  # >= 600 characters: dedup candidates


def _text(draw: st.DrawFn, low: int = 1, high: int = 12) -> str:
    return " ".join(draw(st.lists(WORDS, min_size=low, max_size=high))).strip() or "word"


def _human(draw: st.DrawFn) -> Msg:
    kind = draw(st.sampled_from(["string", "blocks", "image"]))
    if kind == "string":
        return {"role": "user", "content": _text(draw)}
    blocks: list[Msg] = [{"type": "text", "text": _text(draw)}]
    if kind == "image":
        blocks.insert(draw(st.integers(0, 1)), image())
    return {"role": "user", "content": blocks}


def _thoughts(draw: st.DrawFn) -> list[Msg]:
    blocks: list[Msg] = []
    if draw(st.booleans()):
        blocks.append({"type": "thinking", "thinking": _text(draw), "signature": "sig" + _text(draw, 1, 2)})
    if draw(st.integers(0, 3)) == 0:
        blocks.append({"type": "redacted_thinking", "data": "cmVkYWN0ZWQ=" * draw(st.integers(1, 4))})
    return blocks


def _call(draw: st.DrawFn, tool_id: str) -> Msg:
    name = draw(st.sampled_from(["read", "read", "bash", "grep", "view"]))
    if name in ("read", "view"):
        tool_input: dict[str, Any] = {"path": draw(st.sampled_from(["a.py", "b.py", "src/c.py"]))}
        if draw(st.booleans()):
            tool_input["offset"] = draw(st.integers(1, 30))
        if draw(st.booleans()):
            tool_input["limit"] = draw(st.integers(1, 30))
    else:
        tool_input = {"command": _text(draw, 1, 4)}
    return {"type": "tool_use", "id": tool_id, "name": name, "input": tool_input}


def _result(draw: st.DrawFn, tool_id: str) -> Msg:
    kind = draw(st.sampled_from(["short", "long", "long", "list", "empty", "error"]))
    block: Msg = {"type": "tool_result", "tool_use_id": tool_id}
    if kind == "short":
        block["content"] = _text(draw, 1, 30)
    elif kind == "long":
        block["content"] = draw(st.sampled_from(LONG_OUTPUTS))
    elif kind == "list":
        block["content"] = [{"type": "text", "text": draw(st.sampled_from(LONG_OUTPUTS))}, image()]
    elif kind == "error":
        block["content"] = "Traceback: error in src/app.py"
        block["is_error"] = True
    if draw(st.integers(0, 5)) == 0:
        block["cache_control"] = {"type": "ephemeral"}
    return block


@st.composite
def conversations(draw: st.DrawFn, max_turns: int = 7) -> list[Msg]:
    """A valid request history (``check_context`` passes) ending on a user message or a prefill."""
    messages: list[Msg] = []
    ids = iter(range(10_000))
    turns = draw(st.integers(1, max_turns))
    for turn in range(turns):
        last = turn == turns - 1
        messages.append(_human(draw))
        for _ in range(draw(st.integers(0, 3))):
            tool_ids = [f"toolu_{next(ids):04d}" for _ in range(draw(st.integers(1, 3)))]
            blocks = _thoughts(draw)
            if draw(st.booleans()):
                blocks.append({"type": "text", "text": _text(draw)})
            blocks += [_call(draw, tool_id) for tool_id in tool_ids]
            messages.append({"role": "assistant", "content": blocks})
            results = [_result(draw, tool_id) for tool_id in tool_ids]
            if draw(st.integers(0, 4)) == 0:
                results.append({"type": "text", "text": _text(draw)})
            messages.append({"role": "user", "content": results})
        if not last:
            messages.append(
                {"role": "assistant", "content": [*_thoughts(draw), {"type": "text", "text": _text(draw)}]}
            )
        elif draw(st.integers(0, 3)) == 0:
            messages.append({"role": "assistant", "content": "Sure, " + _text(draw, 1, 3)})
    return messages


@st.composite
def snapshots(draw: st.DrawFn) -> list[DistillationRecord]:
    count = draw(st.integers(0, 7))
    rows = [
        row(i, observations="* " + _text(draw, 1, 20), r_compression=draw(st.sampled_from([0.5, 2.0])))
        for i in range(count)
    ]
    if rows and draw(st.booleans()):
        rows.append(row(100, generation=1, observations="## Current State\n" + _text(draw, 1, 30)))
    return rows


@st.composite
def inputs(draw: st.DrawFn, *, min_layer: int | None = None, roomy: bool = False) -> AssemblyInput:
    """An input over a random conversation; ``roomy`` makes every stage fit, so ``min_layer`` is the layer."""
    messages = draw(conversations())
    history = History.build(messages, counter=counter)
    rows = draw(snapshots())
    calibrated = draw(st.booleans())
    overhead = draw(st.sampled_from([0, 500, 2_000]))
    fixed = draw(st.sampled_from([0, 300, 1_000]))
    if roomy:
        window, max_output = 10_000_000, 32_000
    else:
        window = draw(st.sampled_from([4_000, 8_000, 16_000, 40_000, 120_000]))
        max_output = draw(st.sampled_from([500, 1_000, 2_000]))
    cache = None
    if rows and draw(st.booleans()):
        cache = update_prefix_cache(None, rows[: draw(st.integers(0, len(rows)))], counter=counter)
    pin = None
    if draw(st.booleans()):
        total = draw(st.integers(1, len(messages) + 3))
        pin = RawPin(
            raw_count=draw(st.integers(1, total)), total_count=total, budget=draw(st.integers(10, 20_000))
        )
    config = LoreConfig(
        cache_ttl=draw(st.sampled_from(["5m", "1h"])),
        prefix_cache_breakpoint=draw(st.booleans()),
        max_layer0_tokens=0 if roomy else draw(st.sampled_from([0, 0, 3_000])),
    )
    return AssemblyInput(
        history=history,
        session_id="prop",
        fixed_tokens=fixed,
        overhead=overhead,
        calibrated=calibrated,
        expected=history.total + fixed + overhead + draw(st.integers(-500, 500)),
        context_window=window,
        max_output_tokens=max_output,
        min_layer=draw(st.integers(0, 4)) if min_layer is None else min_layer,
        post_idle_compact=bool(rows) and draw(st.booleans()),
        rows=rows,
        prefix_cache=cache,
        raw_pin=pin,
        consecutive_busts=draw(st.integers(0, 6)),
        config=config,
        counter=counter,
        system_breakpoints=draw(st.integers(0, 2)),
    )
