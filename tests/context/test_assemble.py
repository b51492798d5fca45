"""``assemble`` by example: layer 0 and the tier gate, the layer table, the pin, the urgent flag, breakpoints.

``make_input`` gives max_input = usable = 10,000 (calibrated, no fixed, no overhead) with ``len`` as counter:
distilled 2,500, raw 4,000 (post-idle 2,000), layer 2 5,000, layer 3 5,500 / 1,500, layer-4 tail 2,500.
``chat(60)`` is 121 messages of exactly 100 tokens, alternating, ending on a human message.
"""

from __future__ import annotations

import pytest

from lore_core.config import LoreConfig
from lore_core.context import (
    NOTICE_TEXT,
    History,
    assemble,
    pair_tokens,
    render_rows,
    select_rows,
    update_prefix_cache,
)
from lore_core.errors import ContextOverflowError, InvalidMessagesError
from lore_core.store.records import RawPin
from lore_core.tokens import estimate_messages

from .builders import (
    assistant,
    chain,
    chat,
    counter,
    make_input,
    replace_input,
    row,
    sized,
    text,
    tool_result,
    tool_use,
    user,
)

ROWS = (row(1), row(2), row(3))


def _raw(result_messages: object, prefix: bool) -> list[object]:
    messages = list(result_messages)  # type: ignore[call-overload]
    return messages[2:] if prefix else messages


# --- layer 0 and the tier gate ------------------------------------------------------------------------------


def test_layer0_returns_the_callers_list_object() -> None:
    messages = chat(3)
    inp = make_input(messages, min_layer=0, rows=ROWS, raw_pin=RawPin(raw_count=1, total_count=2, budget=3))
    result = assemble(inp)
    assert result.messages is messages
    assert result.layer == 0
    assert (result.distilled_tokens, result.raw_tokens, result.total_tokens) == (0, 700, 700)
    assert (result.usable, result.distilled_budget, result.raw_budget) == (10_000, 2_500, 4_000)
    assert result.raw_pin is inp.raw_pin
    assert result.prefix_cache is None
    assert not result.urgent
    assert (result.window_start, result.window_ids) == (0, tuple(inp.history.ids))


class _Untouchable(list):  # type: ignore[type-arg]
    """A list that fails on any element access: proves that layer 0 never looks at the history."""

    def __getitem__(self, index: object) -> object:
        raise AssertionError("layer 0 read the history")

    def __iter__(self) -> object:  # type: ignore[override]
        raise AssertionError("layer 0 iterated the history")


def test_layer0_does_not_scan_the_history() -> None:
    messages = chat(2_000)
    built = History.build(messages, counter=counter)
    untouchable = History(_Untouchable(messages), built.ids, _Untouchable(built.tokens), built.total_tokens)
    result = assemble(make_input(messages, history=untouchable, min_layer=0, expected=5_000))
    assert result.layer == 0
    assert result.messages is untouchable.messages
    assert result.window_ids is built.ids


def test_layer0_uncalibrated_uses_the_safety_factor() -> None:
    messages = chat(3)
    # 1.5 x (7,000 - 1,000) + 1,000 = 10,000 <= ceiling 10,000
    at = make_input(messages, min_layer=0, calibrated=False, overhead=1_000, expected=7_000)
    assert assemble(at).layer == 0
    assert assemble(replace_input(at, expected=7_001)).layer == 1


def test_min_layer_forbids_layer0() -> None:
    assert assemble(make_input(chat(3), min_layer=1, expected=10)).layer == 1


PRICED = LoreConfig(max_layer0_tokens=5_000, cache_write_price_per_mtok=3.75, cache_read_price_per_mtok=0.3)


def test_tier_gate() -> None:
    messages = chat(3)
    # above the 5,000 cap but within max_input: a bust would cost 6,500 x 3.75 > 0.85 x 8,000 x 0.3
    gated = make_input(messages, min_layer=0, expected=8_000, config=PRICED)
    assert assemble(gated).layer == 0
    cheap_writes = LoreConfig(
        max_layer0_tokens=5_000, cache_write_price_per_mtok=0.01, cache_read_price_per_mtok=0.3
    )
    assert assemble(replace_input(gated, config=cheap_writes)).layer == 1
    # should_compress is false from 5 consecutive busts on: layer 0
    assert assemble(replace_input(gated, config=cheap_writes, consecutive_busts=5)).layer == 0
    # over max_input the gate does not apply
    assert assemble(replace_input(gated, expected=10_001)).layer == 1
    # no prices: no gate
    assert assemble(replace_input(gated, config=LoreConfig(max_layer0_tokens=5_000))).layer == 1


# --- layer 1: plain fit and the pin -------------------------------------------------------------------------


def test_layer1_plain_fit_walks_back_whole_units_and_starts_at_a_human_message() -> None:
    messages = chat(60)
    result = assemble(make_input(messages))
    # current turn 100, then 39 older messages fit in 3,900: start 81 (an assistant) moves to 82
    assert result.layer == 1
    assert result.window_start == 82
    assert result.raw_tokens == 3_900
    assert result.messages[0] is messages[82]
    assert all(a is b for a, b in zip(result.messages, messages[82:], strict=True))
    assert result.raw_pin == RawPin(raw_count=39, total_count=121, budget=4_000)
    assert result.urgent  # layer 1 without a prefix
    assert result.window_ids == tuple(History.build(messages, counter=counter).ids[82:])


def test_layer1_with_rows_sends_the_cached_prefix() -> None:
    messages = chat(60)
    result = assemble(make_input(messages, rows=ROWS))
    cache = update_prefix_cache(None, ROWS, counter=counter)
    assert result.prefix_cache == cache
    assert result.messages[0] == {"role": "user", "content": [{"type": "text", "text": NOTICE_TEXT}]}
    assert result.messages[1]["content"][0]["text"] == render_rows(ROWS)
    assert result.messages[1]["content"][0]["cache_control"] == {"type": "ephemeral"}
    assert result.distilled_tokens == cache.tokens == pair_tokens(render_rows(ROWS), counter=counter)
    assert not result.urgent
    assert result.total_tokens == estimate_messages(result.messages, counter=counter)
    # the cache the session kept is used as is
    again = assemble(make_input(messages, rows=ROWS, prefix_cache=result.prefix_cache))
    assert again.prefix_cache is result.prefix_cache
    assert again.messages == result.messages


def test_pin_holds_within_hysteresis_then_repins() -> None:
    messages = chat(60)
    first = assemble(make_input(messages))
    pin = first.raw_pin
    assert pin is not None
    for k in range(1, 4):  # +200 tokens per exchange: 4,100 .. 4,500 <= 1.15 x 4,000
        messages += [sized("assistant", 100, f"b{k} "), sized("user", 100, f"n{k} ")]
        result = assemble(make_input(messages, raw_pin=pin))
        assert result.window_start == 82  # same first bytes: the cache stays warm
        assert result.raw_tokens == 3_900 + 200 * k
        assert result.raw_pin is pin
    messages += [sized("assistant", 100, "b4 "), sized("user", 100, "n4 ")]
    overflow = assemble(make_input(messages, raw_pin=pin))  # 4,700 > 4,600: plain fit, new pin
    assert overflow.window_start == 90
    assert overflow.raw_pin == RawPin(raw_count=39, total_count=129, budget=4_000)


def test_pin_high_water_mark() -> None:
    messages = chat(60)
    old = RawPin(raw_count=39, total_count=121, budget=3_000)
    # 3,900 > 1.15 x 3,000 but <= 1.15 x max(3,000, 4,000): kept, and re-pinned at the current budget
    result = assemble(make_input(messages, raw_pin=old))
    assert result.window_start == 82
    assert result.raw_pin == RawPin(raw_count=39, total_count=121, budget=4_000)
    # a pin from a larger budget keeps a window above the current budget (within its own margin)
    big = RawPin(raw_count=45, total_count=121, budget=4_000)
    kept = assemble(make_input(messages, raw_pin=big))
    assert (kept.window_start, kept.raw_tokens, kept.raw_pin) == (76, 4_500, big)


def test_pin_start_moves_to_a_human_message_and_survives_front_trimming() -> None:
    messages = chat(60)
    odd = RawPin(raw_count=40, total_count=121, budget=4_000)  # would start at 81, an assistant
    assert assemble(make_input(messages, raw_pin=odd)).window_start == 82
    trimmed = messages[20:]  # the host dropped 20 old messages: offsets from the tail still hold
    result = assemble(make_input(trimmed, raw_pin=RawPin(raw_count=39, total_count=121, budget=4_000)))
    assert result.messages[0] is messages[82]


def test_post_idle_compact_uses_the_smaller_layer1_budget() -> None:
    result = assemble(make_input(chat(60), post_idle_compact=True, rows=ROWS))
    assert result.layer == 1
    assert result.raw_tokens == 1_900
    assert result.raw_pin == RawPin(raw_count=19, total_count=121, budget=2_000)
    assert result.raw_budget == 4_000  # reported budgets are the base values


def test_uncalibrated_stage_cap_keeps_the_window_sendable() -> None:
    messages = chat(60)
    inp = make_input(messages, calibrated=False, overhead=1_000, fixed_tokens=500)
    # usable 8,500: raw 3,400; cap floor(9,000 / 1.5) - 500 - 0 = 5,500: the budget binds
    result = assemble(inp)
    assert result.raw_tokens == 3_400 - 100  # 33 older messages after the start moved to a human one
    assert 1.5 * (result.total_tokens + 500) + 1_000 <= 10_000
    tight = make_input(messages, calibrated=False, overhead=4_000, fixed_tokens=0, post_idle_compact=False)
    # usable 6,000: raw 2,400; cap floor(6,000 / 1.5) = 4,000: budget binds again, and the fit test holds
    assert 1.5 * assemble(tight).total_tokens + 4_000 <= 10_000


# --- layers 2 and 3 -----------------------------------------------------------------------------------------

BIG_OUT = "line\n" * 200  # 1,000 characters


def _tool_history() -> list[dict[str, object]]:
    messages: list[dict[str, object]] = [user("start the work")]
    messages += chain("old", 3, output=BIG_OUT)
    messages += [assistant("first part done"), user("now the second part")]
    messages += chain("cur", 2, output="work\n" * 200)
    return messages


def test_layer2_strips_older_outputs_and_protects_the_last_four_and_the_current_turn() -> None:
    messages = (
        _tool_history()
    )  # indices: 0 human, 1-6 old chain, 7 assistant, 8 human (turn start), 9-12 chain
    result = assemble(
        make_input(messages, min_layer=2, raw_pin=RawPin(raw_count=3, total_count=13, budget=10))
    )
    assert result.layer == 2
    assert result.window_start == 0
    raw = _raw(result.messages, prefix=False)
    for index in (2, 4, 6):
        assert raw[index]["content"][0]["content"] == "[output omitted: bash, 200 lines]"
    assert all(raw[i] is messages[i] for i in (0, 1, 3, 5, 7, 8, 9, 10, 11, 12))
    assert result.raw_pin is None  # entering layer 2 drops the pin
    assert result.urgent
    assert result.total_tokens == estimate_messages(result.messages, counter=counter)


def test_layer2_protects_the_last_four_messages_before_a_short_current_turn() -> None:
    messages = [user("start"), *chain("old", 3, output=BIG_OUT), assistant("done"), user("next?")]
    result = assemble(make_input(messages, min_layer=2))
    raw = _raw(result.messages, prefix=False)
    # n = 9, protected from index 5: results at 2 and 4 stripped, 6 kept
    assert raw[2]["content"][0]["content"].startswith("[output omitted:")
    assert raw[4]["content"][0]["content"].startswith("[output omitted:")
    assert raw[6] is messages[6]


def test_windows_are_measured_after_stripping() -> None:
    messages = [user("start")]
    for i in range(6):
        messages += [*chain(f"u{i}", 1, output=BIG_OUT), assistant(f"done {i}"), user(f"go on {i}")]
    # unstripped the history is ~6,600 tokens, over the 5,000 layer-2 budget; stripped it all fits
    assert estimate_messages(messages, counter=counter) > 5_000
    result = assemble(make_input(messages, min_layer=2))
    assert (result.layer, result.window_start) == (2, 0)


def test_current_turn_over_the_layer1_budget_goes_to_layer2() -> None:
    messages = [user("start"), assistant("ok"), user("big task"), *chain("c", 4, output=BIG_OUT)]
    current = estimate_messages(messages[2:], counter=counter)
    assert 4_000 < current <= 5_000
    result = assemble(make_input(messages))
    assert result.layer == 2
    assert all(
        a is b for a, b in zip(_raw(result.messages, False)[-len(messages[2:]) :], messages[2:], strict=True)
    )


def test_layer3_strips_all_but_the_current_turn_and_shows_the_best_five() -> None:
    meta = row(99, generation=1)
    rows = [row(i) for i in range(8)] + [meta]
    messages = _tool_history()
    cache = update_prefix_cache(None, rows[:3], counter=counter)
    result = assemble(make_input(messages, min_layer=3, rows=rows, prefix_cache=cache))
    assert result.layer == 3
    assert result.messages[1]["content"][0]["text"] == render_rows(select_rows(rows, 5))
    assert result.messages[1]["content"][0]["text"].index("(d:00000099") < result.messages[1]["content"][0][
        "text"
    ].index("(d:00000004")
    raw = _raw(result.messages, prefix=True)
    assert all(raw[i]["content"][0]["content"].startswith("[output omitted:") for i in (2, 4, 6))
    assert all(raw[i] is messages[i] for i in range(8, 13))  # the current turn
    assert result.prefix_cache is cache  # a fresh render is not cached: keep the previous
    assert result.urgent
    assert result.raw_pin is None


def test_layer3_prefix_over_its_budget_goes_to_layer4() -> None:
    rows = [row(i, observations="* " + "z" * 400) for i in range(5)]  # ~2,100 tokens > 1,500
    result = assemble(make_input(chat(10), min_layer=3, rows=rows))
    assert result.layer == 4


def test_layer1_prefix_over_its_budget_escalates() -> None:
    rows = [row(i, observations="* " + "z" * 200) for i in range(12)]  # ~2,900 > 2,500; best 5 ~1,300
    result = assemble(make_input(chat(10), rows=rows))
    assert result.layer == 3
    assert result.prefix_cache == update_prefix_cache(None, rows, counter=counter)  # computed, kept


# --- layer 4 ------------------------------------------------------------------------------------------------


def test_layer4_tail_and_two_rows() -> None:
    meta = row(9, generation=1)
    rows = (row(1), row(2), meta, row(3))
    messages = chat(60)
    result = assemble(
        make_input(messages, min_layer=4, rows=rows, raw_pin=RawPin(raw_count=1, total_count=1, budget=1))
    )
    assert result.layer == 4
    assert result.messages[1]["content"][0]["text"] == render_rows([meta, row(3)])
    # tail 2,500: the current turn (100) and 24 older messages
    assert (result.window_start, result.raw_tokens) == (96, 2_500)
    assert result.urgent
    assert result.raw_pin is None


def test_layer4_strips_older_outputs_but_never_the_current_turn() -> None:
    messages = _tool_history()
    result = assemble(make_input(messages, min_layer=4, context_window=6_000))
    raw = _raw(result.messages, prefix=False)
    start = result.window_start
    for index, message in enumerate(raw, start):
        if index >= 8:
            assert message is messages[index]
        elif index in (2, 4, 6):
            assert message["content"][0]["content"].startswith("[output omitted:")


def test_layer4_drops_the_prefix_when_needed() -> None:
    rows = [row(i, observations="* " + "z" * 1_000) for i in range(3)]
    # max_input 2,600, tail 2,000: the raw tail (1,900 once it starts at a human message) fits, the prefix not
    result = assemble(make_input(chat(60), min_layer=4, rows=rows, context_window=3_600))
    assert (result.layer, result.distilled_tokens, result.raw_tokens) == (4, 0, 1_900)
    assert result.messages[0]["role"] == "user"
    assert result.urgent


def test_layer4_drops_older_units_before_touching_the_current_turn() -> None:
    messages = chat(60)
    result = assemble(make_input(messages, min_layer=4, rows=ROWS, context_window=2_500))  # max_input 1,500
    assert (result.window_start, result.raw_tokens, result.distilled_tokens) == (120, 100, 0)
    assert result.messages[0] is messages[120]


def test_layer4_strips_current_turn_results_except_the_last_unit() -> None:
    messages = [user("start"), assistant("ok"), user("do three steps"), *chain("c", 3, output="o" * 500)]
    result = assemble(make_input(messages, min_layer=4, context_window=2_000))  # max_input 1,000
    raw = _raw(result.messages, prefix=False)
    assert result.window_start == 2
    assert raw[2]["content"][0]["content"] == "[output omitted: bash, 1 lines]"
    assert raw[4]["content"][0]["content"] == "[output omitted: bash, 1 lines]"
    assert raw[6] is messages[8]  # the last unit's result is kept
    assert all(raw[i] is messages[i + 2] for i in (0, 1, 3, 5))
    assert result.total_tokens <= 1_000


def test_layer4_prefill_is_not_the_last_unit() -> None:
    messages = [user("go"), *chain("c", 2, output="o" * 500), assistant("Sure,")]
    result = assemble(make_input(messages, min_layer=4, context_window=1_800))  # max_input 800
    raw = _raw(result.messages, prefix=False)
    assert raw[2]["content"][0]["content"].startswith("[output omitted:")
    assert raw[4] is messages[4]
    assert raw[5] is messages[5]


def test_layer4_cuts_the_largest_texts_head_and_tail() -> None:
    body = "HEAD" + "m" * 8_000 + "TAIL"
    messages = [user("a"), assistant("b"), user(body)]
    result = assemble(make_input(messages, min_layer=4, context_window=2_000))  # max_input 1,000
    cut = result.messages[-1]["content"]
    assert cut.startswith("HEAD")
    assert cut.endswith("TAIL")
    assert "chars (1 lines) cut to fit the context window ...]" in cut
    assert result.total_tokens <= 1_000
    assert result.total_tokens == estimate_messages(result.messages, counter=counter)
    assert messages[-1]["content"] == body


def test_layer4_cuts_outputs_but_never_tool_inputs_or_thinking() -> None:
    think = {"type": "thinking", "thinking": "t" * 300, "signature": "c2ln"}
    call = assistant([think, text("x" * 3_000), tool_use("c1", "bash", {"command": "y" * 200})])
    results = user([tool_result("c1", [text("r" * 3_000), text("s" * 50)])])
    messages = [user("go"), call, results]
    result = assemble(make_input(messages, min_layer=4, context_window=2_000))
    sent_call, sent_results = result.messages[1], result.messages[2]
    assert sent_call["content"][0] is think
    assert sent_call["content"][2] is call["content"][2]
    assert len(sent_call["content"][1]["text"]) < 3_000
    assert len(sent_results["content"][0]["content"][0]["text"]) < 3_000
    assert sent_results["content"][0]["tool_use_id"] == "c1"
    assert result.total_tokens <= 1_000


def test_layer4_overflow_error() -> None:
    think = {"type": "thinking", "thinking": "t" * 3_000, "signature": "c2ln"}
    messages = [user("go"), assistant([think, tool_use("c1")]), user([tool_result("c1", "ok")])]
    with pytest.raises(ContextOverflowError) as info:
        assemble(make_input(messages, min_layer=4, context_window=2_000))
    assert info.value.session_id == "s1"
    assert info.value.limit_tokens == 1_000
    assert info.value.needed_tokens > 1_000
    fixed_too_big = make_input(chat(2), min_layer=0, fixed_tokens=20_000, expected=30_000)
    with pytest.raises(ContextOverflowError, match="context needs about"):
        assemble(fixed_too_big)


def test_overflow_when_even_layer0_is_too_big_escalates_all_the_way() -> None:
    messages = [user("x" * 20_000)]
    result = assemble(make_input(messages, min_layer=0))
    assert result.layer == 4
    assert result.total_tokens <= 10_000


# --- urgent flag, breakpoints, invariants -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("min_layer", "rows", "layer", "urgent"),
    [
        (0, ROWS, 0, False),
        (1, ROWS, 1, False),
        (1, (), 1, True),
        (2, ROWS, 2, True),
        (3, ROWS, 3, True),
        (4, ROWS, 4, True),
    ],
)
def test_urgent_flag(min_layer: int, rows: tuple[object, ...], layer: int, urgent: bool) -> None:
    result = assemble(make_input(chat(60), min_layer=min_layer, rows=rows, expected=100))
    assert (result.layer, result.urgent) == (layer, urgent)


def _with_breakpoints(count: int) -> list[dict[str, object]]:
    messages = chat(5)
    control = {"type": "ephemeral"}
    for i in range(count):
        index = len(messages) - 1 - 2 * i
        messages[index] = {
            **messages[index],
            "content": [text(messages[index]["content"], cache_control=control)],
        }
    return messages


@pytest.mark.parametrize(
    ("caller", "system", "marked"), [(0, 0, True), (3, 0, True), (4, 0, False), (3, 1, False)]
)
def test_prefix_breakpoint_only_within_four(caller: int, system: int, marked: bool) -> None:
    result = assemble(make_input(_with_breakpoints(caller), rows=ROWS, system_breakpoints=system))
    assert ("cache_control" in result.messages[1]["content"][0]) is marked


def test_breakpoints_in_dropped_messages_do_not_count() -> None:
    messages = chat(60)
    control = {"type": "ephemeral"}
    for index in range(0, 8, 2):  # four breakpoints far outside the window
        messages[index] = {
            **messages[index],
            "content": [text(messages[index]["content"], cache_control=control)],
        }
    result = assemble(make_input(messages, rows=ROWS))
    assert "cache_control" in result.messages[1]["content"][0]


def test_invalid_input_fails_the_output_check() -> None:
    with pytest.raises(InvalidMessagesError):
        assemble(make_input([user("a"), user("b")]))


# --- work proportional to the window ------------------------------------------------------------------------


class _Recording(list):  # type: ignore[type-arg]
    """A list that records which indices were read."""

    def __init__(self, items: list[object]) -> None:
        super().__init__(items)
        self.seen: set[int] = set()

    def __getitem__(self, index: object) -> object:
        if isinstance(index, slice):
            self.seen.update(range(*index.indices(len(self))))
        else:
            self.seen.add(index if index >= 0 else len(self) + index)  # type: ignore[operator]
        return super().__getitem__(index)  # type: ignore[index]

    def __iter__(self) -> object:  # type: ignore[override]
        raise AssertionError("the assembly iterated the whole history")


@pytest.mark.parametrize("min_layer", [1, 2, 3, 4])
def test_gradient_layers_read_only_their_window(min_layer: int) -> None:
    messages: list[dict[str, object]] = []
    for i in range(1_000):
        messages += [
            user(f"question {i}"),
            *chain(f"t{i}", 1, output=f"output {i}\n" * 20),
            assistant(f"answer {i}"),
        ]
    messages.append(user("last question"))
    built = History.build(messages, counter=counter)
    recorded = _Recording(messages)
    tokens = _Recording(list(built.tokens))
    hist = History(recorded, built.ids, tokens, built.total_tokens)
    result = assemble(make_input(messages, history=hist, min_layer=min_layer, rows=ROWS))
    assert result.layer == min_layer
    window = len(messages) - result.window_start
    assert window < 1_000
    assert min(recorded.seen) >= result.window_start - 8  # the unit that did not fit, a constant
    assert len(recorded.seen) <= window + 8
    assert len(tokens.seen) <= window + 8
