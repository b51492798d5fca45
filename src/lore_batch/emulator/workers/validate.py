"""The emulator's stand-in for the ``validate`` worker: one new bullet per missing artefact.

It reads the ``<missing>`` list (``- <kind>: <value>`` lines) and the ``<transcript>``, finds the last
transcript line holding each artefact (a path also by its last two components), and answers one
``<observations>`` block with one yellow bullet per artefact, ``* yellow (HH:MM) <artefact>: <context>``: the
artefact verbatim, then a little of that line around it; the time is the one of the transcript unit the line
belongs to, left out when none is visible. An artefact the transcript lacks is quoted alone. The answer stays
within ``max_tokens`` (the emulator counts ``ceil(utf8_bytes / 4)``): the context shrinks or goes first, then
items that no longer fit are left out.
Deterministic: the same params always give the same text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from lore_batch.emulator.responders import ResponderOutput, last_user_text, worker_of_params
from lore_core.prompting import section

__all__ = ["matches_validate", "validate_responder"]

_OPEN: Final = "<observations>\n"
_CLOSE: Final = "\n</observations>"
_CONTEXT_CHARS: Final = 60  # at most this much of the line on each side of the artefact
_UNBOUNDED: Final = 1 << 30
_MISSING_RE = re.compile(r"^\s*(?:[-*]\s+)?(?P<kind>[a-z]+):\s*(?P<value>\S.*?)\s*$")
_UNIT_RE = re.compile(r"^\[[^\]\n]{1,40}\] \((?P<time>\d{1,2}:\d{2})\)")
_MARKERS_RE = re.compile(r"^[\s\x1f]*(?:(?:\[[\w:. -]{1,80}\]|\(\d{1,2}:\d{2}\))[ \t]*){0,4}")


def matches_validate(params: Mapping[str, Any]) -> bool:
    """Whether ``params`` is a ``validate`` call (its system prompt starts with the marker).

    Example: ``matches_validate({"system": "[lore-memory:validate]\\n..."}) is True``.
    """
    return worker_of_params(params) == "validate"


def _missing(text: str) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    for line in text.splitlines():
        match = _MISSING_RE.match(line)
        if match is not None:
            items.append((match.group("kind"), match.group("value")))
    return items


def _lines(transcript: str) -> list[tuple[str, str]]:
    """(time of the line's unit or "", the line without its render markers, whitespace collapsed)."""
    rows: list[tuple[str, str]] = []
    time = ""
    for line in transcript.splitlines():
        unit = _UNIT_RE.match(line)
        if unit is not None:
            time = unit.group("time")
        markers = _MARKERS_RE.match(line)
        body = line[markers.end() :] if markers is not None else line
        rows.append((time, " ".join(body.split())))
    return rows


def _needles(kind: str, value: str) -> list[str]:
    needles = [" ".join(value.split())]
    parts = value.strip().split("/")
    if kind == "path" and len(parts) > 2:
        needles.append("/".join(parts[-2:]))
    return needles


def _locate(kind: str, value: str, rows: Sequence[tuple[str, str]]) -> tuple[str, str, int, int] | None:
    """(time, line, start, end) of the last line holding ``value``; None when no line does."""
    for needle in _needles(kind, value):
        lowered = needle.lower()
        for time, line in reversed(rows):
            folded = line.lower()
            if len(folded) != len(line):  # case folding moved offsets: compare the line as it is
                folded = line
            start = folded.find(lowered)
            if start >= 0:
                return time, line, start, start + len(needle)
    return None


def _candidates(kind: str, value: str, rows: Sequence[tuple[str, str]]) -> list[str]:
    """Bullets for one artefact, longest context first; each quotes the artefact and none is empty."""
    found = _locate(kind, value, rows)
    if found is None:
        return [f"* yellow {kind} {value}"]
    time, line, start, end = found
    head = f"* yellow ({time}) {value}" if time else f"* yellow {value}"
    candidates = []
    for width in (_CONTEXT_CHARS, _CONTEXT_CHARS // 2, _CONTEXT_CHARS // 4):
        left, right = max(0, start - width), min(len(line), end + width)
        snippet = line[left:right].strip()
        if snippet != value:
            candidates.append(
                f"{head}: {'...' if left > 0 else ''}{snippet}{'...' if right < len(line) else ''}"
            )
    return [*candidates, head]


def _size(bullet: str) -> int:
    return len(bullet.encode()) + 1  # with its newline


def validate_responder(params: Mapping[str, Any]) -> ResponderOutput:
    """Answer a ``validate`` prompt with one bullet per missing artefact (see the module docstring).

    Never raises on odd params: an empty ``<missing>`` list gets one green "nothing to add" bullet, which
    :func:`lore_core.retention.merge_validation` drops.

    Example::

        user = ("<missing>\\n- path: src/a.py\\n</missing>\\n"
                "<transcript>\\n[user] (09:30) fix src/a.py\\n</transcript>")
        validate_responder({"system": "[lore-memory:validate]", "max_tokens": 256,
                            "messages": [{"role": "user", "content": user}]})
        # text: '<observations>\\n* yellow (09:30) src/a.py: fix src/a.py\\n</observations>'
    """
    user = last_user_text(params)
    items = _missing(section(user, "missing") or "")
    rows = _lines(section(user, "transcript") or "")
    max_tokens = params.get("max_tokens")
    budget = 4 * max_tokens if isinstance(max_tokens, int) and max_tokens > 0 else _UNBOUNDED
    budget -= len(_OPEN.encode()) + len(_CLOSE.encode())
    bullets: list[str] = []
    for index, (kind, value) in enumerate(items):
        share = budget // (len(items) - index)  # unused bytes flow to the later items
        candidates = _candidates(kind, value, rows)
        fitting = [bullet for bullet in candidates if _size(bullet) <= share]
        bullet = fitting[0] if fitting else candidates[-1]
        if _size(bullet) <= budget:
            bullets.append(bullet)
            budget -= _size(bullet)
    if not bullets:
        bullets.append("* green nothing to add")
    return ResponderOutput.text(_OPEN + "\n".join(bullets) + _CLOSE)
