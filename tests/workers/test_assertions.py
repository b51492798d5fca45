"""Pinned user assertions (ENGINE.md 4.4, "Pinned user assertions"; pitfall 30)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lore_core.assertions import MAX_ASSERTION_CHARS, Assertion, extract_assertions
from lore_core.config import LoreConfig
from lore_core.store.records import MessageKind, MessageRecord

T0 = datetime(2026, 2, 25, 9, 30, tzinfo=UTC)
CONFIG = LoreConfig()
SEP = "\n\x1f"
FRAGMENTS = [
    "always ", "never ", "I want ", "switch to ", "let's use ", "replacing ", " with ", "a", "b", "src/x.py",
    ".", ",", "!", "\n", " ", "3.11", "é",
]  # fmt: skip


def rec(position: int, text: str, *, kind: MessageKind = "human", minutes: float = 0.0) -> MessageRecord:
    return MessageRecord(
        id=f"{position:032x}",
        session_id="s1",
        position=position,
        role="assistant" if kind == "assistant" else "user",
        kind=kind,
        text=text,
        content_hash=f"h{position}",
        tokens=len(text) // 4,
        created_at=T0 + timedelta(minutes=minutes),
    )


def texts(*messages: str) -> list[str]:
    records = [rec(i, text, minutes=i) for i, text in enumerate(messages)]
    return [a.text for a in extract_assertions(records, config=CONFIG, tz=UTC)]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Please always run ruff before committing.", "always run ruff before committing"),
        ("You should never push straight to main!", "never push straight to main"),
        (
            "Make sure to bump the version in pyproject.toml. Thanks",
            "Make sure to bump the version in pyproject.toml",
        ),
        ("Don't forget to update CHANGELOG.md", "Don't forget to update CHANGELOG.md"),
        ("don’t forget to update the docs/ folder", "don’t forget to update the docs/ folder"),
        ("I want the API to return typed errors", "I want the API to return typed errors"),
        ("I prefer small focused commits, one per fix", "I prefer small focused commits"),
        ("We expect p95 latency under 200 ms", "We expect p95 latency under 200 ms"),
    ],
)
def test_instruction_forms(message: str, expected: str) -> None:
    assert texts(message) == [expected]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Let's use Bun", "let's use Bun"),
        ("From now on, use uv for installs.", "From now on, use uv for installs"),
        ("ok, switch to pnpm", "switch to pnpm"),
        ("I'd rather keep tests in tests/unit", "I'd rather keep tests in tests/unit"),
        ("I've decided to drop Python 3.10 support", "I've decided to drop Python 3.10 support"),
        ("we no longer use black", "no longer use black"),
        ("We are replacing poetry with uv, it is faster", "replacing poetry with uv"),
        ("I switched to Python 3.12 last week.", "I switched to Python 3.12 last week"),
        ("we migrated to PostgreSQL 16", "we migrated to PostgreSQL 16"),
    ],
)
def test_preference_changes(message: str, expected: str) -> None:
    assert [t.casefold() for t in texts(message)] == [expected.casefold()]


def test_body_length_limits() -> None:
    assert texts("always use ab") == []  # 6-char body: under the 10 of an instruction
    assert texts("always use abcdef") == ["always use abcdef"]  # exactly 10
    assert texts("let's use Go") == []  # 2 chars: under the 3 of a preference
    long_body = "always " + " ".join(["word"] * 40)
    [text] = texts(long_body)
    assert len(text) - len("always ") <= 80
    assert text.endswith("word")  # cut at a word boundary
    [pref] = texts("from now on " + "x" * 300)
    assert len(pref) - len("from now on ") <= 120


def test_body_stops_at_sentence_ends_but_not_inside_paths_or_numbers() -> None:
    assert texts("always edit src/app/main.py first. Then run it") == ["always edit src/app/main.py first"]
    assert texts("never use Python 3.10 again, it breaks") == ["never use Python 3.10 again"]
    assert texts("never deploy on fridays\nor weekends") == ["never deploy on fridays"]
    assert texts("never deploy without review!really") == ["never deploy without review!really"]


def test_overlapping_matches_keep_the_longer() -> None:
    assert texts("I want you to always run the linter first") == ["I want you to always run the linter first"]
    assert texts("From now on always use tabs in Makefiles") == ["From now on always use tabs in Makefiles"]


def test_several_per_message_in_text_order() -> None:
    found = texts("Always write tests first. Never skip the type checker, please.")
    assert found == ["Always write tests first", "Never skip the type checker"]


def test_at_most_max_assertions_keeps_the_most_recent() -> None:
    messages = [f"always keep rule number {i} in mind" for i in range(8)]
    assert texts(*messages) == [f"always keep rule number {i} in mind" for i in range(3, 8)]
    records = [rec(i, m, minutes=i) for i, m in enumerate(messages)]
    assert len(extract_assertions(records, config=LoreConfig(max_assertions=2), tz=UTC)) == 2
    assert extract_assertions(records, config=LoreConfig(max_assertions=0), tz=UTC) == []


def test_repeated_assertions_keep_the_latest() -> None:
    records = [
        rec(0, "always run the full suite"),
        rec(1, "ok"),
        rec(2, "Always run the full suite", minutes=5),
    ]
    [only] = extract_assertions(records, config=CONFIG, tz=UTC)
    assert only == Assertion(text="Always run the full suite", at=T0 + timedelta(minutes=5))


def test_user_text_only() -> None:
    records = [
        rec(0, "I will always prefer the fastest path", kind="assistant"),
        rec(1, "[result:bash] never gonna give you up, never", kind="tool_results"),
        rec(2, "look" + SEP + '[tool:bash] {"cmd":"always run this thing"}' + SEP + "[image image/png]"),
        rec(3, "[thinking] I should always do this thing"),
    ]
    assert extract_assertions(records, config=CONFIG, tz=UTC) == []


def test_time_is_in_the_configured_zone() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    [only] = extract_assertions([rec(0, "never commit secrets to git")], config=CONFIG, tz=berlin)
    assert only.at == T0
    assert only.at.tzinfo is berlin
    assert f"{only.at:%H:%M}" == "10:30"


def test_scans_are_bounded() -> None:
    # No trigger word: the precheck skips the regexes. A trigger beyond 64 KB is not looked at.
    assert texts("x" * 2_000_000) == []
    assert texts("y" * 70_000 + " always run the whole test suite") == []
    # Pathological repetitions stay linear.
    assert texts("replace " * 50_000) == []
    assert len(texts("always " * 20_000)) <= CONFIG.max_assertions


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(
            st.sampled_from(FRAGMENTS),
            max_size=40,
        ),
        max_size=8,
    )
)
def test_extraction_never_raises_and_respects_limits(messages: list[list[str]]) -> None:
    records = [rec(i, "".join(m), minutes=i) for i, m in enumerate(messages)]
    found = extract_assertions(records, config=CONFIG, tz=UTC)
    assert len(found) <= CONFIG.max_assertions
    assert len({a.text.casefold() for a in found}) == len(found)
    for assertion in found:
        assert 0 < len(assertion.text) <= MAX_ASSERTION_CHARS
        assert "\n" not in assertion.text
    assert [a.at for a in found] == sorted(a.at for a in found)
