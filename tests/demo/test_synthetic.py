"""The seeded coding-session generator behind ``lore demo``."""

from __future__ import annotations

import itertools
import json

from lore_batch.replay.synthetic import DEMO_START, coding_session
from lore_core.invariants import validate_messages
from lore_core.messages import message_kind


def test_sessions_are_valid_and_deterministic() -> None:
    for seed in range(5):
        transcript = coding_session(turns=8, seed=seed)
        validate_messages(transcript.anthropic_messages)
        again = coding_session(turns=8, seed=seed)
        assert json.dumps(transcript.anthropic_messages) == json.dumps(again.anthropic_messages)
        assert [item.at for item in transcript.messages] == [item.at for item in again.messages]
    assert (
        coding_session(turns=8, seed=1).anthropic_messages
        != coding_session(turns=8, seed=2).anthropic_messages
    )


def test_a_session_looks_like_coding_work() -> None:
    transcript = coding_session(turns=30, seed=0)
    messages = transcript.anthropic_messages
    assert sum(1 for m in messages if message_kind(m) == "human") == 30
    blocks = [b for m in messages if isinstance(m["content"], list) for b in m["content"]]
    tools = {b["name"] for b in blocks if b["type"] == "tool_use"}
    assert tools == {"read_file", "edit_file", "bash", "grep"}
    assert any(b["type"] == "thinking" and b["signature"] for b in blocks)
    assert any(b["type"] == "tool_result" and b.get("is_error") for b in blocks)  # a failed edit
    assert any("FAILED tests/" in str(b.get("content")) for b in blocks if b["type"] == "tool_result")
    times = [item.at for item in transcript.messages]
    assert times[0] == DEMO_START
    assert times == sorted(times)
    gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(times)]
    assert max(gaps) >= 6 * 60  # idle gaps: the prompt cache goes cold
    assert min(gaps) >= 0
