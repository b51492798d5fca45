"""Pinned user assertions: instructions and preference changes the observer must keep (ENGINE.md 4.4).

Scanned in user text only (``human`` rows; image, document and tool chunks skipped). Two families:

- instruction forms (always, never, make sure to, don't forget to, I want / need / prefer / expect ...) with a
  body of 10-80 characters;
- preference changes (switch to / from, let's use, from now on, I'd rather, I've decided to, no longer use,
  replacing X with Y, I switched / moved / migrated to ...) with a body of 3-120 characters.

A body runs to the end of its sentence: a newline, or ``.``, ``!`` or ``,`` followed by whitespace or the end
of the text (so ``src/app.py`` and ``3.11`` stay whole). A longer body is cut at a word boundary within
its maximum. Each assertion (trigger + body) is capped at 200 characters; of two overlapping matches in one
message the longer is kept; identical assertions keep the latest; at most ``max_assertions``, the most
recent ones, returned in time order.

Scans are bounded (pitfall 30): a message is only searched when a cheap substring precheck finds a trigger
word, and only its first 64 KB; the patterns are linear (no nested quantifiers).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Final

from lore_core.annotations import SCAN_LIMIT
from lore_core.config import LoreConfig
from lore_core.flatten import CHUNK_SEPARATOR
from lore_core.store.records import MessageRecord

__all__ = ["Assertion", "extract_assertions"]

MAX_ASSERTION_CHARS: Final = 200
INSTRUCTION_BODY: Final = (10, 80)
PREFERENCE_BODY: Final = (3, 120)

# Lower-case words one of which every trigger contains: a message without any is never regex-scanned.
_PRECHECK: Final = (
    "always", "never", "make sure", "forget", "want", "need", "prefer", "expect", "switch", "let",
    "from now on", "rather", "decided", "no longer", "replac", "moved", "migrated",
)  # fmt: skip
_APOS = "['\u2019]"
_INSTRUCTION_RE = re.compile(
    r"\b(?:always|never|make sure(?: to| that)?|don" + _APOS + r"?t forget(?: to)?"
    r"|(?:i|we) (?:really )?(?:want|need|prefer|expect)(?: you)?(?: to)?)[ \t]+",
    re.IGNORECASE,
)
_PREFERENCE_RE = re.compile(
    r"\b(?:switch(?:ed|ing)? (?:over )?(?:to|from)|let" + _APOS + r"?s use|let us use|from now on"
    r"|i" + _APOS + r"d rather|i would rather|(?:i|we)(?:" + _APOS + r"ve| have)? decided to"
    r"|no longer use|replac(?:e|ing)(?= [^\n]{1,120}? with )"
    r"|(?:i|we) (?:switched|moved|migrated) (?:over )?to)\b,?[ \t]*",
    re.IGNORECASE,
)
_STOP_RE = re.compile(r"\n|[.!,](?=\s|$)")
_SKIPPED_CHUNKS: Final = ("[image ", "[document ", "[result:", "[tool:", "[thinking] ")


@dataclass(frozen=True, slots=True)
class Assertion:
    """A user statement to keep verbatim, with the time of its message (in the configured time zone).

    Example: ``Assertion(text="always run ruff first", at=datetime(2026, 2, 25, 9, 30, tzinfo=UTC))``.
    """

    text: str
    at: datetime


@dataclass(frozen=True, slots=True)
class _Match:
    start: int
    end: int
    text: str


def extract_assertions(
    records: Sequence[MessageRecord], *, config: LoreConfig, tz: tzinfo
) -> list[Assertion]:
    """The pinned assertions of ``records`` (user rows only), at most ``config.max_assertions``, oldest first.

    ``at`` is the message's ``created_at`` converted to ``tz``. Pure; never raises.

    Example::

        extract_assertions([user_row("From now on use uv for installs.")], config=LoreConfig(), tz=UTC)
        # [Assertion(text='From now on use uv for installs', at=...)]
    """
    found: list[Assertion] = []
    for record in records:
        if record.role != "user" or record.kind != "human":
            continue
        at = _aware(record.created_at).astimezone(tz)
        for chunk in record.text.split(CHUNK_SEPARATOR):
            if not chunk.startswith(_SKIPPED_CHUNKS):
                found.extend(Assertion(text=match.text, at=at) for match in _scan(chunk))
    latest: dict[str, int] = {}
    for index, assertion in enumerate(found):
        latest[assertion.text.casefold()] = index
    unique = [a for i, a in enumerate(found) if latest[a.text.casefold()] == i]
    limit = config.max_assertions
    return unique[-limit:] if limit > 0 else []


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _scan(text: str) -> list[_Match]:
    """Matches in one chunk, overlaps resolved (longer wins, earlier on ties), in text order."""
    lowered = text[:SCAN_LIMIT].lower()
    if not any(word in lowered for word in _PRECHECK):
        return []
    window = text[:SCAN_LIMIT]
    candidates = _matches(window, _INSTRUCTION_RE, INSTRUCTION_BODY) + _matches(
        window, _PREFERENCE_RE, PREFERENCE_BODY
    )
    kept: list[_Match] = []
    for match in sorted(candidates, key=lambda m: (-(m.end - m.start), m.start)):
        if all(match.end <= other.start or match.start >= other.end for other in kept):
            kept.append(match)
    return sorted(kept, key=lambda m: m.start)


def _matches(text: str, pattern: re.Pattern[str], bounds: tuple[int, int]) -> list[_Match]:
    low, high = bounds
    out: list[_Match] = []
    for trigger in pattern.finditer(text):
        body_start = trigger.end()
        stop = _STOP_RE.search(text, body_start, min(len(text), body_start + high + 1))
        raw_end = stop.start() if stop else min(len(text), body_start + high + 1)
        body = text[body_start:raw_end].rstrip()
        if len(body) > high:
            body = _cut_words(body, high)
        if len(body) < low:
            continue
        phrase = " ".join((trigger.group(0) + body).split())
        out.append(_Match(trigger.start(), body_start + len(body), phrase[:MAX_ASSERTION_CHARS].rstrip()))
    return out


def _cut_words(body: str, limit: int) -> str:
    """``body`` cut to ``limit`` chars, at the last space when there is one in the second half."""
    head = body[:limit]
    space = head.rfind(" ")
    return head[:space].rstrip() if space >= limit // 2 else head
