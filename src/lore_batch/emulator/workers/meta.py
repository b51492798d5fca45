"""The emulator's stand-in for the reflector: answers ``meta-distill`` prompts with a merged document.

It reads the prior document (``<document>``, possibly empty) and the new ``Segment i`` blocks
(``<segments>``), and answers one ``<observations>`` block with the four headings of
:data:`lore_core.reflector.HEADINGS`. Bullets are de-duplicated and sorted into sections: decisions (user
facts and choices), technical changes (lines with artefacts, kept verbatim), a current state taken from the
newest segment, and a timeline that compresses each segment to one line. The answer is at most 60% of the
input's UTF-8 bytes and within ``max_tokens`` (the emulator counts ``ceil(bytes / 4)``); when it must shrink,
the oldest items go first. Deterministic: the same params always give the same text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from lore_batch.emulator.responders import ResponderOutput, last_user_text, worker_of_params
from lore_core.prompting import section
from lore_core.reflector import HEADINGS

__all__ = ["matches_meta", "meta_responder"]

_INPUT_SHARE: Final = 0.6  # the answer's byte budget relative to its input; tiktoken's check must pass too
_TAG_BYTES: Final = 64  # "<observations>" tags, newlines and a margin
_ITEM_CHARS: Final = 220  # longer bullets are cut (artefacts tend to come early in a bullet)
_TIMELINE_HEAD: Final = 90
_OLD_TIMELINE_HEAD: Final = 40  # segments before the newest few are compressed harder
_RECENT_SEGMENTS: Final = 3
_STATE_ITEMS: Final = 2

_SEGMENT_RE = re.compile(r"^Segment \d+[ \t]*$", re.MULTILINE)
_DATE_RE = re.compile(r"^\s*Date:\s*(.+?)\s*$")
_BULLET_RE = re.compile(r"^\s*(?:[*\-•]|\d+[.)])\s+")
_PREFIX_RE = re.compile(
    r"^(?:(?:(?P<red>red\b|🔴)|(?P<green>green\b|🟢)|yellow\b|🟡)\s*)?(?:\[[a-z0-9-]+\]\s*)?"
    r"(?:\((?P<time>\d{1,2}:\d{2})\)\s*)?",
    re.IGNORECASE,
)
_DECISION_RE = re.compile(
    r"\b(?:decid\w*|chose|choose|switch(?:ed)? to|prefer\w*|always|never|from now on|instead of|agreed|"
    r"going with|settled on|will use|let's use|replac\w+)\b",
    re.IGNORECASE,
)
_ARTEFACT_RE = re.compile(
    r"`[^`\s]+`|[\w.-]+/[\w./-]*\.\w{1,5}\b|\b\w+(?:Error|Exception)\b|\b[a-z]+_[a-z0-9_]+\b"
    r"|\b[a-z]+[A-Z]\w*\b|\b\d+(?:\.\d+)?\s?(?:ms|s|min|h|KB|MB|GB|KiB|MiB|GiB|%|px|tokens)\b"
    r"|\b[A-Za-z_]\w*\.[A-Za-z_]\w*\b|\bv?\d+\.\d+(?:\.\d+)?\b"
)
_WORD_RE = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class _Item:
    text: str
    red: bool = False
    green: bool = False
    date: str = ""
    time: str = ""


def matches_meta(params: Mapping[str, Any]) -> bool:
    """Whether ``params`` is a ``meta-distill`` call (its system prompt starts with the marker)."""
    return worker_of_params(params) == "meta-distill"


def _key(text: str) -> str:
    return " ".join(_WORD_RE.findall(text.casefold()))


def _item(line: str, date: str) -> _Item | None:
    body = _BULLET_RE.sub("", line.strip(), count=1)
    prefix = _PREFIX_RE.match(body)
    red, green, time = False, False, ""
    if prefix is not None:
        red, green = prefix.group("red") is not None, prefix.group("green") is not None
        time = prefix.group("time") or ""
        body = body[prefix.end() :]
    body = " ".join(body.split())
    if not body or body == "---":
        return None
    return _Item(text=body[:_ITEM_CHARS], red=red, green=green, date=date, time=time)


def _segments(text: str) -> list[list[_Item]]:
    segments: list[list[_Item]] = []
    for block in _SEGMENT_RE.split(text):
        items: list[_Item] = []
        date = ""
        for line in block.splitlines():
            found = _DATE_RE.match(line)
            if found is not None:
                date = found.group(1)
                continue
            item = _item(line, date)
            if item is not None:
                items.append(item)
        if items:
            segments.append(items)
    return segments


def _heading_of(line: str) -> str | None:
    bare = line.strip().lstrip("#").strip().strip("*").strip().rstrip(":").casefold()
    return next((heading for heading in HEADINGS if heading.casefold() == bare), None)


def _document(text: str) -> dict[str, list[_Item]]:
    sections: dict[str, list[_Item]] = {heading: [] for heading in HEADINGS}
    current = HEADINGS[-1]
    for line in text.splitlines():
        heading = _heading_of(line)
        if heading is not None:
            current = heading
            continue
        item = _item(line, "")
        if item is not None:
            sections[current].append(item)
    return sections


def _timeline_line(items: Sequence[_Item], head_chars: int) -> _Item:
    first = next((item for item in items if not item.green), items[0])
    times = [item.time for item in items if item.time]
    span = f" ({times[0]}-{times[-1]})" if len(set(times)) > 1 else (f" ({times[0]})" if times else "")
    head = first.text[:head_chars]
    more = f" (+{len(items) - 1} more)" if len(items) > 1 else ""
    date = f"{first.date}{span}: " if first.date else (f"{span.strip()}: " if span else "")
    return _Item(text=f"{date}{head}{more}")


def _merge(document: str, segments: str) -> dict[str, list[_Item]]:
    """The merged sections, oldest first, without duplicates (first occurrence kept)."""
    prior = _document(document)
    new = _segments(segments)
    merged = {heading: list(prior[heading]) for heading in HEADINGS}
    # The old current state is superseded by the newest segment; it moves to the timeline, compressed.
    merged["Session Timeline"] += [_Item(text=item.text[:_TIMELINE_HEAD]) for item in prior["Current State"]]
    merged["Current State"] = []
    seen = {_key(item.text) for heading in HEADINGS for item in merged[heading]}
    for index, items in enumerate(new):
        recent = index >= len(new) - _RECENT_SEGMENTS
        line = _timeline_line(items, _TIMELINE_HEAD if recent else _OLD_TIMELINE_HEAD)
        if _key(line.text) not in seen:
            seen.add(_key(line.text))
            merged["Session Timeline"].append(line)
        state = [item for item in items if not item.green][-_STATE_ITEMS:] if index == len(new) - 1 else []
        for item in items:
            key = _key(item.text)
            if key in seen:
                continue
            seen.add(key)
            if item in state:
                merged["Current State"].append(item)
            elif item.red or _DECISION_RE.search(item.text):
                merged["Key Decisions"].append(item)
            elif _ARTEFACT_RE.search(item.text):
                merged["Technical Changes"].append(item)
    if not merged["Current State"] and new:
        merged["Current State"].append(new[-1][-1])
    return merged


def _line(item: _Item) -> str:
    when = f"({item.time}) " if item.time else ""
    return f"- {when}{item.text}"


def _fit(merged: dict[str, list[_Item]], budget: int) -> str:
    """Render the sections within ``budget`` UTF-8 bytes. Items are offered round-robin over the sections,
    newest first in each, so every section keeps its recent items and the oldest ones drop out first."""
    headings = [f"## {heading}" for heading in HEADINGS]
    used = sum(len(h.encode()) + 1 for h in headings)
    keep: set[tuple[str, int]] = set()
    queues = {heading: list(range(len(merged[heading]) - 1, -1, -1)) for heading in HEADINGS}
    for depth in range(max(len(queue) for queue in queues.values())):
        for heading in HEADINGS:
            if depth >= len(queues[heading]):
                continue
            position = queues[heading][depth]
            size = len(_line(merged[heading][position]).encode()) + 1
            if used + size <= budget:
                keep.add((heading, position))
                used += size
    if used > budget:
        first = next((item.text for h in HEADINGS for item in merged[h]), "summary")
        return first.encode()[: max(1, budget)].decode(errors="ignore") or "summary"
    lines: list[str] = []
    for heading, title in zip(HEADINGS, headings, strict=True):
        lines.append(title)
        lines += [_line(item) for i, item in enumerate(merged[heading]) if (heading, i) in keep]
    return "\n".join(lines)


def meta_responder(params: Mapping[str, Any]) -> ResponderOutput:
    """Answer a ``meta-distill`` prompt with a merged four-section ``<observations>`` document.

    Never raises on odd input: a prompt without sections gets a minimal document.
    Example: ``meta_responder(params).content[0]["text"].startswith("<observations>")``.
    """
    user = last_user_text(params)
    document = section(user, "document") or ""
    segments = section(user, "segments") or ""
    input_bytes = len(document.encode()) + len(segments.encode())
    budget = int(_INPUT_SHARE * input_bytes)
    max_tokens = params.get("max_tokens")
    if isinstance(max_tokens, int) and max_tokens > 0:
        budget = min(budget, 4 * max_tokens - _TAG_BYTES)
    body = _fit(_merge(document, segments), max(1, budget))
    return ResponderOutput.text(f"<observations>\n{body}\n</observations>")
