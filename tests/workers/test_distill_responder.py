"""The emulator's distill responder: valid, sized, deterministic, and it keeps the transcript's artefacts."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lore_batch.emulator.responders import ResponderRegistry, echo_responder
from lore_batch.emulator.workers.distill import distill_responder, matches_distill
from lore_core.assertions import extract_assertions
from lore_core.config import LoreConfig
from lore_core.observer import build_observer_prompt, check_observer_output
from lore_core.prompting import Prompt, section
from lore_core.retention import extract_artifacts, score_retention
from lore_core.segments import Segment, segment
from lore_core.store.records import MessageKind, MessageRecord
from lore_core.tokens import count_tokens

T0 = datetime(2026, 2, 25, 9, 30, tzinfo=UTC)
CONFIG = LoreConfig()
SEP = "\n\x1f"
BULLET_RE = re.compile(r"^\* (red|yellow|green)( \[[a-z0-9-]+\])? \(\d{2}:\d{2}\) \S")


class History:
    """Builds stored rows the way the engine does (tool results joined to their call by ``unit_id``)."""

    def __init__(self) -> None:
        self.records: list[MessageRecord] = []

    def add(self, text: str, *, kind: MessageKind, minutes: float) -> MessageRecord:
        unit_id = self.records[-1].id if kind == "tool_results" else None
        record = MessageRecord(
            id=f"{len(self.records):032x}",
            session_id="s1",
            position=len(self.records),
            role="assistant" if kind == "assistant" else "user",
            kind=kind,
            text=text,
            content_hash=f"h{len(self.records)}",
            tokens=count_tokens(text),
            created_at=T0 + timedelta(minutes=minutes),
            unit_id=unit_id,
        )
        self.records.append(record)
        return record

    def user(self, text: str, minutes: float) -> None:
        self.add(text, kind="human", minutes=minutes)

    def assistant(self, text: str, minutes: float) -> None:
        self.add(text, kind="assistant", minutes=minutes)

    def tool(self, text: str, name: str, args: dict[str, Any], result: str, minutes: float) -> None:
        call = f"[tool:{name}] {json.dumps(args, separators=(',', ':'))}"
        self.add(SEP.join(part for part in (text, call) if part), kind="assistant", minutes=minutes)
        self.add(f"[result:{name}] {result}", kind="tool_results", minutes=minutes)


def params_of(prompt: Prompt, *, blocks: bool = False) -> dict[str, Any]:
    content: Any = [{"type": "text", "text": prompt.user}] if blocks else prompt.user
    system: Any = [{"type": "text", "text": prompt.system}] if blocks else prompt.system
    return {
        "model": "claude-test",
        "system": system,
        "max_tokens": prompt.max_tokens,
        "messages": [{"role": "user", "content": content}],
    }


def prompt_for(records: list[MessageRecord], *, prior: str | None = None) -> tuple[Segment, Prompt]:
    [seg] = segment(records, config=CONFIG)
    assertions = extract_assertions(seg.records, config=CONFIG, tz=UTC)
    return seg, build_observer_prompt(seg, prior=prior, assertions=assertions, config=CONFIG, tz=UTC)


def answer(seg: Segment, prompt: Prompt) -> str:
    """Run the responder and check everything a real service would: returns the observations body."""
    out = distill_responder(params_of(prompt))
    assert out.stop_reason == "end_turn"
    [block] = out.content
    text = block["text"]
    assert math.ceil(len(text.encode()) / 4) <= prompt.max_tokens
    transcript = section(prompt.user, "transcript") or ""
    body = check_observer_output(text, source_tokens=seg.tokens)
    assert check_observer_output(text, source_tokens=count_tokens(transcript)) == body
    lines = body.splitlines()
    assert lines[0] == f"Date: {(section(prompt.user, 'session_date') or '').splitlines()[0]}"
    for line in lines[1:]:
        assert line.startswith("Date: ") or BULLET_RE.match(line), line
    return body


def retention(seg: Segment, prompt: Prompt, body: str) -> float:
    artifacts = extract_artifacts(
        section(prompt.user, "transcript") or "",
        user_texts=[r.text for r in seg.records if r.kind == "human"],
        assertions=[a.text for a in extract_assertions(seg.records, config=CONFIG, tz=UTC)],
        config=CONFIG,
    )
    return score_retention(artifacts, body).score


def chat() -> list[MessageRecord]:
    h = History()
    h.user(
        "Our API p95 is 850 ms on /v1/search. From now on, use orjson instead of the stdlib json module.", 0
    )
    h.assistant(
        "Three options: 1) cache the ranking in Redis (saves ~400 ms), 2) move SearchIndex.rebuild to a "
        "background job, 3) switch the serializer to orjson (saves ~60 ms). I suggest 1 and 3.",
        2,
    )
    h.user("Go with 1 and 3. Never touch the schema in migrations/0007_search.py.", 5)
    h.assistant(
        "Done: added cache_ranking() in src/search/cache.py with a TTL of 300 s; p95 is now 410 ms.", 9
    )
    return h.records


def tool_heavy() -> list[MessageRecord]:
    h = History()
    h.user(
        "The CI job fails on tests/test_parser.py with a TimeoutError after 30 s. "
        "Make sure to keep parse_config backwards compatible.",
        0,
    )
    for k in range(12):
        path = f"src/lore/parser/mod_{k}.py"
        lines = 150 if k % 3 == 0 else 20
        listing = "\n".join(
            f"{n:4d}  def handler_{k}_{n}(cfg): return cfg.get('key_{n}')" for n in range(lines)
        )
        h.tool(f"Checking {path}.", "read_file", {"path": path}, listing, 1 + k)
    h.tool(
        "Found it: load_sections in src/lore/parser/core.py retries 5x with 6 s sleeps. I replaced the retry "
        "with one read and cached ConfigLoader.load; the run drops from 31.2 s to 0.8 s.",
        "bash",
        {"command": "pytest -q tests/test_parser.py"},
        "........\n8 passed in 0.81s",
        20,
    )
    return h.records


def two_days() -> list[MessageRecord]:
    h = History()
    h.user("Please always run ruff before committing.", 0)
    h.assistant("Noted, ruff runs first.", 1)
    h.user("Bump the version to v2.4.1 in pyproject.toml tomorrow.", 14 * 60 + 30)  # 00:00 next day
    h.assistant("Bumped to v2.4.1.", 14 * 60 + 31)
    return h.records


@pytest.mark.parametrize("build", [chat, tool_heavy, two_days], ids=["chat", "tool-heavy", "two-days"])
def test_output_passes_the_checks_and_keeps_the_artefacts(build: Any) -> None:
    seg, prompt = prompt_for(build())
    body = answer(seg, prompt)
    assert retention(seg, prompt, body) >= CONFIG.retention_threshold
    for assertion in extract_assertions(seg.records, config=CONFIG, tz=UTC):
        assert f"* red ({assertion.at:%H:%M}) {assertion.text}" in body


def test_small_transcripts_keep_every_unit_time_and_artefact() -> None:
    seg, prompt = prompt_for(chat())
    body = answer(seg, prompt)
    for time in ("09:30", "09:32", "09:35", "09:39"):
        assert f"({time})" in body
    for artefact in (
        "850 ms",
        "/v1/search",
        "SearchIndex.rebuild",
        "migrations/0007_search.py",
        "300 s",
        "410 ms",
    ):
        assert artefact in body
    assert retention(seg, prompt, body) == 1.0


def test_tool_units_are_tagged_and_stripped_outputs_are_not_a_problem() -> None:
    seg, prompt = prompt_for(tool_heavy())
    assert "[output omitted: read_file, 150 lines" in (section(prompt.user, "transcript") or "")
    body = answer(seg, prompt)
    assert "[use-read-file]" in body
    assert "[use-bash]" in body
    for artefact in ("TimeoutError", "src/lore/parser/core.py", "ConfigLoader.load", "31.2 s", "0.8 s"):
        assert artefact in body


def test_a_new_day_gets_its_own_date_line() -> None:
    seg, prompt = prompt_for(two_days(), prior="Date: Feb 24, 2026\n* red (18:00) User works on the release.")
    body = answer(seg, prompt)
    lines = body.splitlines()
    assert lines[0] == "Date: Feb 25, 2026"
    assert "Date: Feb 26, 2026" in lines
    assert lines.index("Date: Feb 26, 2026") < next(i for i, line in enumerate(lines) if "(00:00)" in line)
    assert "v2.4.1" in body


def test_a_long_transcript_fills_about_the_budget() -> None:
    h = History()
    for i in range(120):
        h.user(f"Question {i}: what about module_{i} in pkg/area_{i}/impl.py and its {i * 3} ms latency?", i)
        h.assistant(
            f"Answer {i}: module_{i} is slow because compute_{i}() loops twice; {' '.join(['detail'] * 40)}.",
            i + 0.5,
        )
    seg, prompt = prompt_for(h.records)
    assert seg.tokens > 9_000
    body = answer(seg, prompt)
    size = math.ceil(len(body.encode()) / 4)
    assert 0.8 * prompt.max_tokens <= size <= prompt.max_tokens
    assert retention(seg, prompt, body) >= CONFIG.retention_threshold


def test_a_transcript_near_the_expansion_thresholds_stays_within_the_limit() -> None:
    for words in range(10, 120, 7):  # sources from about 40 to 700 tokens: 5N, 2N and N limits
        h = History()
        h.user("Fix src/app/main.py " + " ".join(f"w{i}" for i in range(words)), 0)
        h.assistant("Fixed parse_args in src/app/main.py; tests pass in 1.2 s.", 1)
        seg, prompt = prompt_for(h.records)
        answer(seg, prompt)


def test_deterministic_and_indifferent_to_the_content_form() -> None:
    _seg, prompt = prompt_for(tool_heavy())
    first = distill_responder(params_of(prompt)).content
    assert distill_responder(params_of(prompt)).content == first
    assert distill_responder(params_of(prompt, blocks=True)).content == first


def test_matches_only_distill_prompts() -> None:
    _, prompt = prompt_for(chat())
    assert matches_distill(params_of(prompt))
    assert matches_distill(params_of(prompt, blocks=True))
    assert not matches_distill({"system": "[lore-memory:curate]\n...", "messages": []})
    assert not matches_distill({"messages": []})
    registry = ResponderRegistry()
    registry.add(matches_distill, distill_responder)
    assert registry.resolve(params_of(prompt)) is distill_responder
    assert registry.resolve({"messages": []}) is echo_responder


def test_a_budget_too_small_is_cut_like_a_model_would_be() -> None:
    _, prompt = prompt_for(chat())
    params = params_of(prompt) | {"max_tokens": 10}
    out = distill_responder(params)
    assert out.stop_reason == "max_tokens"
    assert len(out.content[0]["text"].encode()) <= 40


def test_odd_requests_still_answer_a_block() -> None:
    out = distill_responder({"system": "[lore-memory:distill]", "max_tokens": 256, "messages": []})
    assert out.content[0]["text"] == "<observations>\nDate: unknown\n</observations>"
