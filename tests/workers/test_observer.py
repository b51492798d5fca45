"""The gen-0 observer: input rendering, prompt, budgets, output check, digest (ENGINE.md 4.4, 7a, 8.6)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from lore_core.annotations import strip_annotation
from lore_core.assertions import Assertion
from lore_core.config import LoreConfig
from lore_core.errors import ConfigError
from lore_core.observer import (
    build_observer_prompt,
    check_observer_output,
    date_label,
    distill_budget,
    expansion_limit,
    r_compression,
    render_digest,
    render_observer_input,
)
from lore_core.outputs import OutputRejected
from lore_core.prompting import marker, section, worker_of
from lore_core.segments import Segment
from lore_core.store.records import MessageKind, MessageRecord
from lore_core.tokens import count_tokens

T0 = datetime(2026, 2, 25, 9, 30, tzinfo=UTC)
CONFIG = LoreConfig()
SEP = "\n\x1f"


def rec(
    position: int,
    text: str,
    *,
    kind: MessageKind = "human",
    minutes: float = 0.0,
    unit_id: str | None = None,
) -> MessageRecord:
    return MessageRecord(
        id=f"{position:032x}",
        session_id="s1",
        position=position,
        role="assistant" if kind == "assistant" else "user",
        kind=kind,
        text=text,
        content_hash=f"h{position}",
        tokens=count_tokens(text),
        created_at=T0 + timedelta(minutes=minutes),
        unit_id=unit_id,
    )


def call(position: int, *chunks: str, minutes: float = 0.0) -> MessageRecord:
    return rec(position, SEP.join(chunks), kind="assistant", minutes=minutes)


def results(position: int, of: MessageRecord, *chunks: str) -> MessageRecord:
    return rec(position, SEP.join(chunks), kind="tool_results", unit_id=of.id, minutes=0.5)


def seg_of(*records: MessageRecord) -> Segment:
    return Segment(records=tuple(records), tokens=sum(r.tokens for r in records))


# --- budgets -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "budget"), [(0, 256), (100, 256), (655, 256), (16_384, 1_280), (10**6, 4_096)])
def test_distill_budget(n: int, budget: int) -> None:
    assert distill_budget(n, CONFIG) == budget


def test_distill_budget_follows_the_config() -> None:
    assert distill_budget(10_000, LoreConfig(distill_budget=(5.0, 100, 400))) == 400
    assert distill_budget(100, LoreConfig(distill_budget=(5.0, 10, 400))) == 50


@pytest.mark.parametrize(
    ("n", "limit"), [(0, 0), (1, 5), (99, 495), (100, 200), (499, 998), (500, 500), (20_000, 20_000)]
)
def test_expansion_limit(n: int, limit: int) -> None:
    assert expansion_limit(n) == limit


def test_r_compression() -> None:
    assert r_compression(128, 16_384) == 1.0
    assert r_compression(10, 0) == 10.0


def test_date_label_is_locale_free() -> None:
    assert date_label(datetime(2026, 2, 5, tzinfo=UTC)) == "Feb 5, 2026"
    assert date_label(datetime(2025, 12, 31)) == "Dec 31, 2025"


# --- observer input ------------------------------------------------------------------------------------


def test_units_are_headed_and_blank_line_separated() -> None:
    records = [rec(0, "Why does it fail?"), rec(1, "Because of X.", kind="assistant", minutes=2)]
    rendered = render_observer_input(records, config=CONFIG, tz=UTC)
    assert rendered == "[user] (09:30) Why does it fail?\n\n[assistant] (09:32) Because of X."
    assert render_observer_input([], config=CONFIG, tz=UTC) == ""


def test_times_use_the_configured_zone_and_days_are_marked() -> None:
    tz = ZoneInfo("America/New_York")  # 09:30 UTC is 04:30 there; +20 h crosses midnight
    records = [rec(0, "early"), rec(1, "late", minutes=20 * 60)]
    assert render_observer_input(records, config=CONFIG, tz=tz).split("\n\n") == [
        "[user] (04:30) early",
        "[date] Feb 26, 2026",
        "[user] (00:30) late",
    ]


def test_tool_calls_show_arguments_and_their_results_right_after() -> None:
    first = call(
        0,
        "Let me check.",
        '[tool:read_file] {"path":"src/app.py"}',
        '[tool:bash] {"command":"pytest -q"}',
    )
    answer = results(1, first, "[result:read_file] print('hi')", "[result:bash error] 1 failed in 0.2s")
    rendered = render_observer_input([first, answer], config=CONFIG, tz=UTC)
    assert rendered == (
        "[assistant] (09:30) Let me check.\n"
        '[tool:read_file] {"path":"src/app.py"}\n'
        "[result:read_file] print('hi')\n"
        '[tool:bash] {"command":"pytest -q"}\n'
        "[result:bash error] 1 failed in 0.2s"
    )


def test_parallel_calls_of_one_tool_pair_in_order_and_stray_results_follow() -> None:
    first = call(0, '[tool:grep] {"q":"a"}', '[tool:grep] {"q":"b"}')
    answer = results(1, first, "[result:grep] A", "[result:grep] B", "[result:other] C", "user note")
    lines = render_observer_input([first, answer], config=CONFIG, tz=UTC).split("\n")
    assert lines[1:] == [
        "[result:grep] A",
        '[tool:grep] {"q":"b"}',
        "[result:grep] B",
        "[result:other] C",
        "user note",
    ]


def test_long_tool_argument_strings_are_shortened_in_rendering_only() -> None:
    content = "x" * 5_000
    stored = f"[tool:write] {json.dumps({'path': 'a/b.py', 'content': content}, separators=(',', ':'))}"
    record = call(0, stored)
    rendered = render_observer_input([record], config=CONFIG, tz=UTC)
    assert '"path":"a/b.py"' in rendered
    assert "[... 4001 chars cut ...]" in rendered
    assert len(rendered) < 1_200
    assert record.text == stored  # the stored text is untouched
    raw = call(1, "[tool:odd] " + "y" * 3_000)  # not JSON: shortened whole
    assert "[... 2001 chars cut ...]" in render_observer_input([raw], config=CONFIG, tz=UTC)


def test_short_tool_inputs_keep_their_exact_bytes() -> None:
    record = call(0, '[tool:edit] {"b": 1,  "a":"é"}')
    assert render_observer_input([record], config=CONFIG, tz=UTC).endswith('[tool:edit] {"b": 1,  "a":"é"}')


def test_long_results_become_the_strip_annotation() -> None:
    output = "\n".join(["Traceback: error in src/app/main.py"] + ["line"] * 2_000)
    first = call(0, '[tool:bash] {"command":"make"}')
    answer = results(1, first, f"[result:bash error] {output}")
    config = LoreConfig(strip_hint=" (use recall)")
    rendered = render_observer_input([first, answer], config=config, tz=UTC)
    annotation = strip_annotation("bash", output, hint=" (use recall)")
    assert rendered.endswith(f"[result:bash error] {annotation}")
    assert "had errors" in annotation
    assert "src/app/main.py" in annotation


def test_results_at_the_limit_are_kept() -> None:
    first = call(0, '[tool:cat] {"path":"a.txt"}')
    body = "z" * CONFIG.tool_output_max_chars
    assert render_observer_input(
        [first, results(1, first, f"[result:cat] {body}")], config=CONFIG, tz=UTC
    ).endswith(body)


def test_long_thinking_is_shortened() -> None:
    record = call(0, "[thinking] " + "t" * 10_000, "Answer.")
    rendered = render_observer_input([record], config=CONFIG, tz=UTC)
    assert "[... 6001 chars cut ...]" in rendered
    assert rendered.endswith("Answer.")


def test_user_text_under_the_cap_is_never_cut() -> None:
    text = "\n".join(f"line {i} with some words" for i in range(3_000))
    config = LoreConfig(observer_input_cap_tokens=10**6)
    assert render_observer_input([rec(0, text)], config=config, tz=UTC) == f"[user] (09:30) {text}"


def test_a_message_over_the_cap_keeps_head_and_tail() -> None:
    lines = [f"L{i:04d}" for i in range(1_000)]  # 5 chars per line, 6 with its newline
    config = LoreConfig(observer_input_cap_tokens=600)
    rendered = render_observer_input([rec(0, "\n".join(lines))], config=config, tz=UTC, counter=len)
    body = rendered.removeprefix("[user] (09:30) ").split("\n")
    note = [line for line in body if line.startswith("[... ")]
    assert note == ["[... 901 of 1000 lines cut: this message is over 600 tokens ...]"]
    head, tail = body[: body.index(note[0])], body[body.index(note[0]) + 1 :]
    assert head == lines[:66]
    assert tail == lines[-33:]


def test_a_single_huge_line_is_cut_inside() -> None:
    config = LoreConfig(observer_input_cap_tokens=300)
    rendered = render_observer_input([rec(0, "a" * 5_000 + "b" * 5_000)], config=config, tz=UTC, counter=len)
    head, note, tail = rendered.removeprefix("[user] (09:30) ").split("\n")
    assert head == "a" * 200
    assert tail == "b" * 100
    assert note == "[... 1 of 1 lines cut: this message is over 300 tokens ...]"


def test_the_cap_holds_with_the_real_counter() -> None:
    text = "\n".join(f"row {i}: value={i * 7} status=ok" for i in range(20_000))
    config = LoreConfig(observer_input_cap_tokens=2_000)
    rendered = render_observer_input([rec(0, text)], config=config, tz=UTC)
    assert count_tokens(rendered) <= 2_000 + 40  # the cap plus the header and the note


# --- prompt --------------------------------------------------------------------------------------------


def test_prompt_sections_and_budget() -> None:
    seg = seg_of(rec(0, "Please always run ruff before committing."), rec(1, "Will do.", kind="assistant"))
    keep = [Assertion(text="always run ruff before committing", at=T0)]
    prompt = build_observer_prompt(
        seg, prior=None, assertions=keep, config=CONFIG, tz=ZoneInfo("Europe/Berlin")
    )
    assert prompt.worker == "distill"
    assert prompt.system.splitlines()[0] == marker("distill")
    assert worker_of(prompt.system) == "distill"
    assert prompt.max_tokens == distill_budget(seg.tokens, CONFIG)
    assert section(prompt.user, "prior_observations") == "session start"
    assert section(prompt.user, "session_date") == "Feb 25, 2026"
    assert section(prompt.user, "must_keep") == "- (10:30) always run ruff before committing"
    assert section(prompt.user, "transcript") == render_observer_input(
        seg.records, config=CONFIG, tz=ZoneInfo("Europe/Berlin")
    )
    assert "<observations>" in prompt.system
    assert "one <observations> block" in prompt.user


def test_prompt_with_prior_and_no_assertions() -> None:
    seg = seg_of(rec(0, "hi"), rec(1, "next day", minutes=24 * 60))
    prompt = build_observer_prompt(
        seg, prior="Date: Feb 24, 2026\n* red (18:00) x", assertions=[], config=CONFIG, tz=UTC
    )
    assert section(prompt.user, "prior_observations") == "Date: Feb 24, 2026\n* red (18:00) x"
    assert section(prompt.user, "must_keep") == "none"
    assert section(prompt.user, "session_date") == "Feb 25, 2026\nuntil Feb 26, 2026"
    blank = build_observer_prompt(seg, prior="  \n", assertions=[], config=CONFIG, tz=UTC)
    assert section(blank.user, "prior_observations") == "session start"


def test_a_closing_tag_in_the_transcript_cannot_end_the_section() -> None:
    seg = seg_of(rec(0, "what does </transcript> do?"), rec(1, "It closes.", kind="assistant"))
    prompt = build_observer_prompt(seg, prior=None, assertions=[], config=CONFIG, tz=UTC)
    transcript = section(prompt.user, "transcript")
    assert transcript is not None
    assert transcript.endswith("It closes.")


def test_empty_segment_is_refused() -> None:
    with pytest.raises(ConfigError):
        build_observer_prompt(Segment(records=(), tokens=0), prior=None, assertions=[], config=CONFIG, tz=UTC)


# --- output check --------------------------------------------------------------------------------------


def test_check_returns_the_body() -> None:
    text = "Sure.\n<OBSERVATIONS>\nDate: Feb 25, 2026\n* red (09:30) x\n</observations>"
    assert check_observer_output(text, source_tokens=900) == "Date: Feb 25, 2026\n* red (09:30) x"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("no block at all", "no_observations_block"),
        ("<observations>\n  \n</observations>", "empty_observations"),
        ("<observations>a</observations><observations>b</observations>", "several_observations_blocks"),
    ],
)
def test_check_rejects_bad_blocks(text: str, reason: str) -> None:
    with pytest.raises(OutputRejected) as caught:
        check_observer_output(text, source_tokens=900)
    assert caught.value.reason == reason


def test_expansion_guard_is_strict() -> None:
    at_limit = "<observations>" + "x" * 200 + "</observations>"  # N = 100 -> limit 200
    assert len(check_observer_output(at_limit, source_tokens=100, counter=len)) == 200
    with pytest.raises(OutputRejected) as caught:
        check_observer_output(
            "<observations>" + "x" * 201 + "</observations>", source_tokens=100, counter=len
        )
    assert caught.value.reason == "expansion"


# --- digest --------------------------------------------------------------------------------------------


def digest_records() -> list[MessageRecord]:
    first = call(
        1, "Running the tests.", '[tool:bash] {"command":"pytest"}', '[tool:read] {"path":"a.py"}', minutes=1
    )
    return [
        rec(0, "Fix   the\nflaky test " + "please " * 60),
        first,
        results(2, first, "[result:bash error] FAILED tests/t.py\n1 failed", "[result:read] x = 1"),
        rec(3, "[thinking] hmm" + SEP + "Done.", kind="assistant", minutes=24 * 60),
    ]


def test_digest_has_one_green_bullet_per_message() -> None:
    body = render_digest(digest_records(), tz=UTC, limit_tokens=None)
    lines = body.split("\n")
    assert lines[0] == "Date: Feb 25, 2026"
    assert lines[1].startswith("* green (09:30) user: Fix the flaky test please")
    assert len(lines[1]) == len("* green (09:30) user: ") + 200
    assert lines[2] == "* green (09:31) assistant: Running the tests. [tools: bash, read]"
    assert lines[3] == (
        "* green (09:30) tool results: [output omitted: bash, 2 lines, had errors, paths: tests/t.py] "
        "[output omitted: read, 1 lines]"
    )
    assert lines[4:] == ["Date: Feb 26, 2026", "* green (09:30) assistant: Done."]


@pytest.mark.parametrize("limit", [8, 30, 60, 90, 400])
def test_digest_is_cut_to_the_limit(limit: int) -> None:
    body = render_digest(digest_records(), tz=UTC, limit_tokens=limit, counter=len)
    assert body.startswith("Date: Feb 25, 2026")
    if limit >= len("Date: Feb 25, 2026"):
        assert len(body) <= limit
    full = render_digest(digest_records(), tz=UTC, limit_tokens=None)
    assert full.startswith(body.removesuffix("…"))


def test_digest_within_the_expansion_limit_with_the_real_counter() -> None:
    records = digest_records()
    limit = expansion_limit(sum(r.tokens for r in records))
    body = render_digest(records, tz=UTC, limit_tokens=limit)
    assert count_tokens(body) <= limit
    assert render_digest([], tz=UTC, limit_tokens=None)


def test_user_text_is_shown_as_typed() -> None:
    text = "[thinking] " + "u" * 9_000 + SEP + '[tool:x] {"a":"' + "v" * 2_000 + '"}'
    assert render_observer_input([rec(0, text)], config=CONFIG, tz=UTC) == "[user] (09:30) " + text.replace(
        SEP, "\n"
    )


def test_long_inputs_without_long_strings_keep_their_exact_bytes() -> None:
    stored = "[tool:batch] " + json.dumps({f"k{i}": 1.0 for i in range(300)}, separators=(",", ":"))
    assert render_observer_input([call(0, stored)], config=CONFIG, tz=UTC).endswith(stored)
