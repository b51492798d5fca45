"""Builders for the context-assembly tests: messages, rows and an ``AssemblyInput`` with exact budgets.

The counter is ``len`` (one token per character), so a human message with string content of ``k`` characters
estimates ``k + 7`` tokens (4 per message + 3 per block) and every budget can be computed by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

from lore_core.config import LoreConfig
from lore_core.context import AssemblyInput, History
from lore_core.messages import Message
from lore_core.store.records import DistillationRecord

Msg = dict[str, Any]


def counter(text: str) -> int:
    """One token per character."""
    return len(text)


def user(content: Any) -> Msg:
    return {"role": "user", "content": content}


def assistant(content: Any) -> Msg:
    return {"role": "assistant", "content": content}


def text(value: str, **extra: Any) -> Msg:
    return {"type": "text", "text": value, **extra}


def tool_use(tool_id: str, name: str = "bash", tool_input: dict[str, Any] | None = None) -> Msg:
    return {
        "type": "tool_use",
        "id": tool_id,
        "name": name,
        "input": tool_input if tool_input is not None else {},
    }


def tool_result(tool_id: str, content: Any = "ok", **extra: Any) -> Msg:
    return {"type": "tool_result", "tool_use_id": tool_id, "content": content, **extra}


def image(data: str = "iVBORw0KGgo=") -> Msg:
    return {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}


def thinking(value: str = "let me think") -> Msg:
    return {"type": "thinking", "thinking": value, "signature": "c2lnbmF0dXJl" + str(len(value))}


def redacted(data: str = "ZW5jcnlwdGVk") -> Msg:
    return {"type": "redacted_thinking", "data": data}


def sized(role: str, tokens: int, tag: str = "x") -> Msg:
    """A string-content message estimating exactly ``tokens`` tokens with :func:`counter`."""
    assert tokens >= 8
    return {"role": role, "content": (tag * tokens)[: tokens - 7]}


def chat(turns: int, *, size: int = 100) -> list[Msg]:
    """``turns`` finished exchanges (human, assistant) of ``size`` tokens each, then a final human message."""
    messages: list[Msg] = []
    for i in range(turns):
        messages += [sized("user", size, f"q{i} "), sized("assistant", size, f"a{i} ")]
    messages.append(sized("user", size, "final "))
    return messages


def chain(prefix: str, steps: int, *, output: str = "out\n" * 30, name: str = "bash") -> list[Msg]:
    """``steps`` tool units: an assistant call and the user message with its result (all outputs distinct)."""
    messages: list[Msg] = []
    for s in range(steps):
        tool_id = f"{prefix}_{s}"
        messages.append(assistant([text(f"step {s}"), tool_use(tool_id, name, {"command": f"run {s}"})]))
        messages.append(user([tool_result(tool_id, output[:-4] + f"{s:>4}")]))
    return messages


def row(
    index: int,
    *,
    generation: int = 0,
    observations: str | None = None,
    sources: int = 3,
    r_compression: float = 2.0,
) -> DistillationRecord:
    return DistillationRecord(
        id=f"{index:08d}-aaaa-4bbb-8ccc-dddddddddddd",
        session_id="s1",
        project="p",
        generation=generation,
        kind="reflector" if generation else "observer",
        observations=observations
        if observations is not None
        else f"* yellow (10:{index % 60:02d}) row {index}",
        source_ids=tuple(f"m{index}-{j}" for j in range(sources)),
        source_tokens=100,
        token_count=10,
        r_compression=r_compression,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        seq=index,
    )


def history(messages: Sequence[Message]) -> History:
    return History.build(messages, counter=counter)


def make_input(messages: Sequence[Message], **overrides: Any) -> AssemblyInput:
    """An input with max_input 10,000 (usable 10,000: no fixed, no overhead), calibrated, at ``min_layer`` 1.

    Budgets: distilled 2,500, raw 4,000, post-idle 2,000, layer 2 5,000, layer 3 5,500 / 1,500, tail 2,500.
    """
    hist = overrides.pop("history") if "history" in overrides else history(messages)
    values: dict[str, Any] = {
        "history": hist,
        "session_id": "s1",
        "fixed_tokens": 0,
        "overhead": 0,
        "calibrated": True,
        "expected": hist.total,
        "context_window": 11_000,
        "max_output_tokens": 1_000,
        "min_layer": 1,
        "post_idle_compact": False,
        "rows": (),
        "prefix_cache": None,
        "raw_pin": None,
        "consecutive_busts": 0,
        "config": LoreConfig(),
        "counter": counter,
    }
    values.update(overrides)
    return AssemblyInput(**values)


def replace_input(inp: AssemblyInput, **changes: Any) -> AssemblyInput:
    values = {f.name: getattr(inp, f.name) for f in fields(AssemblyInput)}
    values.update(changes)
    return AssemblyInput(**values)
