"""Property tests over random conversations, at every layer (ENGINE.md 8.9 invariants).

For every output: layer 0 is the caller's list object; otherwise ``check_context`` holds, the window after the
prefix is a contiguous run of the caller's messages starting at a human message, thinking / redacted thinking
blocks, ``tool_use`` blocks (and inputs) and top-level images are the caller's objects, only ``tool_result``
contents (and, at layer 4, current-turn texts) are replaced, the current turn is never stripped at layers 1-3,
the fit test holds, the estimates add up, the caller's history is unchanged and the output is deterministic.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from lore_core.context import (
    NOTICE_TEXT,
    Assembly,
    AssemblyInput,
    budgets,
    dedup_outputs,
    fits,
    is_human,
    turn_start,
)
from lore_core.context.view import TailView
from lore_core.errors import ContextOverflowError
from lore_core.invariants import check_context
from lore_core.tokens import estimate_messages

from .builders import counter
from .strategies import conversations, inputs

KEPT_BLOCKS = ("thinking", "redacted_thinking", "tool_use", "image", "document")
NOTES = ("[output omitted:", "[duplicate output:", "[earlier read of ")


def _run(inp: AssemblyInput) -> Assembly | None:
    overflow: ContextOverflowError | None = None
    try:
        result = assemble_checked(inp)
    except ContextOverflowError as error:
        overflow = error
    if overflow is not None:
        assert overflow.needed_tokens > overflow.limit_tokens
        assert overflow.session_id == "prop"
        event("overflow")
        return None
    event(f"layer {result.layer}")
    return result


def assemble_checked(inp: AssemblyInput) -> Assembly:
    from lore_core.context import assemble

    before = json.dumps(list(inp.history.messages), sort_keys=True)
    result = assemble(inp)
    assert json.dumps(list(inp.history.messages), sort_keys=True) == before  # the caller's data is untouched
    again = assemble(inp)
    assert again == result
    assert json.dumps(list(again.messages), sort_keys=True) == json.dumps(
        list(result.messages), sort_keys=True
    )
    _check(inp, result)
    return result


def _check(inp: AssemblyInput, result: Assembly) -> None:
    history = inp.history
    if result.layer == 0:
        assert inp.min_layer == 0
        assert result.messages is history.messages
        assert not result.urgent
        return
    assert result.layer >= inp.min_layer
    messages = list(result.messages)
    check_context(messages)
    b = budgets(
        context_window=inp.context_window,
        max_output_tokens=inp.max_output_tokens,
        fixed_tokens=inp.fixed_tokens,
        overhead=inp.overhead,
        calibrated=inp.calibrated,
        config=inp.config,
    )
    assert result.total_tokens == estimate_messages(messages, counter=counter)
    assert fits(result.total_tokens, budgets=b)
    prefix = result.distilled_tokens > 0
    assert prefix == (messages[0]["content"] == [{"type": "text", "text": NOTICE_TEXT}])
    if result.layer < 4:
        assert prefix == bool(inp.rows)
    window = messages[2:] if prefix else messages
    start = result.window_start
    assert len(window) == len(history) - start
    assert result.window_ids == tuple(history.ids[start:])
    assert is_human(window[0])
    current = turn_start(history.messages)
    assert start <= current
    for index, sent in enumerate(window, start):
        _check_message(history.messages[index], sent, layer=result.layer, current=index >= current)
    assert result.urgent == (result.layer >= 2 or not prefix)
    assert (result.raw_pin is None) or result.layer == 1
    caller_marks = sum(_marks(m) for m in window)
    if caller_marks + inp.system_breakpoints <= 4:
        assert sum(_marks(m) for m in messages) + inp.system_breakpoints <= 4


def _marks(message: Mapping[str, Any]) -> int:
    content = message["content"]
    if isinstance(content, str):
        return 0
    count = 0
    for block in content:
        count += "cache_control" in block
        if block.get("type") == "tool_result" and isinstance(block.get("content"), list):
            count += sum("cache_control" in item for item in block["content"])
    return count


def _check_message(
    original: Mapping[str, Any], sent: Mapping[str, Any], *, layer: int, current: bool
) -> None:
    if sent is original:
        return
    assert not (current and layer < 4), "the current turn was changed below layer 4"
    assert sent["role"] == original["role"]
    assert {k: v for k, v in sent.items() if k != "content"} == {
        k: v for k, v in original.items() if k != "content"
    }
    if isinstance(original["content"], str):
        assert layer == 4
        assert current
        assert "cut to fit the context window" in sent["content"]
        return
    assert len(sent["content"]) == len(original["content"])  # no block is ever removed
    for before, after in zip(original["content"], sent["content"], strict=True):
        if before["type"] in KEPT_BLOCKS:
            assert after is before
        elif after is not before:
            _check_replaced(before, after, layer=layer, current=current)


def _check_replaced(
    before: Mapping[str, Any], after: Mapping[str, Any], *, layer: int, current: bool
) -> None:
    assert after["type"] == before["type"]
    if before["type"] == "text":
        assert layer == 4
        assert current
        assert "cut to fit the context window" in after["text"]
        event("cut a text")
        return
    assert before["type"] == "tool_result"
    assert {k: v for k, v in after.items() if k != "content"} == {
        k: v for k, v in before.items() if k != "content"
    }
    content = after["content"]
    if isinstance(content, str) and content.startswith(NOTES):
        if current:
            assert content.startswith("[output omitted:"), "the dedup pre-pass changed the current turn"
        if layer == 1 or (current and layer < 4):
            assert not content.startswith("[output omitted:"), "stripped at layer 1 or in the current turn"
        event(f"{content[:12]}{' (current turn)' if current else ''}")
        return
    assert layer == 4, "a tool output was changed other than by an annotation"
    assert current, "a tool output was changed other than by an annotation"
    event("cut an output")


@settings(max_examples=70, deadline=None)
@given(inp=inputs())
def test_any_input(inp: AssemblyInput) -> None:
    _run(inp)


@settings(max_examples=40, deadline=None)
@given(inp=inputs(min_layer=0, roomy=True))
def test_layer0_identity(inp: AssemblyInput) -> None:
    result = assemble_checked(inp)
    assert result.layer == 0
    assert result.messages is inp.history.messages


@settings(max_examples=40, deadline=None)
@given(layer=st.integers(1, 3), inp=inputs(roomy=True))
def test_each_stage_when_it_fits(layer: int, inp: AssemblyInput) -> None:
    from dataclasses import replace

    result = assemble_checked(replace(inp, min_layer=layer))
    assert result.layer == layer
    if layer == 1:
        assert all(m is o for m, o in zip(result.messages[-1:], inp.history.messages[-1:], strict=True))


@settings(max_examples=50, deadline=None)
@given(inp=inputs(min_layer=4))
def test_layer4(inp: AssemblyInput) -> None:
    result = _run(inp)
    assert result is None or result.layer == 4


@settings(max_examples=40, deadline=None)
@given(inp=inputs(min_layer=1))
def test_small_windows_escalate_through_the_layers(inp: AssemblyInput) -> None:
    result = _run(inp)
    assert result is None or result.layer >= 1


@settings(max_examples=60, deadline=None)
@given(messages=conversations(), data=st.data())
def test_lazy_dedup_equals_the_whole_pass(messages: Sequence[dict[str, Any]], data: st.DataObject) -> None:
    from lore_core.config import LoreConfig
    from lore_core.context import History

    config = LoreConfig()
    history = History.build(messages, counter=counter)
    current = turn_start(messages)
    pristine = copy.deepcopy(messages)
    whole = dedup_outputs(list(messages), current, config=config)
    view = TailView(history, turn_start=current, config=config, counter=counter)
    low = data.draw(st.integers(0, len(messages) - 1))
    for index in reversed(range(low, len(messages))):
        assert view.message(index) == whole[index]
        assert view.tokens(index) == estimate_messages([whole[index]], counter=counter)
        if index >= current:
            assert view.message(index) is messages[index]
    assert messages == pristine
