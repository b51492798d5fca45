"""The emulator's stand-in for the curator: answers ``curate`` prompts (curation and consolidation).

Curation (``<existing>`` + ``<inputs>``): a JSON array with up to three ``create`` ops drawn from input
lines that read like knowledge (an "always"/"never" preference, a decision, a gotcha naming an error, an
architecture note), and ``update`` ops for existing entries whose title the inputs mention or a new op would
repeat. Consolidation (a ``<target>`` section): ``update``/``delete`` ops only, merging entries of the same
category into the first one until the count reaches the target, then deleting from the end. Every id comes
from ``<existing>``, so the ops pass :func:`lore_core.curation.validate_ops`. The JSON stays within
``max_tokens`` (``ceil(bytes / 4)``). Deterministic.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from lore_batch.emulator.responders import ResponderOutput, last_user_text, worker_of_params
from lore_core.curation import cap_content
from lore_core.prompting import section

__all__ = ["curate_responder", "matches_curate"]

_MAX_CREATES: Final = 3
_MAX_UPDATES: Final = 2
_TITLE_WORDS: Final = 8
_CONTENT_CHARS: Final = 400
_MERGED_CHARS: Final = 1_100  # under the 1,200 entry cap, so the validator never truncates a merge
_OP_SLACK: Final = 120  # bytes of JSON around one op's content
_LINE_SCAN: Final = 2_000  # only the head of a very long line is searched

_ENTRY_RE = re.compile(r"^- \[(?P<id>[^\]\s]+)\] \((?P<category>[a-z]+)\) (?P<title>.*?): (?P<content>.*)$")
_NOISE_RE = re.compile(
    r"^\s*(?:[*\-•]\s+)?(?:\[[^\]\n]{1,40}\]\s*)?(?:(?:red\b|yellow\b|green\b|🔴|🟡|🟢)\s*)?"
    r"(?:\[[a-z0-9-]+\]\s*)?(?:\(\d{1,2}:\d{2}\)\s*)?",
    re.IGNORECASE,
)
_RULES: Final = (
    ("preference", re.compile(r"\b(?:always|never|prefers?|from now on)\b", re.IGNORECASE)),
    ("gotcha", re.compile(r"\b\w+(?:Error|Exception)\b|\berrno \d+\b|\bE\d{3,}\b")),
    (
        "decision",
        re.compile(
            r"\b(?:decided|decide|chose|choose|going with|switch(?:ed)? to|will use|let's use|settled on)\b",
            re.IGNORECASE,
        ),
    ),
    ("architecture", re.compile(r"\b(?:architecture|talks to|depends on|layer)\b", re.IGNORECASE)),
)
_WORD_RE = re.compile(r"[\w'./-]+")
_ERROR_NAME_RE = re.compile(r"\b\w+(?:Error|Exception)\b")


@dataclass(frozen=True, slots=True)
class _Entry:
    id: str
    category: str
    title: str
    content: str


def matches_curate(params: Mapping[str, Any]) -> bool:
    """Whether ``params`` is a ``curate`` call (curation or consolidation), by the system prompt's marker."""
    return worker_of_params(params) == "curate"


def _entries(text: str) -> list[_Entry]:
    found = (_ENTRY_RE.match(line.strip()) for line in text.splitlines())
    return [_Entry(m["id"], m["category"], m["title"], m["content"]) for m in found if m is not None]


def _title(text: str, category: str) -> str:
    """The first words of the line; a gotcha's title starts at its error name."""
    error = _ERROR_NAME_RE.search(text) if category == "gotcha" else None
    words = _WORD_RE.findall(text[error.start() :] if error else text)[:_TITLE_WORDS]
    return " ".join(words).rstrip(".,;:")


def _creates(inputs: str) -> list[dict[str, Any]]:
    ops: list[dict[str, Any]] = []
    titles: set[str] = set()
    for raw in inputs.splitlines():
        line = " ".join(_NOISE_RE.sub("", raw, count=1).split())
        if len(line) < 12:
            continue
        category = next((name for name, rule in _RULES if rule.search(line[:_LINE_SCAN])), None)
        title = _title(line, category or "")
        if category is None or not title or title.casefold() in titles:
            continue
        titles.add(title.casefold())
        content = line[:_CONTENT_CHARS]
        ops.append(
            {"op": "create", "category": category, "title": title, "content": content, "confidence": 0.8}
        )
        if len(ops) == _MAX_CREATES:
            break
    return ops


def _curation(existing: list[_Entry], inputs: str) -> list[dict[str, Any]]:
    by_title = {entry.title.casefold(): entry for entry in existing}
    lowered = inputs.casefold()
    ops: list[dict[str, Any]] = []
    updated: set[str] = set()
    for create in _creates(inputs):
        match = by_title.get(str(create["title"]).casefold())
        if match is None:
            ops.append(create)
        elif len(updated) < _MAX_UPDATES and match.id not in updated:
            updated.add(match.id)
            ops.append({"op": "update", "id": match.id, "content": create["content"]})
    for entry in existing:
        if len(updated) >= _MAX_UPDATES:
            break
        if entry.id not in updated and len(entry.title) >= 4 and entry.title.casefold() in lowered:
            updated.add(entry.id)
            ops.append({"op": "update", "id": entry.id, "confidence": 1.0})
    return ops


def _consolidation(existing: list[_Entry], target: int, budget: int) -> list[dict[str, Any]]:
    excess = len(existing) - target
    if excess <= 0:
        return []
    groups: dict[str, list[_Entry]] = {}
    for entry in existing:
        groups.setdefault(entry.category, []).append(entry)
    absorbed: dict[str, list[_Entry]] = {}
    gone: set[str] = set()
    for members in sorted(groups.values(), key=lambda g: -len(g)):
        for entry in reversed(members[1:]):
            if len(gone) == excess:
                break
            absorbed.setdefault(members[0].id, []).append(entry)
            gone.add(entry.id)
    deletes = [
        {"op": "delete", "id": entry.id, "reason": f"merged into {keeper}"}
        for keeper, entries in absorbed.items()
        for entry in entries
    ]
    keepers = set(absorbed)
    for entry in reversed(existing):
        if len(gone) == excess:
            break
        if entry.id not in gone and entry.id not in keepers:
            gone.add(entry.id)
            deletes.append({"op": "delete", "id": entry.id, "reason": "stale"})
    room = budget - sum(len(json.dumps(op)) + 2 for op in deletes)
    per_update = min(_MERGED_CHARS, max(40, room // max(1, len(absorbed)) - _OP_SLACK))
    updates = []
    for entry in existing:
        if entry.id in absorbed:
            parts = [entry.content, *(f"{e.title}: {e.content}" for e in absorbed[entry.id])]
            updates.append(
                {"op": "update", "id": entry.id, "content": cap_content(" | ".join(parts), per_update)}
            )
    return updates + deletes


def _target(text: str) -> int | None:
    found = re.search(r"\d+", text)
    return int(found.group()) if found else None


def _fitting(ops: list[dict[str, Any]], budget: int) -> str:
    text = json.dumps(ops, ensure_ascii=False)
    while ops and len(text.encode()) > budget:
        ops = ops[:-1]
        text = json.dumps(ops, ensure_ascii=False)
    return text


def curate_responder(params: Mapping[str, Any]) -> ResponderOutput:
    """Answer a ``curate`` prompt with a JSON array of ops (see the module docstring).

    Never raises on odd input: a prompt without the expected sections gets ``[]``.
    Example: ``json.loads(curate_responder(params).content[0]["text"])`` is a list of op objects.
    """
    user = last_user_text(params)
    existing = _entries(section(user, "existing") or "")
    max_tokens = params.get("max_tokens")
    budget = 4 * max_tokens - 64 if isinstance(max_tokens, int) and max_tokens > 16 else 8_000
    target_text = section(user, "target")
    if target_text is not None:
        target = _target(target_text)
        ops = [] if target is None else _consolidation(existing, target, budget)
    else:
        ops = _curation(existing, section(user, "inputs") or "")
    return ResponderOutput.text(_fitting(ops, budget))
