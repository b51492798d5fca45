"""Hypothesis strategies for the session property tests: agent-loop scenarios fed to ``transform``.

A :class:`Scenario` is one conversation plus everything the agent does around it: the history lengths at
which it calls ``transform`` (after each human message and after each batch of tool results, optionally a
final prefill), the session's window, the ``LoreConfig`` knobs, the system prompt and tool definitions, and
per call the clock gap before it and the usage the emulated API reports after it (the request's estimate plus
a hidden overhead, split into uncached / cache-write / cache-read).

Conversations hold text and string content, thinking blocks with signatures, redacted thinking and multi-step
tool chains with parallel calls (results as strings, text-block lists, empty, or errors, sometimes with a text
block after them; nested tool inputs). Repeated reads of a few paths and a pool of long outputs make the dedup
pre-pass fire. Each :data:`REGIMES` entry picks sizes that push a session towards some layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from lore_core import LoreConfig
from lore_core.context import turn_start
from lore_core.tokens import estimate_messages, estimate_system, estimate_tools

Msg = dict[str, Any]

WORDS = (
    "alpha",
    "beta",
    "fix",
    "the",
    "bug",
    "in",
    "src/app.py",
    "parse_config",
    "retryPolicy",
    "error",
    "timeout=30s",
    "ok",
    "cache",
    "v2.1.0",
)
PATHS = ("src/app.py", "src/db/models.py", "README.md")
# Outputs of >= 600 characters reused across calls: the dedup pre-pass replaces all but the latest.
LONG_OUTPUTS = ("A" * 700, "line of output\n" * 60)


Bands = tuple[float, float, float, float, float]
"""``LoreConfig`` (budget_raw, layer2_raw, layer3_raw, budget_distilled, layer3_distilled): the share of
``usable`` the current turn may take in stages 1, 2 and 3, and the prefix shares of stages 1-2 and 3."""
DEFAULT_BANDS: Bands = (0.40, 0.50, 0.55, 0.25, 0.15)


@dataclass(frozen=True, slots=True)
class Regime:
    """Size knobs: turn and round counts, tool-output sizes in lines, and how the window is chosen.

    ``windows`` empty means *pressure*: the conversation always resumes with a long history, and the window
    and the stage bands are derived from that first call so that it lands at a given layer 1-4 (see
    :func:`_pressure`).
    """

    name: str
    windows: tuple[int, ...]
    max_outputs: tuple[int | None, ...]
    first_overheads: tuple[int, ...]
    turns: tuple[int, int]
    rounds: tuple[int, int]
    last_rounds: tuple[int, int]
    lines: tuple[int, ...]
    last_lines: tuple[int, ...]
    segment_tokens: tuple[int, ...] = (16_384,)


REGIMES: dict[str, Regime] = {
    # Everything fits: layer 0 unless an idle gap compacts a distilled session.
    "roomy": Regime(
        name="roomy",
        windows=(200_000,),
        max_outputs=(None, 8_192),
        first_overheads=(15_000,),
        turns=(1, 5),
        rounds=(0, 2),
        last_rounds=(0, 2),
        lines=(1, 3, 12, 40),
        last_lines=(1, 3, 12, 40),
    ),
    # A long history resumed in one piece, the window and bands sized against that first call (layers 1-4).
    "pressure": Regime(
        name="pressure",
        windows=(),
        max_outputs=(1_000, 4_000),
        first_overheads=(300, 1_000),
        turns=(2, 5),
        rounds=(1, 3),
        last_rounds=(1, 4),
        lines=(8, 30, 90),
        last_lines=(30, 90, 200),
        segment_tokens=(600, 16_384),
    ),
}


@dataclass(slots=True)
class Scenario:
    """One example: the conversation and the agent's calls (see the module docstring)."""

    regime: str
    messages: list[Msg]
    points: list[int]
    """History lengths at which ``transform`` is called (increasing; each ends on a user message or a
    prefill)."""
    context_window: int
    max_output_tokens: int | None
    config: LoreConfig
    system: str | list[Msg] | None
    tools: list[Msg] | None
    gaps: list[float]
    """Seconds the clock moves before each call."""
    hidden: list[int]
    """Tokens the emulated API counts on top of the engine's estimate of what was sent, per call."""
    write_share: list[float]
    """Share of the reported input that is a cache write (> 0.5 is a cache bust), per call."""
    stop_reasons: list[str] = field(default_factory=list)


def _text(draw: st.DrawFn, low: int = 1, high: int = 12) -> str:
    return " ".join(draw(st.lists(st.sampled_from(WORDS), min_size=low, max_size=high)))


def _output(draw: st.DrawFn, lines: int) -> str:
    if draw(st.integers(0, 5)) == 0:
        return draw(st.sampled_from(LONG_OUTPUTS))
    path = draw(st.sampled_from(PATHS))
    seed = draw(st.integers(0, 99))
    return "\n".join(f"{path}:{n + 1}: value_{(n * 7 + seed) % 97} = compute({n}, 'x')" for n in range(lines))


def _human(draw: st.DrawFn) -> Msg:
    if draw(st.booleans()):
        return {"role": "user", "content": _text(draw)}
    block: Msg = {"type": "text", "text": _text(draw)}
    if draw(st.integers(0, 4)) == 0:
        block["cache_control"] = {"type": "ephemeral"}
    return {"role": "user", "content": [block]}


def _thoughts(draw: st.DrawFn) -> list[Msg]:
    blocks: list[Msg] = []
    if draw(st.integers(0, 3)) > 0:
        blocks.append(
            {"type": "thinking", "thinking": _text(draw, 1, 30), "signature": "EqQB" + _text(draw, 1, 2)}
        )
    if draw(st.integers(0, 3)) == 0:
        blocks.append({"type": "redacted_thinking", "data": "RW5jcnlwdGVk" * draw(st.integers(1, 30))})
    return blocks


def _call(draw: st.DrawFn, tool_id: str) -> Msg:
    name = draw(st.sampled_from(["read", "read", "bash", "grep", "edit"]))
    tool_input: Msg
    if name == "read":
        tool_input = {"path": draw(st.sampled_from(PATHS))}
        if draw(st.booleans()):
            tool_input["offset"] = draw(st.integers(1, 40))
            tool_input["limit"] = draw(st.integers(1, 40))
    elif name == "edit":
        tool_input = {
            "file_path": draw(st.sampled_from(PATHS)),
            "edits": [{"old": _text(draw, 1, 3), "new": _text(draw, 1, 3)}],
            "options": {"dry_run": draw(st.booleans()), "context": None},
        }
    else:
        tool_input = {"command": _text(draw, 1, 5), "timeout": draw(st.integers(1, 600))}
    return {"type": "tool_use", "id": tool_id, "name": name, "input": tool_input}


def _result(draw: st.DrawFn, tool_id: str, lines: tuple[int, ...]) -> Msg:
    kind = draw(st.sampled_from(["string", "string", "blocks", "empty", "error"]))
    block: Msg = {"type": "tool_result", "tool_use_id": tool_id}
    if kind == "string":
        block["content"] = _output(draw, draw(st.sampled_from(lines)))
    elif kind == "blocks":
        block["content"] = [
            {"type": "text", "text": _output(draw, draw(st.sampled_from(lines)))},
            {"type": "text", "text": _text(draw)},
        ]
    elif kind == "error":
        block["content"] = "Traceback (most recent call last):\nValueError: bad value in src/app.py"
        block["is_error"] = True
    return block


def _tool_round(draw: st.DrawFn, ids: list[int], lines: tuple[int, ...]) -> tuple[Msg, Msg]:
    tool_ids = []
    for _ in range(draw(st.integers(1, 3))):  # parallel calls
        ids[0] += 1
        tool_ids.append(f"toolu_{ids[0]:05d}")
    blocks = _thoughts(draw)
    if draw(st.booleans()):
        blocks.append({"type": "text", "text": _text(draw)})
    blocks += [_call(draw, tool_id) for tool_id in tool_ids]
    results = [_result(draw, tool_id, lines) for tool_id in draw(st.permutations(tool_ids))]
    if draw(st.integers(0, 4)) == 0:
        results.append({"type": "text", "text": _text(draw)})
    return {"role": "assistant", "content": blocks}, {"role": "user", "content": results}


@st.composite
def scenarios(draw: st.DrawFn, regime_name: str, target: int | None = None) -> Scenario:
    """A scenario of one regime (see :data:`REGIMES`); ``target`` is the layer of the first call under
    pressure (see :func:`_pressure`)."""
    regime = REGIMES[regime_name]
    messages: list[Msg] = []
    points: list[int] = []
    stop_reasons: list[str] = []
    ids = [0]
    turns = draw(st.integers(*regime.turns))
    for turn in range(turns):
        last = turn == turns - 1
        if stop_reasons:
            stop_reasons[-1] = "end_turn"
        messages.append(_human(draw))
        points.append(len(messages))
        stop_reasons.append("end_turn")
        for _ in range(draw(st.integers(*(regime.last_rounds if last else regime.rounds)))):
            stop_reasons[-1] = "tool_use"
            messages.extend(_tool_round(draw, ids, regime.last_lines if last else regime.lines))
            points.append(len(messages))
            stop_reasons.append("end_turn")
        if not last:
            answer = [*_thoughts(draw), {"type": "text", "text": _text(draw)}]
            messages.append({"role": "assistant", "content": answer})
    if draw(st.integers(0, 4)) == 0:  # a prefill: the agent starts the assistant's answer itself
        messages.append({"role": "assistant", "content": "Here is " + _text(draw, 1, 3)})
        points.append(len(messages))
        stop_reasons.append("end_turn")
    # A resumed conversation arrives in one piece (always under pressure): drop some leading calls.
    if len(points) > 2 and (not regime.windows or draw(st.integers(0, 3)) == 0):
        skip = draw(st.integers(len(points) // 2 if not regime.windows else 1, len(points) - 2))
        points, stop_reasons = points[skip:], stop_reasons[skip:]
    calls = len(points)
    first_overhead = draw(st.sampled_from(regime.first_overheads))
    max_output = draw(st.sampled_from(regime.max_outputs))
    hidden = draw(st.integers(40, 300))
    system: str | list[Msg] | None = draw(
        st.sampled_from(
            [
                None,
                "You are a careful coding agent.",
                [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
            ]
        )
    )
    tools: list[Msg] | None = None
    if draw(st.booleans()):
        tools = [
            {"name": name, "description": f"{name} a file", "input_schema": {"type": "object"}}
            for name in ("read", "bash", "grep", "edit")
        ]
    if regime.windows:
        window, bands = draw(st.sampled_from(regime.windows)), DEFAULT_BANDS
    else:
        # fixed: the system blocks, the layer note (~30), the knowledge blocks (~80) and the tools
        fixed = estimate_system(system) + 110 + estimate_tools(tools)
        layer = target if target is not None else draw(st.integers(1, 4))
        usable, bands = _pressure(messages[: points[0]], layer, draw(st.sampled_from([5_000, 9_000, 16_000])))
        window = usable + fixed + first_overhead + (max_output or 32_000)
    config = LoreConfig(
        budget_raw=bands[0],
        layer2_raw=bands[1],
        layer3_raw=bands[2],
        budget_distilled=bands[3],
        layer3_distilled=bands[4],
        first_turn_overhead_tokens=first_overhead,
        max_segment_tokens=draw(st.sampled_from(regime.segment_tokens)),
        knowledge_enabled=draw(st.booleans()),
        curator_enabled=False,
        validate_enabled=False,
        max_layer0_tokens=draw(st.sampled_from([0, 0, 0, window // 3])),
        cache_ttl=draw(st.sampled_from(["5m", "5m", "1h"])),
        meta_threshold=draw(st.sampled_from([6, 20])),
    )
    bursty = draw(st.integers(0, 3)) == 0  # a run of cache busts
    return Scenario(
        regime=regime.name,
        messages=messages,
        points=points,
        context_window=window,
        max_output_tokens=max_output,
        config=config,
        system=system,
        tools=tools,
        gaps=[draw(st.sampled_from([0.0, 5.0, 45.0, 301.0, 4_000.0])) for _ in range(calls)],
        hidden=[hidden + draw(st.integers(0, 40)) for _ in range(calls)],
        write_share=[0.9 if bursty else draw(st.sampled_from([0.0, 0.1, 0.3, 0.8])) for _ in range(calls)],
        stop_reasons=stop_reasons,
    )


def _pressure(sent: list[Msg], target: int, usable: int) -> tuple[int, Bands]:
    """``usable`` and the stage bands that put the first call (uncalibrated, no distillations yet, nothing
    sticky) at layer ``target`` (ENGINE 8.3, 8.4).

    ``usable`` stays under the history's total, so layer 0 does not fit. The current turn's share ``x`` of
    ``usable`` lies inside the target stage's band (bands at most 0.64, so that a filled window still passes
    the uncalibrated fit test): the default bands when they already do, else bands placed around ``x``; prefix
    shares of 0.3 for the later calls. Target 4 puts ``x`` above every band. A share no stage can hold (over
    0.6) falls back to the defaults.
    """
    current = estimate_messages(sent[turn_start(sent) :])
    usable = max(1, min(usable, int(estimate_messages(sent) / 1.1)))
    x = current / usable
    default = next((layer for layer, high in enumerate(DEFAULT_BANDS[:3], 1) if x <= high), 4)
    if default == target or x > 0.6:
        return usable, DEFAULT_BANDS
    raw1, raw2, raw3 = {
        1: (min(0.6, 1.5 * x), min(0.62, 1.5 * x + 0.02), min(0.64, 1.5 * x + 0.04)),
        2: (0.5 * x, min(0.62, 1.5 * x), min(0.64, 1.5 * x + 0.02)),
        3: (0.4 * x, 0.7 * x, min(0.64, 1.5 * x)),
        4: (0.3 * x, 0.5 * x, 0.7 * x),
    }[target]
    return usable, (raw1, raw2, raw3, 0.3, 0.3)
