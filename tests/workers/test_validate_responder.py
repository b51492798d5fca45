"""The emulator's ``validate`` responder: it answers the real prompt, and its bullets survive the merge."""

from __future__ import annotations

import math
from typing import Any

import pytest

from lore_batch.emulator.responders import ResponderRegistry, echo_responder
from lore_batch.emulator.workers.validate import matches_validate, validate_responder
from lore_core.config import LoreConfig
from lore_core.outputs import observations_block
from lore_core.prompting import Prompt
from lore_core.retention import (
    Artifact,
    build_validate_prompt,
    extract_artifacts,
    is_present,
    merge_validation,
    score_retention,
)

CONFIG = LoreConfig()
TRANSCRIPT = """[user] (09:30) The parser is slow: `parse_config` takes 250ms on big files. Make sure to \
keep the public API stable.

[assistant] (09:31) Looking at src/lore/parser/core.py first.
[tool:bash] {"command":"pytest -q tests/test_parser.py"}
[result:bash error] FAILED tests/test_parser.py::test_big - KeyError: 'sections'

[date] Feb 26, 2026

[assistant] (10:05) Fixed it: cached the tokenizer in ConfigLoader.load, now 40 ms and 1.5 GB less memory."""
OBSERVATIONS = "Date: Feb 25, 2026\n* red (09:30) user reports a slow parser"
USER_TEXTS = (
    "The parser is slow: `parse_config` takes 250ms on big files. Make sure to keep the public API stable.",
)
ASSERTIONS = ("Make sure to keep the public API stable",)


def params(prompt: Prompt, *, max_tokens: int | None = None, system_blocks: bool = False) -> dict[str, Any]:
    system: Any = [{"type": "text", "text": prompt.system}] if system_blocks else prompt.system
    return {
        "model": "claude-test",
        "max_tokens": prompt.max_tokens if max_tokens is None else max_tokens,
        "system": system,
        "messages": [{"role": "user", "content": prompt.user}],
    }


def answer(request: dict[str, Any]) -> str:
    output = validate_responder(request)
    assert output.stop_reason == "end_turn"
    assert len(output.content) == 1
    text = output.content[0]["text"]
    assert isinstance(text, str)
    assert math.ceil(len(text.encode()) / 4) <= request["max_tokens"]
    return text


def missing_of(transcript: str = TRANSCRIPT, observations: str = OBSERVATIONS) -> tuple[Artifact, ...]:
    found = extract_artifacts(transcript, user_texts=USER_TEXTS, assertions=ASSERTIONS, config=CONFIG)
    return score_retention(found, observations).missing


def test_matches_only_validate_prompts() -> None:
    prompt = build_validate_prompt(
        missing_of(), transcript=TRANSCRIPT, observations=OBSERVATIONS, config=CONFIG
    )
    assert matches_validate(params(prompt))
    assert matches_validate(params(prompt, system_blocks=True))
    assert not matches_validate({"system": "[lore-memory:distill]\nsummarise", "messages": []})
    assert not matches_validate({"system": "You are helpful. [lore-memory:validate]"})
    assert not matches_validate({"messages": []})
    assert not matches_validate({"system": [{"type": "image"}]})


def test_one_bullet_per_missing_artefact_and_all_survive_the_merge() -> None:
    missing = missing_of()
    kinds = {artifact.kind for artifact in missing}
    assert kinds == {"path", "identifier", "number", "error", "assertion"}
    prompt = build_validate_prompt(missing, transcript=TRANSCRIPT, observations=OBSERVATIONS, config=CONFIG)
    bullets = observations_block(answer(params(prompt))).splitlines()
    assert len(bullets) == len(missing)
    for artifact, bullet in zip(missing, bullets, strict=True):
        assert bullet.startswith("* yellow ")
        assert is_present(artifact, bullet), (artifact, bullet)
    merged = merge_validation(OBSERVATIONS, answer(params(prompt)), missing)
    assert merged == OBSERVATIONS + "\n" + "\n".join(bullets)
    found = extract_artifacts(TRANSCRIPT, user_texts=USER_TEXTS, assertions=ASSERTIONS, config=CONFIG)
    assert score_retention(found, merged).score == 1.0


def test_bullets_carry_the_time_of_their_unit_and_some_context() -> None:
    missing = (
        Artifact("error", "KeyError"),
        Artifact("number", "40 ms"),
        Artifact("path", "src/lore/parser/core.py"),
    )
    prompt = build_validate_prompt(missing, transcript=TRANSCRIPT, observations=OBSERVATIONS, config=CONFIG)
    assert observations_block(answer(params(prompt))).splitlines() == [
        "* yellow (09:31) KeyError: FAILED tests/test_parser.py::test_big - KeyError: 'sections'",
        "* yellow (10:05) 40 ms: Fixed it: cached the tokenizer in ConfigLoader.load, now 40 ms and 1.5 "
        "GB less memory.",
        "* yellow (09:31) src/lore/parser/core.py: Looking at src/lore/parser/core.py first.",
    ]


def test_context_is_cut_around_the_artefact() -> None:
    line = "word " * 40 + "needle_here" + " tail" * 40
    transcript = f"[assistant] (11:00) {line}"
    prompt = build_validate_prompt(
        [Artifact("identifier", "needle_here")], transcript=transcript, observations="x", config=CONFIG
    )
    (bullet,) = observations_block(answer(params(prompt))).splitlines()
    assert bullet.startswith("* yellow (11:00) needle_here: ...")
    assert bullet.endswith("...")
    assert "needle_here" in bullet
    assert len(bullet) <= len("* yellow (11:00) needle_here: ...") + 60 + len("needle_here") + 60 + len("...")


def test_a_path_found_by_its_last_two_components() -> None:
    transcript = "[assistant] (08:00) opened parser/core.py"
    prompt = build_validate_prompt(
        [Artifact("path", "src/lore/parser/core.py")], transcript=transcript, observations="x", config=CONFIG
    )
    text = answer(params(prompt))
    assert observations_block(text) == "* yellow (08:00) src/lore/parser/core.py: opened parser/core.py"
    assert merge_validation("x", text, [Artifact("path", "src/lore/parser/core.py")]) is not None


def test_an_artefact_absent_from_the_transcript_is_quoted_alone() -> None:
    prompt = build_validate_prompt(
        [Artifact("path", "gone/away.py")], transcript="[user] (09:00) hi", observations="x", config=CONFIG
    )
    assert observations_block(answer(params(prompt))) == "* yellow path gone/away.py"


def test_no_time_when_none_is_visible() -> None:
    prompt = build_validate_prompt(
        [Artifact("number", "3x")], transcript="made it 3x faster", observations="x", config=CONFIG
    )
    assert observations_block(answer(params(prompt))) == "* yellow 3x: made it 3x faster"


def test_nothing_missing_gives_a_bullet_the_merge_drops() -> None:
    prompt = build_validate_prompt([], transcript=TRANSCRIPT, observations=OBSERVATIONS, config=CONFIG)
    text = answer(params(prompt))
    assert observations_block(text) == "* green nothing to add"
    assert merge_validation(OBSERVATIONS, text, []) is None


def _many() -> tuple[str, list[Artifact]]:
    lines = [
        f"[assistant] (12:{i % 60:02d}) {'filler ' * 12}changed p{i}/m{i}.py {'x ' * 20}" for i in range(100)
    ]
    return "\n\n".join(lines), [Artifact("path", f"p{i}/m{i}.py") for i in range(100)]


@pytest.mark.parametrize("max_tokens", [1024, 256, 64])
def test_stays_within_max_tokens(max_tokens: int) -> None:
    transcript, missing = _many()
    prompt = build_validate_prompt(missing, transcript=transcript, observations="x", config=CONFIG)
    assert prompt.max_tokens == 1024
    text = answer(params(prompt, max_tokens=max_tokens))
    bullets = observations_block(text).splitlines()
    merged = merge_validation("x", text, missing)
    assert merged is not None
    assert merged.splitlines()[1:] == bullets  # every bullet carries a missing artefact
    if max_tokens == 1024:
        assert len(bullets) == 100  # the context shrinks or goes before items are left out
        assert any(": " in bullet for bullet in bullets)
    else:
        assert 0 < len(bullets) < 100


def test_long_assertion_fits_with_a_small_budget() -> None:
    assertion = "never commit directly to the main branch without a reviewed pull request"
    transcript = f"[user] (09:00) {assertion}, please."
    prompt = build_validate_prompt(
        [Artifact("assertion", assertion, True)], transcript=transcript, observations="x", config=CONFIG
    )
    text = answer(params(prompt, max_tokens=40))
    assert observations_block(text) == f"* yellow (09:00) {assertion}"
    assert is_present(Artifact("assertion", assertion, True), observations_block(text))


def test_deterministic() -> None:
    prompt = build_validate_prompt(
        missing_of(), transcript=TRANSCRIPT, observations=OBSERVATIONS, config=CONFIG
    )
    assert validate_responder(params(prompt)) == validate_responder(params(prompt))


def test_odd_params_do_not_raise() -> None:
    text = answer({"max_tokens": 100, "messages": "not a list"})
    assert observations_block(text) == "* green nothing to add"


def test_registry_routes_validate_prompts() -> None:
    registry = ResponderRegistry()
    registry.add(matches_validate, validate_responder)
    prompt = build_validate_prompt(
        missing_of(), transcript=TRANSCRIPT, observations=OBSERVATIONS, config=CONFIG
    )
    assert registry.resolve(params(prompt)) is validate_responder
    assert registry.resolve({"system": "other", "messages": []}) is echo_responder
