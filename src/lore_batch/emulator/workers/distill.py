"""The emulator's stand-in for the gen-0 observer: answers ``distill`` prompts with an observations block.

It reads ``<transcript>``, ``<session_date>`` and ``<must_keep>`` from the last user message and answers one
``<observations>`` block: ``Date: <session date>``, a red bullet per must-keep item (at its time), then one
bullet per transcript unit (red for the user, yellow for the assistant, a ``[use-<tool>]`` tag for tool units)
with the unit's time, the start of its text and, verbatim, its artefacts: file paths, identifiers, numbers
with units and versions, error names (or the head of an error line).

Sizing: the answer never exceeds ``max_tokens`` as the emulator counts it (``ceil(utf8_bytes / 4)``) and fills
up to about that budget when the transcript has enough to say. It also stays within the observer's expansion
limit (:func:`lore_core.observer.expansion_limit`) for the source size the transcript implies, measured with
the real token counter, so :func:`lore_core.observer.check_observer_output` accepts it. When the budget is
tight, the artefacts retention scoring selects come first (user artefacts, then the most recent), then the
units' bullets (user units first, then the most recent). Deterministic: the same params always give the
same text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from lore_batch.emulator.responders import ResponderOutput, last_user_text, worker_of_params
from lore_core.annotations import SCAN_LIMIT
from lore_core.config import LoreConfig
from lore_core.observer import expansion_limit
from lore_core.prompting import section
from lore_core.retention import extract_artifacts
from lore_core.tokens import count_tokens

__all__ = ["distill_responder", "matches_distill"]

_WRAP_BYTES: Final = 40  # "<observations>\n", "\n</observations>" and a margin
_LEAD_CHARS: Final = 48  # the text a bullet starts with before the budget is spread
_MAX_PER_KIND: Final = 40
_SHRINK: Final = 0.8  # byte target factor per retry when the token check fails
_RETRIES: Final = 12

_UNIT_RE = re.compile(r"^\[(user|assistant)\] \((\d{1,2}:\d{2})\) ?", re.MULTILINE)
_DATE_LINE_RE = re.compile(r"\n*^\[date\] ([^\n]+)\s*\Z", re.MULTILINE)
_KEEP_RE = re.compile(r"^\s*-\s*\((\d{1,2}:\d{2})\)\s*(.+?)\s*$")
_LABEL_RE = re.compile(r"^\[(tool|result):([^\]\n]*?)(?: error)?\] ?")
_CALL_RE = re.compile(r"^\[tool:([^\]\n]*)\]", re.MULTILINE)
_OMITTED = ("[output omitted:", " chars cut ...]", " lines cut: ")
_SCORED = LoreConfig()  # what retention scoring selects (the default per-kind caps)
_WIDE = LoreConfig(artifacts_per_kind=_MAX_PER_KIND)  # everything else a unit has, when the budget allows


_Refs = tuple[list[tuple[int, str]], list[tuple[int, str]]]
"""(unit index, artefact) pairs: those retention scoring selects, then the others."""


@dataclass(frozen=True, slots=True)
class _Unit:
    role: str
    time: str
    body: str
    new_date: str | None = None


@dataclass(slots=True)
class _Plan:
    """One unit's bullet while the budget is spread: which artefacts and how much of its text it shows."""

    unit: _Unit
    text: str
    tag: str
    refs: list[str] = field(default_factory=list)
    chars: int = 0
    included: bool = False


def matches_distill(params: Mapping[str, Any]) -> bool:
    """Whether ``params`` is a ``distill`` call (its system prompt starts with the marker).

    Example: ``matches_distill({"system": "[lore-memory:distill]\\n...", "messages": []}) is True``.
    """
    return worker_of_params(params) == "distill"


def distill_responder(params: Mapping[str, Any]) -> ResponderOutput:
    """An observations block for a ``distill`` call (see the module docstring). Never raises on odd input.

    Example::

        out = distill_responder({"system": marker("distill"), "max_tokens": 256, "messages": [
            {"role": "user", "content": "<session_date>\\nFeb 25, 2026\\n</session_date>\\n<transcript>\\n"
             "[user] (09:30) Fix src/app.py\\n</transcript>"}]})
        out.content[0]["text"]   # '<observations>\\nDate: Feb 25, 2026\\n* red (09:30) user: Fix ...'
    """
    user = last_user_text(params)
    transcript = section(user, "transcript") or ""
    date = ((section(user, "session_date") or "").strip().splitlines() or ["unknown"])[0].strip()
    keeps = _keeps(section(user, "must_keep") or "")
    units = _units(transcript)
    max_tokens = params.get("max_tokens")
    cap = 4 * max_tokens - _WRAP_BYTES if isinstance(max_tokens, int) and max_tokens > 0 else 4_096
    limit = _safe_limit(transcript, units)
    refs = _ref_order(transcript, units, keeps)
    target = max(cap, 0)
    body = ""
    for _ in range(_RETRIES):
        body = _compose(units, refs, keeps, date, target)
        if len(body.encode()) <= cap and count_tokens(body) <= limit:
            break
        target = int(target * _SHRINK)
    text = f"<observations>\n{body}\n</observations>"
    if isinstance(max_tokens, int) and max_tokens > 0 and len(text.encode()) > 4 * max_tokens:
        # A budget too small even for the fixed lines: cut like a model stopped by max_tokens would be.
        return ResponderOutput.text(
            text.encode()[: 4 * max_tokens].decode(errors="ignore"), stop_reason="max_tokens"
        )
    return ResponderOutput.text(text)


def _keeps(text: str) -> list[tuple[str, str]]:
    found = (_KEEP_RE.match(line) for line in text.splitlines())
    return [(match.group(1), match.group(2)[:200]) for match in found if match is not None]


def _units(transcript: str) -> list[_Unit]:
    heads = list(_UNIT_RE.finditer(transcript))
    units: list[_Unit] = []
    pending_date: str | None = None
    for index, head in enumerate(heads):
        end = heads[index + 1].start() if index + 1 < len(heads) else len(transcript)
        body = transcript[head.end() : end]
        date_line = _DATE_LINE_RE.search(body)
        if date_line is not None:
            body = body[: date_line.start()]
        units.append(_Unit(head.group(1), head.group(2), body.strip(), pending_date))
        pending_date = date_line.group(1).strip() if date_line is not None else None
    return units


def _safe_limit(transcript: str, units: list[_Unit]) -> int:
    """The smallest expansion limit over the source sizes the transcript allows.

    The stored source is at least the transcript without its headers (``low``); it is about the whole
    transcript (``high``), or unknown-larger when outputs were omitted or cut. The limit is not monotonic (5N
    under 100, then 2N, then N from 500), so the thresholds inside the range are checked too.
    """
    low = count_tokens("\n\n".join(unit.body for unit in units))
    high = count_tokens(transcript)
    if any(mark in transcript for mark in _OMITTED):
        high = max(high, 10**9)
    candidates = [expansion_limit(low), expansion_limit(high)]
    candidates += [expansion_limit(n) for n in (100, 500) if low < n <= high]
    return min(candidates)


def _compose(units: list[_Unit], refs: _Refs, keeps: list[tuple[str, str]], date: str, target: int) -> str:
    """The body within about ``target`` UTF-8 bytes. In order of priority: the date and must-keep lines, the
    artefacts retention scoring selects (with their units' bullets), every unit's bullet (user units first,
    then the most recent), the units' other artefacts, and finally more of each bullet's text."""
    plans = [_Plan(unit, _event_text(unit.body), _tag(unit)) for unit in units]
    fixed = [f"Date: {date}"] + [f"* red ({time}) {text}" for time, text in keeps]
    fixed += [f"Date: {unit.new_date}" for unit in units if unit.new_date]
    left = target - sum(len(line.encode()) + 1 for line in fixed)
    scored, extra = refs
    seen: list[str] = []
    left = _add_refs(plans, scored, left, seen)
    for index in _unit_order(units):
        left = _include(plans[index], left)
    left = _add_refs(plans, extra, left, seen)
    _spread(plans, left)
    return _render(plans, keeps, date)


def _unit_order(units: list[_Unit]) -> list[int]:
    """User units, then the others; each from the most recent."""
    latest_first = list(reversed(range(len(units))))
    return [i for i in latest_first if units[i].role == "user"] + [
        i for i in latest_first if units[i].role != "user"
    ]


def _include(plan: _Plan, left: int) -> int:
    if plan.included:
        return left
    plan.chars = min(len(plan.text), _LEAD_CHARS)
    cost = len(_line(plan).encode()) + 1
    if cost > left:
        plan.chars = 0
        return left
    plan.included = True
    return left - cost


def _ref_order(transcript: str, units: list[_Unit], keeps: list[tuple[str, str]]) -> _Refs:
    """(unit index, artefact) pairs, most wanted first: what retention scoring selects (user artefacts, then
    the most recent), and apart every other artefact of the units in :func:`_unit_order`. An artefact
    belongs to the last unit that mentions it (a user artefact to the last user unit that does)."""
    if not units:
        return [], []
    selected = extract_artifacts(
        transcript,
        user_texts=[unit.body for unit in units if unit.role == "user"],
        assertions=[text for _, text in keeps],
        config=_SCORED,
    )
    bodies = [unit.body[:SCAN_LIMIT].casefold() for unit in units]

    def owner(value: str, *, user: bool) -> int:
        folded = value.casefold()
        mentions = [i for i in reversed(range(len(units))) if folded in bodies[i]]
        preferred = [i for i in mentions if units[i].role == "user"] if user else []
        return (preferred or mentions or [len(units) - 1])[0]

    wanted = [a for a in selected if a.kind != "assertion"]
    scored = [(owner(a.value, user=True), a.value) for a in wanted if a.from_user]
    others = ((owner(a.value, user=False), a.value) for a in wanted if not a.from_user)
    scored += sorted(others, key=lambda pair: -pair[0])
    extra: list[tuple[int, str]] = []
    for index in _unit_order(units):
        found = extract_artifacts(units[index].body, user_texts=(), assertions=(), config=_WIDE)
        extra += [(index, a.value) for a in found]
    return scored, extra


def _add_refs(plans: list[_Plan], pairs: list[tuple[int, str]], left: int, seen: list[str]) -> int:
    """Add artefacts in the given order while the bytes last, each shown once (``seen`` grows)."""
    for index, value in pairs:
        plan = plans[index]
        folded = value.casefold()
        if any(folded in other for other in seen):
            continue
        left = _include(plan, left)
        cost = len(value.encode()) + (8 if not plan.refs else 2)
        if not plan.included or cost > left:
            continue
        plan.refs.append(value)
        seen.append(folded)
        left -= cost
    return left


def _spread(plans: list[_Plan], left: int) -> None:
    """Grow the included bullets' text evenly into the bytes left (chars approximate bytes)."""
    while left > 0:
        growing = [p for p in plans if p.included and p.chars < len(p.text)]
        if not growing:
            return
        step = max(left // len(growing), 1)
        for plan in growing:
            extra = min(step, len(plan.text) - plan.chars, left)
            plan.chars += extra
            left -= extra
            if left <= 0:
                return


def _render(plans: list[_Plan], keeps: list[tuple[str, str]], date: str) -> str:
    lines = [f"Date: {date}"]
    pending = list(keeps)
    for plan in plans:
        if plan.unit.new_date:
            lines.append(f"Date: {plan.unit.new_date}")
        if plan.unit.role == "user":
            while pending and pending[0][0] <= plan.unit.time:
                time, text = pending.pop(0)
                lines.append(f"* red ({time}) {text}")
        if plan.included:
            lines.append(_line(plan))
    lines.extend(f"* red ({time}) {text}" for time, text in pending)
    return "\n".join(lines)


def _line(plan: _Plan) -> str:
    priority = "red" if plan.unit.role == "user" else "yellow"
    tag = f" [{plan.tag}]" if plan.tag else ""
    text = plan.text[: plan.chars].rstrip()
    if plan.chars < len(plan.text):
        text += "…"
    refs = "; refs: " + ", ".join(plan.refs) if plan.refs else ""
    return f"* {priority}{tag} ({plan.unit.time}) {plan.unit.role}: {text}{refs}"


def _event_text(body: str) -> str:
    """The unit in one line: its text, tool calls as ``ran <tool> <args>``, results as ``<tool> -> ...``."""
    parts: list[str] = []
    for line in body[:SCAN_LIMIT].splitlines():
        label = _LABEL_RE.match(line)
        if label is None:
            parts.append(line)
        elif label.group(1) == "tool":
            parts.append(f"ran {label.group(2)} {line[label.end() :]}")
        else:
            parts.append(f"{label.group(2)} -> {line[label.end() :]}")
    return " ".join(" ".join(parts).split())


def _tag(unit: _Unit) -> str:
    call = _CALL_RE.search(unit.body, 0, SCAN_LIMIT) if unit.role == "assistant" else None
    if call is None:
        return ""
    name = re.sub(r"[^a-z0-9]+", "-", call.group(1).lower()).strip("-")[:30].strip("-")
    return f"use-{name}" if name else ""
