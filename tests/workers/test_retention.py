"""Artefact retention (ENGINE.md 7b): extraction, presence, score, trigger, budget, prompt and merge."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lore_core import artifacts
from lore_core.artifacts import LINE_CHARS, MAX_ERRORS, SCAN_CHARS, artifact_key, number_keys
from lore_core.config import LoreConfig
from lore_core.prompting import marker, section, worker_of
from lore_core.retention import (
    Artifact,
    Retention,
    build_validate_prompt,
    extract_artifacts,
    is_present,
    merge_validation,
    needs_validation,
    score_retention,
    validate_budget,
)

CONFIG = LoreConfig()


def extract(
    text: str, *, user: tuple[str, ...] = (), pinned: tuple[str, ...] = (), config: LoreConfig = CONFIG
) -> list[Artifact]:
    return extract_artifacts(text, user_texts=user, assertions=pinned, config=config)


def values(text: str, kind: str, **kwargs: Any) -> list[str]:
    return [a.value for a in extract(text, **kwargs) if a.kind == kind]


# --- extraction, kind by kind


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[assistant] (09:30) edited src/app/main.py and ./tests/t.py", ["src/app/main.py", "./tests/t.py"]),
        ("see /usr/lib/libx.so.1 and pkg/archive.tar.gz", ["/usr/lib/libx.so.1", "pkg/archive.tar.gz"]),
        ('[tool:read] {"path":"src/lore/config.toml"}', ["src/lore/config.toml"]),
        ("FAILED tests/test_x.py::test_y", ["tests/test_x.py"]),
    ],
)
def test_paths_found(text: str, expected: list[str]) -> None:
    assert values(text, "path") == expected


@pytest.mark.parametrize(
    "text",
    [
        "no slash in main.py",
        "a directory src/app/ and a/b/c",
        "a link https://example.com/docs/page.html",
        "GET / HTTP/1.1 returned",
        "too long an extension: docs/guide.markdown",
        "a/" * 200 + "x.py",  # over 255 characters: noise
    ],
)
def test_paths_not_found(text: str) -> None:
    assert values(text, "path") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call `parse_config` now", ["parse_config"]),
        ("run `--no-verify` and `make()`", ["--no-verify", "make()"]),
        ("the parse_config helper and MAX_RETRIES", ["parse_config", "MAX_RETRIES"]),
        ("myVariable beats HTTPServer and iPhone", ["myVariable", "HTTPServer", "iPhone"]),
        ("use os.path.join or self.config", ["os.path.join", "self.config"]),
        ("`a.b_c`", ["a.b_c"]),
    ],
)
def test_identifiers_found(text: str, expected: list[str]) -> None:
    assert values(text, "identifier") == expected


@pytest.mark.parametrize(
    "text",
    [
        "Plain English words only, Hello World.",
        "backticked plain words `pytest` and `Hello`",
        "backticked numbers `3.11` and `250ms`",
        "e.g. this, i.e. that",
        "README and HTTP are capitals only",
        "x_ is too short, ab also",
        "https://example.com/some_page/x and mail me@example_host.com",
        '[tool:edit] {"file_path":"x","old_string":"y"}',
        "version v1.2.3 is not an identifier",
        "`" + "a_" * 50 + "`",  # a backticked span over 80 characters
    ],
)
def test_identifiers_not_found(text: str) -> None:
    assert values(text, "identifier") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("p99 is 250ms, then 250 ms", ["250 ms"]),  # one key; the latest spelling is kept
        ("1.5 GB and 512 MiB and 20% and 48px", ["1.5 GB", "512 MiB", "20%", "48px"]),
        ("3x faster, costs $0.10, 10k tokens", ["3x", "$0.10", "10k tokens"]),
        ("5 seconds, 2 h, 3 days, 1,500 ms", ["5 seconds", "2 h", "3 days", "1,500 ms"]),
        ("released v1.2, v2.0.1 and 3.4.5", ["v1.2", "v2.0.1", "3.4.5"]),
    ],
)
def test_numbers_found(text: str, expected: list[str]) -> None:
    assert values(text, "number") == expected


@pytest.mark.parametrize(
    "text",
    ["42 apples", "hex 0x1F", "5 sessions", "Python 3.11", "the 12:30 meeting", "sha 9f8cfd2", "a1.5 GB"],
)
def test_numbers_not_found(text: str) -> None:
    assert values(text, "number") == []


@pytest.mark.parametrize(
    ("a", "b"),
    [("250ms", "250 ms"), ("250.0 ms", "250ms"), ("1,500 ms", "1500ms"), ("5 seconds", "5s"),
     ("2 hours", "2h"), ("v1.2.3", "1.2.3"), ("512 MB", "512MB"), ("$1,000", "$1000")],
)  # fmt: skip
def test_number_keys_normalise(a: str, b: str) -> None:
    assert artifact_key("number", a) == artifact_key("number", b)
    assert number_keys(a) == number_keys(b)


def test_number_keys_keep_values_apart() -> None:
    assert artifact_key("number", "250 ms") != artifact_key("number", "25 ms")
    assert artifact_key("number", "250 ms") != artifact_key("number", "250 s")


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("[result:bash error] FAILED tests/x.py::t - ValueError: bad", "ValueError"),
        ("requests.exceptions.ConnectionError raised", "ConnectionError"),
        ("java.lang.NullPointerException at Foo", "NullPointerException"),
        ("src/a.py:3:1: E501 error: line too long", "E501"),
        ("Error [ERR_MODULE_NOT_FOUND]: cannot find", "ERR_MODULE_NOT_FOUND"),
        ("open failed: ENOENT", "ENOENT"),
        ("HTTP/1.1 404 Not Found error", "HTTP 404"),
        ("request failed with HTTP 503", "HTTP 503"),
        (
            "[assistant] (10:02) The build failed again after the merge of the feature branch today",
            ("The build failed again after the merge of the feature branch"),
        ),
        ("thread 'main' panicked at src/main.rs:2:5", "thread 'main' panicked at src/main.rs:2:5"),
    ],
)
def test_error_key_tokens(line: str, key: str) -> None:
    assert values(line, "error") == [key]


@pytest.mark.parametrize(
    "text",
    [
        "E501 line too long",  # no error word
        '[tool:bash] {"command":"pytest --maxfail=1"}',  # a call's arguments
        "Traceback (most recent call last):",
        "[result:bash] [output omitted: bash, 900 lines, had errors, paths: a/b.py]",
        "[result:bash error]",  # markers only
        "all green, 12 passed",
    ],
)
def test_error_lines_not_found(text: str) -> None:
    assert values(text, "error") == []


def test_errors_capped_at_ten_per_segment() -> None:
    text = "\n".join(f"Case{i}Error: broke" for i in range(15))
    errors = values(text, "error")
    assert len(errors) == MAX_ERRORS == 10
    assert errors[0] == "Case5Error"
    assert errors[-1] == "Case14Error"
    assert len(values(text, "error", config=LoreConfig(artifacts_per_kind=4))) == 4


def test_error_key_is_searched_in_the_line_head_only() -> None:
    line = "failed: " + "x " * LINE_CHARS + "LateError"
    assert values(line, "error") == ["failed: " + " ".join(["x"] * 26)]


def test_assertions_are_user_artefacts() -> None:
    found = extract("", pinned=("always run ruff", "Always  run RUFF", "never push on friday"))
    assert found == [
        Artifact("assertion", "Always run RUFF", True),
        Artifact("assertion", "never push on friday", True),
    ]


def test_assertions_capped_keeping_the_latest() -> None:
    pinned = tuple(f"never use tool number {i}" for i in range(5))
    found = extract("", pinned=pinned, config=LoreConfig(artifacts_per_kind=2))
    assert [a.value for a in found] == ["never use tool number 3", "never use tool number 4"]


# --- ordering, caps, priorities


def test_kinds_in_order_and_values_not_repeated_across_kinds() -> None:
    text = "ValueError in src/a.py: `parse_it` took 5 ms"
    found = extract(text, pinned=("make sure to keep parse_it fast",))
    assert [a.kind for a in found] == ["path", "identifier", "number", "error", "assertion"]
    assert "ValueError" not in [a.value for a in found if a.kind == "identifier"]


def test_user_artefacts_first_then_most_recent() -> None:
    lines = [f"[assistant] (09:{i:02d}) touched pkg/mod_{i}.py" for i in range(6)]
    text = "\n\n".join(lines)
    config = LoreConfig(artifacts_per_kind=3)
    found = [
        a for a in extract(text, user=("please look at pkg/mod_1.py",), config=config) if a.kind == "path"
    ]
    assert found == [
        Artifact("path", "pkg/mod_1.py", True),
        Artifact("path", "pkg/mod_4.py", False),
        Artifact("path", "pkg/mod_5.py", False),
    ]


def test_a_repeat_counts_as_recent() -> None:
    text = "a/one.py\na/two.py\na/three.py\na/one.py"
    assert values(text, "path", config=LoreConfig(artifacts_per_kind=2)) == ["a/three.py", "a/one.py"]


def test_user_artefacts_over_the_cap_keep_the_latest() -> None:
    user = " ".join(f"x/u{i}.py" for i in range(5))
    found = extract(user + " x/other.py", user=(user,), config=LoreConfig(artifacts_per_kind=2))
    assert [(a.value, a.from_user) for a in found if a.kind == "path"] == [
        ("x/u3.py", True),
        ("x/u4.py", True),
    ]


def test_zero_cap_gives_nothing() -> None:
    assert (
        extract("src/a.py `b_c` 5 ms FooError", pinned=("always x",), config=LoreConfig(artifacts_per_kind=0))
        == []
    )


def test_default_cap_is_twenty_per_kind() -> None:
    text = " ".join(f"d/f{i}.py snake_{i} {i} ms" for i in range(30))
    found = extract(text)
    for kind in ("path", "identifier", "number"):
        assert len([a for a in found if a.kind == kind]) == 20


def test_deterministic() -> None:
    text = "\n".join(f"[assistant] (09:{i:02d}) e{i}/f.py `k_{i}` {i}.5 GB Bad{i}Error" for i in range(40))
    first = extract(text, user=("e3/f.py",), pinned=("always x y z",))
    assert first == extract(text, user=("e3/f.py",), pinned=("always x y z",))


# --- bounded scans (pitfall 30)


def test_artefacts_after_the_scan_window_are_not_expected() -> None:
    filler = ("word " * 20 + "\n") * (SCAN_CHARS // 100 + 1)
    assert len(filler) > SCAN_CHARS
    assert extract("early/one.py\n" + filler + "late/two.py `late_name` 7 ms LateError") == [
        Artifact("path", "early/one.py", False)
    ]


def test_a_line_cut_by_the_scan_window_is_dropped() -> None:
    head = "w" * (SCAN_CHARS - 9) + "\n"
    assert extract(head + "src/a.pyz/more.md") == []
    assert extract("early/one.py\n" + head + "src/a.pyz/more.md") == [Artifact("path", "early/one.py", False)]


def test_user_texts_share_one_scan_window() -> None:
    big = "z " * SCAN_CHARS
    found = extract("a/b.py", user=(big, "a/b.py"))
    assert found == [Artifact("path", "a/b.py", False)]


class _Counting:
    """A compiled pattern that adds the characters each call may read to a tally."""

    def __init__(self, pattern: re.Pattern[str], tally: list[int]) -> None:
        self._pattern = pattern
        self._tally = tally

    def _count(self, string: str, pos: int, endpos: int) -> None:
        self._tally[0] += max(0, min(len(string), endpos) - pos)

    def finditer(self, string: str, pos: int = 0, endpos: int = sys.maxsize) -> Iterator[re.Match[str]]:
        self._count(string, pos, endpos)
        return self._pattern.finditer(string, pos, endpos)

    def search(self, string: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None:
        self._count(string, pos, endpos)
        return self._pattern.search(string, pos, endpos)

    def match(self, string: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None:
        self._count(string, pos, endpos)
        return self._pattern.match(string, pos, endpos)

    def fullmatch(self, string: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None:
        self._count(string, pos, endpos)
        return self._pattern.fullmatch(string, pos, endpos)


_PATTERNS = ("_MARKERS_RE", "_WORD_RE", "_BACKTICK_RE", "_NUMBERISH_RE", "_NUMBER_RE", "_ERROR_NAME_RE",
             "_ERROR_CODE_RE")  # fmt: skip

_PATHOLOGICAL: dict[str, Callable[[int], str]] = {
    "letters": lambda n: "a" * n,
    "slashes": lambda n: "a/" * (n // 2),
    "dotted": lambda n: "a." * (n // 2),
    "versions": lambda n: "1." * (n // 2),
    "backticks": lambda n: "`ab" * (n // 3),
    "snake": lambda n: "a_" * (n // 2),
    "errors": lambda n: ("Xa" * 2_000 + " error\n") * (n // 4_007),
    "brackets": lambda n: "[a]" * (n // 3),
    "numbers": lambda n: "1,000" * (n // 5),
    "mixed": lambda n: "x/y.py `a_b` 250ms FooError E501 v1.2.3 failed\n" * (n // 47),
}


@pytest.fixture
def tally(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every regex of the extractor (and find_paths) counted by the characters it is handed."""
    counted = [0]
    for name in _PATTERNS:
        monkeypatch.setattr(artifacts, name, _Counting(getattr(artifacts, name), counted))
    real = artifacts.find_paths

    def find_paths(text: str, *, limit: int) -> list[str]:
        counted[0] += min(len(text), 64 * 1024)
        return real(text, limit=limit)

    monkeypatch.setattr(artifacts, "find_paths", find_paths)
    return counted


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", sorted(_PATHOLOGICAL))
def test_pathological_megabyte_does_bounded_work(kind: str, tally: list[int]) -> None:
    """Work is capped by the scan window, not by the input: 1 MB and 4 MB cost the same, within a bound."""
    make = _PATHOLOGICAL[kind]
    one_mb = make(1 << 20)
    assert len(one_mb) > SCAN_CHARS
    found = extract(one_mb, user=(one_mb,))
    work_1mb = tally[0]
    tally[0] = 0
    assert extract(make(4 << 20), user=(make(4 << 20),)) == found
    assert tally[0] == work_1mb
    # each of the 8 scanners reads the window of the input and the window of the user texts at most once
    assert work_1mb <= (len(_PATTERNS) + 1) * 2 * SCAN_CHARS


# --- presence and score


@pytest.mark.parametrize(
    ("artifact", "observations", "present"),
    [
        (Artifact("identifier", "parse_config"), "* yellow (09:30) fixed PARSE_CONFIG", True),
        (Artifact("error", "the build  failed"), "* red the Build\nfailed again", True),
        (Artifact("identifier", "parse_config"), "* yellow (09:30) fixed parse config", False),
        (Artifact("path", "src/lore/app/main.py"), "edited app/main.py", True),
        (Artifact("path", "src/lore/app/main.py"), "edited main.py", False),
        (Artifact("path", "./a/b.py"), "touched a/b.py", True),
        (Artifact("path", "/abs/dir/f.py"), "touched dir/f.py", True),
        (Artifact("number", "250ms"), "p99 is 250 ms", True),
        (Artifact("number", "250 ms"), "p99 is 250ms", True),
        (Artifact("number", "1,500 ms"), "took 1500 ms", True),
        (Artifact("number", "5 seconds"), "took 5s", True),
        (Artifact("number", "v1.2.3"), "bumped to 1.2.3", True),
        (Artifact("number", "250ms"), "p99 is 2500 ms", False),
        (Artifact("number", "250ms"), "p99 is 250 s", False),
    ],
)
def test_presence_rules(artifact: Artifact, observations: str, present: bool) -> None:
    assert is_present(artifact, observations) is present


_ASSERTION = Artifact("assertion", "always run the ruff linter before a commit", True)  # 6 content words


@pytest.mark.parametrize(
    ("observations", "present"),
    [
        ("* red User: Always run the ruff linter before a commit.", True),  # verbatim
        ("* red User: ALWAYS run ruff linter before commits", True),  # 6 of 6 (plural folded)
        ("* red user wants ruff linter run always", True),  # 4 of 6 = 67%
        ("* red run ruff linter", False),  # 3 of 6 = 50%
        ("* red ruff", False),
    ],
)
def test_assertion_needs_sixty_percent_of_content_words(observations: str, present: bool) -> None:
    assert is_present(_ASSERTION, observations) is present


def test_assertion_sixty_percent_boundary() -> None:
    pinned = Artifact("assertion", "never deploy alpha beta gamma", True)  # 5 content words
    assert is_present(pinned, "never deploy alpha")  # 3 of 5 = 60%
    assert not is_present(pinned, "never deploy")  # 2 of 5


def test_assertion_of_stopwords_only_needs_the_text() -> None:
    pinned = Artifact("assertion", "make sure to do it", True)
    assert not is_present(pinned, "something else")
    assert is_present(pinned, "* red Make sure to do it.")


def test_score_arithmetic() -> None:
    found = [Artifact("path", "a/b.py"), Artifact("identifier", "x_y"), Artifact("number", "5 ms"),
             Artifact("error", "BadError")]  # fmt: skip
    retention = score_retention(found, "* yellow a/b.py x_y 5ms")
    assert retention == Retention(score=0.75, present=tuple(found[:3]), missing=(found[3],))
    assert score_retention([], "anything").score == 1.0
    assert score_retention(found, "").score == 0.0
    assert score_retention(found[:3], "").missing == tuple(found[:3])


def test_needs_validation_by_score() -> None:
    low = Retention(score=0.75, present=(), missing=(Artifact("path", "a/b.py"),))
    edge = Retention(score=0.8, present=(), missing=(Artifact("path", "a/b.py"),))
    assert needs_validation(low, CONFIG)
    assert not needs_validation(edge, CONFIG)
    assert not needs_validation(low, LoreConfig(retention_threshold=0.7))
    assert not needs_validation(Retention(score=1.0, present=(), missing=()), CONFIG)


def test_needs_validation_when_an_assertion_is_missing() -> None:
    retention = Retention(score=0.95, present=(), missing=(Artifact("assertion", "never use mocks", True),))
    assert needs_validation(retention, CONFIG)


@pytest.mark.parametrize(("missing", "budget"), [(0, 256), (1, 256), (4, 256), (5, 320), (10, 640),
                                                  (16, 1024), (17, 1024), (100, 1024)])  # fmt: skip
def test_validate_budget(missing: int, budget: int) -> None:
    assert validate_budget(missing, CONFIG) == budget


def test_validate_budget_from_config() -> None:
    assert validate_budget(3, LoreConfig(validate_budget=(100.0, 50, 2_000))) == 300


# --- the prompt


def test_validate_prompt() -> None:
    missing = [
        Artifact("path", "src/a.py"),
        Artifact("number", "250  ms"),
        Artifact("assertion", "never x y", True),
    ]
    transcript = "[user] (09:30) fix src/a.py, it costs $5 and 250 ms"
    prompt = build_validate_prompt(
        missing, transcript=transcript, observations="Date: Feb 25, 2026", config=CONFIG
    )
    assert prompt.worker == "validate"
    assert prompt.system.splitlines()[0] == marker("validate")
    assert worker_of(prompt.system) == "validate"
    assert prompt.max_tokens == validate_budget(3, CONFIG)
    assert section(prompt.user, "missing") == "- path: src/a.py\n- number: 250 ms\n- assertion: never x y"
    assert section(prompt.user, "transcript") == transcript
    assert section(prompt.user, "observations") == "Date: Feb 25, 2026"
    assert "new" in prompt.system.lower()
    assert "* <priority> [optional-tag] (HH:MM) <event>" in prompt.system


# --- merge

OBS = "Date: Feb 25, 2026\n* red (09:30) user wants a faster parser"
MISSING = (Artifact("path", "src/parser/core.py"), Artifact("number", "250ms"))


def reply(*lines: str) -> str:
    return "<observations>\n" + "\n".join(lines) + "\n</observations>"


def test_merge_appends_bullets_with_missing_artefacts() -> None:
    answer = reply(
        "* yellow (09:31) profiled parser/core.py: hot loop",
        "a stray line without a bullet mentioning 250 ms",
        "* yellow (09:32) the parse step takes 250 ms",
        "* green (09:33) small talk about lunch",
    )
    assert merge_validation(OBS, answer, MISSING) == (
        OBS
        + "\n* yellow (09:31) profiled parser/core.py: hot loop\n* yellow (09:32) the parse step takes 250 ms"
    )


def test_merge_drops_repeats() -> None:
    existing = OBS + "\n* yellow (09:31) edited src/parser/core.py"
    answer = reply(
        "* yellow (09:31) EDITED  src/parser/core.py", "* yellow (09:32) 250 ms", "* yellow (09:32) 250 ms"
    )
    assert merge_validation(existing, answer, MISSING) == existing + "\n* yellow (09:32) 250 ms"


@pytest.mark.parametrize(
    "answer",
    [
        "no block at all: * yellow src/parser/core.py",
        "<observations>\n</observations>",
        reply("* yellow src/parser/core.py") + reply("* yellow 250ms"),
        reply("* green nothing to add"),
        reply("- yellow src/parser/core.py is not a star bullet"),
    ],
)
def test_merge_gives_none(answer: str) -> None:
    assert merge_validation(OBS, answer, MISSING) is None


def test_merge_with_nothing_missing_gives_none() -> None:
    assert merge_validation(OBS, reply("* yellow src/parser/core.py"), ()) is None


# --- properties

_names = st.from_regex(r"[a-z]{2,8}_[a-z]{2,8}", fullmatch=True)
_paths = st.from_regex(r"[a-z]{1,6}/[a-z]{1,6}/[a-z]{1,8}\.(py|md|toml|ts)", fullmatch=True)
_numbers = st.builds(
    lambda value, unit: f"{value} {unit}",
    st.integers(min_value=0, max_value=10**9),
    st.sampled_from(["ms", "s", "min", "h", "days", "KB", "MB", "GB", "KiB", "%", "px", "tokens"]),
)
_errors = st.from_regex(r"[A-Z][a-z]{2,10}(Error|Exception)", fullmatch=True).map(
    lambda name: f"raised {name}"
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(_names, _paths, _numbers, _errors), min_size=1, max_size=40), st.booleans())
def test_a_text_made_of_its_artefacts_scores_one(pieces: list[str], shout: bool) -> None:
    text = "\n".join(pieces)
    found = extract(text)
    assert found
    kept = text.upper() if shout else "  ".join(text.split())
    retention = score_retention(found, kept)
    assert retention.score == 1.0
    assert retention.missing == ()


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=300), st.text(max_size=300))
def test_score_is_a_share(source: str, observations: str) -> None:
    found = extract(source)
    retention = score_retention(found, observations)
    assert 0.0 <= retention.score <= 1.0
    assert len(retention.present) + len(retention.missing) == len(found)
    assert set(retention.present).isdisjoint(retention.missing)
