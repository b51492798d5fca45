"""The two baselines: full history until the window overflows, and compaction at 80% of the window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lore_batch.replay.baselines import COMPACT_AT_80, FULL_HISTORY, Turn, run_baseline
from lore_batch.replay.simulate import Segment

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
SYSTEM = [Segment("system", 500, breakpoint=True)]
MESSAGES = [Segment(f"m{index}", 1_000) for index in range(12)]
# a model call after every second message: it sends messages [0, end)
TURNS = [Turn(end=end, at=T0 + timedelta(seconds=10 * end), output_tokens=50) for end in range(1, 12, 2)]


def run(policy=FULL_HISTORY, window: int = 100_000):  # type: ignore[no-untyped-def]
    return run_baseline(
        policy, system=SYSTEM, messages=MESSAGES, turns=TURNS, context_window=window, output_reserve=1_000
    )


def test_while_the_history_fits_every_turn_sends_all_of_it() -> None:
    result = run()
    assert result.compactions == 0
    assert [r.input_tokens for r in result.requests] == [500 + 1_000 * turn.end for turn in TURNS]
    # the system's breakpoint is kept and the last message carries the agent's
    assert all(r.segments[0].breakpoint and r.segments[-1].breakpoint for r in result.requests)


def test_on_overflow_the_full_history_is_compacted_to_a_summary_and_a_tail() -> None:
    # window 10,000 with a 1,000 output reserve: at most 9,000 input tokens
    result = run(window=10_000)
    assert result.compactions == 1
    index = result.is_compaction.index(True)
    compaction = result.requests[index]
    # the call before sent 500 + 7 x 1,000 = 7,500; the next one, with 9 messages, would send 9,500
    assert result.turn_index[index] == 4
    assert compaction.input_tokens == 7_500 + 120  # the previous context plus the summarise instruction
    assert compaction.output_tokens == 1_000  # 2% of 9,000 replaced tokens, raised to the 1,000 floor
    after = result.requests[index + 1]
    # system 500 + summary 1,000 + a tail of 10% of the window (1,000: the last message)
    assert [s.tokens for s in after.segments] == [500, 1_000, 1_000]
    assert after.segments[1].key.startswith("summary:")


def test_compaction_at_80_percent_triggers_earlier() -> None:
    # window 9,000: full history may send 8,000 tokens, compaction at 80% only 7,200
    full = run(window=9_000)
    early = run(COMPACT_AT_80, window=9_000)
    assert full.turn_index[full.is_compaction.index(True)] == 4  # the turn that would send 9,500
    assert early.turn_index[early.is_compaction.index(True)] == 3  # the turn that would send 7,500
