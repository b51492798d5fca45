"""The gen-0 observer: its input, prompt, budget, output check and the mechanical ``digest`` (ENGINE.md 4.4).

Observer input renders each unit as ``[<role>] (HH:MM) <body>``, blank-line separated, times in the configured
zone; a ``[date] Mon D, YYYY`` line marks a change of day. A body is the message's stored chunks with a tool
call's result placed right after the call. In this rendering only:

- tool arguments stay visible (pitfall 34), but string values over ``tool_input_max_chars`` are shortened;
- a result over ``tool_output_max_chars`` becomes :func:`~lore_core.annotations.strip_annotation` (the one
  loss convention); thinking over the same limit is shortened;
- user text is never cut, except a single unit over ``observer_input_cap_tokens``: it keeps the head 2/3 and
  the tail 1/3 of the cap, by tokens, around a line saying how many lines were cut.

Everything here is pure: time comes from the records, the zone and the token counter are arguments.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict, deque
from collections.abc import Sequence
from datetime import UTC, date, datetime, tzinfo
from typing import Final

from lore_core.annotations import strip_annotation
from lore_core.assertions import Assertion
from lore_core.config import LoreConfig
from lore_core.errors import ConfigError
from lore_core.flatten import CHUNK_SEPARATOR
from lore_core.messages import compact_json
from lore_core.outputs import OutputRejected, observations_block
from lore_core.prompting import Prompt, render
from lore_core.segments import Segment, Unit, units_of
from lore_core.store.records import MessageRecord
from lore_core.tokens import TokenCounter, count_tokens

__all__ = [
    "build_observer_prompt",
    "check_observer_output",
    "date_label",
    "distill_budget",
    "expansion_limit",
    "r_compression",
    "render_digest",
    "render_observer_input",
]

DIGEST_SNIPPET_CHARS: Final = 200
SESSION_START: Final = "session start"
_MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TOOL_RE = re.compile(r"\[tool:([^\]\n]*)\] ?")
_RESULT_RE = re.compile(r"\[result:([^\]\n]*?)( error)?\](?: |$)")
_THINKING = "[thinking] "
_MAX_CHARS_PER_TOKEN: Final = 8  # upper bound used when a single line must be cut by tokens


def distill_budget(source_tokens: int, config: LoreConfig) -> int:
    """The observer's ``max_tokens``: ``clamp(ceil(10 * sqrt(N)), 256, 4096)`` with ``config.distill_budget``.

    Example: ``distill_budget(16_384, LoreConfig()) == 1280``.
    """
    factor, floor, cap = config.distill_budget
    return max(floor, min(math.ceil(factor * math.sqrt(max(source_tokens, 0))), cap))


def expansion_limit(source_tokens: int) -> int:
    """The most tokens observations may have for ``N`` source tokens: 5N under 100, 2N under 500, else N.

    Example: ``expansion_limit(80) == 400``.
    """
    if source_tokens < 100:
        return 5 * source_tokens
    if source_tokens < 500:
        return 2 * source_tokens
    return source_tokens


def r_compression(distilled_tokens: int, source_tokens: int) -> float:
    """``distilled / sqrt(N)`` (N below 1 counts as 1). Example: ``r_compression(128, 16_384) == 1.0``."""
    return distilled_tokens / math.sqrt(max(source_tokens, 1))


def date_label(at: datetime) -> str:
    """``Mon D, YYYY`` in English whatever the locale. Example: ``date_label(datetime(2026, 2, 5)) == "Feb 5,
    2026"``."""
    return f"{_MONTHS[at.month - 1]} {at.day}, {at.year}"


def _local(at: datetime, tz: tzinfo) -> datetime:
    return (at if at.tzinfo is not None else at.replace(tzinfo=UTC)).astimezone(tz)


def render_observer_input(
    records: Sequence[MessageRecord], *, config: LoreConfig, tz: tzinfo, counter: TokenCounter = count_tokens
) -> str:
    """The transcript the observer reads (see the module docstring); ``""`` for no records. Never raises.

    Example::

        render_observer_input([question], config=LoreConfig(), tz=UTC)   # '[user] (09:30) Why does it fail?'
    """
    blocks: list[str] = []
    previous: date | None = None
    for unit in units_of(records):
        at = _local(unit[0].created_at, tz)
        if previous is not None and at.date() != previous:
            blocks.append(f"[date] {date_label(at)}")
        previous = at.date()
        body = _cap_tokens(_unit_body(unit, config), config.observer_input_cap_tokens, counter)
        blocks.append(f"[{unit[0].role}] ({at:%H:%M}) {body}")
    return "\n\n".join(blocks)


def _unit_body(unit: Unit, config: LoreConfig) -> str:
    if unit[0].kind == "human":  # user text is shown as typed, whatever it looks like
        return "\n".join(_chunks(unit[0])) or "(no text)"
    lines = [_render_chunk(chunk, config) for chunk in _chunks(unit[0])]
    results: dict[str, deque[str]] = defaultdict(deque)
    extras: list[str] = []
    for record in unit[1:]:
        for chunk in _chunks(record):
            match = _RESULT_RE.match(chunk)
            if match is None:
                extras.append(_render_chunk(chunk, config))
            else:
                results[match.group(1)].append(_render_chunk(chunk, config))
    if results:
        paired: list[str] = []
        for chunk, line in zip(_chunks(unit[0]), lines, strict=True):
            paired.append(line)
            call = _TOOL_RE.match(chunk)
            if call is not None and results[call.group(1)]:
                paired.append(results[call.group(1)].popleft())
        lines = paired + [line for queue in results.values() for line in queue]
    return "\n".join(lines + extras) or "(no text)"


def _chunks(record: MessageRecord) -> list[str]:
    return [chunk for chunk in record.text.split(CHUNK_SEPARATOR) if chunk]


def _render_chunk(chunk: str, config: LoreConfig) -> str:
    call = _TOOL_RE.match(chunk)
    if call is not None:
        return chunk[: call.end()] + _shorten_input(chunk[call.end() :], config.tool_input_max_chars)
    result = _RESULT_RE.match(chunk)
    if result is not None:
        body = chunk[result.end() :]
        if len(body) <= config.tool_output_max_chars:
            return chunk
        label = chunk[: result.end()].rstrip()
        return f"{label} {strip_annotation(result.group(1), body, hint=config.strip_hint)}"
    if chunk.startswith(_THINKING):
        return _THINKING + _shorten(chunk[len(_THINKING) :], config.tool_output_max_chars)
    return chunk


def _shorten(value: str, limit: int) -> str:
    """``value`` when within ``limit`` chars, else its head 2/3 and tail 1/3 around a cut marker."""
    if len(value) <= limit:
        return value
    head = value[: limit * 2 // 3]
    tail = value[len(value) - limit // 3 :]
    return f"{head}[... {len(value) - len(head) - len(tail)} chars cut ...]{tail}"


def _shorten_input(raw: str, limit: int) -> str:
    """Compact JSON tool input with each long string value shortened; non-JSON input shortened whole."""
    if len(raw) <= limit:
        return raw  # no string inside can be longer: keep the exact bytes
    try:
        parsed = json.loads(raw)
        shortened = _shorten_values(parsed, limit)
    except (ValueError, RecursionError):
        return _shorten(raw, limit)
    return raw if shortened == parsed else compact_json(shortened)


def _shorten_values(value: object, limit: int) -> object:
    if isinstance(value, str):
        return _shorten(value, limit)
    if isinstance(value, dict):
        return {key: _shorten_values(item, limit) for key, item in value.items()}
    if isinstance(value, list):
        return [_shorten_values(item, limit) for item in value]
    return value


def _cap_tokens(body: str, cap: int, counter: TokenCounter) -> str:
    """``body`` unchanged within ``cap`` tokens; else head 2/3 + tail 1/3 of the cap by whole lines."""
    # A token is at least one UTF-8 byte and a char at most four: a short body needs no count.
    if len(body) * 4 <= cap or counter(body) <= cap:
        return body
    lines = body.split("\n")
    head, head_lines = _head(lines, cap * 2 // 3, counter)
    tail, tail_lines = _tail(lines[head_lines:], cap // 3, counter)
    cut = len(lines) - head_lines - tail_lines
    note = f"[... {cut} of {len(lines)} lines cut: this message is over {cap} tokens ...]"
    return "\n".join([*head, note, *tail])


def _head(lines: list[str], budget: int, counter: TokenCounter) -> tuple[list[str], int]:
    """Whole lines from the front within ``budget`` (and how many); else the first line's fitting prefix."""
    kept: list[str] = []
    used = 0
    for line in lines:
        used += counter(line) + 1
        if used > budget:
            break
        kept.append(line)
    if kept or not lines:
        return kept, len(kept)
    piece = _fit(lines[0], budget, counter, from_end=False)
    return ([piece] if piece else []), 0


def _tail(lines: list[str], budget: int, counter: TokenCounter) -> tuple[list[str], int]:
    """Whole lines from the back within ``budget`` (and how many); else the last line's fitting suffix."""
    kept: list[str] = []
    used = 0
    for line in reversed(lines):
        used += counter(line) + 1
        if used > budget:
            break
        kept.append(line)
    if kept or not lines:
        return kept[::-1], len(kept)
    piece = _fit(lines[-1], budget, counter, from_end=True)
    return ([piece] if piece else []), 0


def _fit(line: str, budget: int, counter: TokenCounter, *, from_end: bool) -> str:
    """The longest prefix (or suffix) of ``line`` whose count is within ``budget``, by binary search."""
    low, high = 0, max(0, min(len(line), budget * _MAX_CHARS_PER_TOKEN))
    while low < high:
        mid = (low + high + 1) // 2
        if counter(line[len(line) - mid :] if from_end else line[:mid]) <= budget:
            low = mid
        else:
            high = mid - 1
    return line[len(line) - low :] if from_end else line[:low]


def build_observer_prompt(
    segment: Segment,
    *,
    prior: str | None,
    assertions: Sequence[Assertion],
    config: LoreConfig,
    tz: tzinfo,
    counter: TokenCounter = count_tokens,
) -> Prompt:
    """The ``distill`` call for ``segment``: sections ``<prior_observations>`` (or "session start"),
    ``<session_date>``, ``<must_keep>`` and ``<transcript>``; ``max_tokens`` = :func:`distill_budget`.

    Raises:
        ConfigError: the segment has no records.

    Example::

        prompt = build_observer_prompt(seg, prior=None, assertions=[], config=LoreConfig(), tz=UTC)
        section(prompt.user, "prior_observations")   # 'session start'
    """
    if not segment.records:
        raise ConfigError("an observer prompt needs at least one message")
    first = _local(segment.records[0].created_at, tz)
    last = _local(segment.records[-1].created_at, tz)
    session_date = date_label(first)
    if last.date() != first.date():
        session_date += f"\nuntil {date_label(last)}"
    must_keep = "\n".join(f"- ({_local(a.at, tz):%H:%M}) {a.text}" for a in assertions) or "none"
    prior_text = prior.strip() if prior is not None and prior.strip() else SESSION_START
    transcript = render_observer_input(segment.records, config=config, tz=tz, counter=counter)
    user = render(
        "distill_user",
        prior_observations=_guard(prior_text, "prior_observations"),
        session_date=session_date,
        must_keep=_guard(must_keep, "must_keep"),
        transcript=_guard(transcript, "transcript"),
    )
    return Prompt(
        worker="distill",
        system=render("distill_system"),
        user=user,
        max_tokens=distill_budget(segment.tokens, config),
    )


def _guard(body: str, name: str) -> str:
    """``body`` with its own closing tag defused, so the section reads back whole."""
    return body.replace(f"</{name}>", f"</ {name}>")


def check_observer_output(text: str, *, source_tokens: int, counter: TokenCounter = count_tokens) -> str:
    """The observations body of an observer reply, when it passes ENGINE.md 7a.

    Raises:
        OutputRejected: ``no_observations_block``, ``several_observations_blocks``, ``empty_observations``, or
            ``expansion`` when ``T(body) > expansion_limit(source_tokens)``.

    Example::

        check_observer_output("<observations>\\nDate: Feb 25, 2026\\n</observations>", source_tokens=900)
        # 'Date: Feb 25, 2026'
    """
    body = observations_block(text)
    tokens = counter(body)
    limit = expansion_limit(source_tokens)
    if tokens > limit:
        raise OutputRejected(
            "expansion", f"{tokens} tokens for {source_tokens} source tokens (limit {limit})"
        )
    return body


def render_digest(
    records: Sequence[MessageRecord],
    *,
    tz: tzinfo,
    limit_tokens: int | None,
    counter: TokenCounter = count_tokens,
) -> str:
    """The mechanical log of a ``digest`` row: ``Date: Mon D, YYYY`` (again at each change of day), then one
    green bullet per message (role, HH:MM, first 200 chars; tool calls by name, results as strip annotations).

    With ``limit_tokens``, bullets are kept from the start while the body fits, the first one that does not is
    shortened to fit when it can; the first ``Date:`` line is always kept, so the body is never empty.
    Never raises.

    Example::

        render_digest([question], tz=UTC, limit_tokens=None)
        # 'Date: Feb 25, 2026\\n* green (09:30) user: Why does it fail?'
    """
    lines: list[str] = []
    previous: date | None = None
    for record in records:
        at = _local(record.created_at, tz)
        if previous is None or at.date() != previous:
            lines.append(f"Date: {date_label(at)}")
        previous = at.date()
        lines.append(f"* green ({at:%H:%M}) {_digest_event(record)}")
    if not lines:
        return "Date: (no messages)"
    if limit_tokens is None:
        return "\n".join(lines)
    return _cut_lines(lines, limit_tokens, counter)


def _digest_event(record: MessageRecord) -> str:
    texts: list[str] = []
    tools: list[str] = []
    omitted: list[str] = []
    for chunk in _chunks(record):
        call, result = _TOOL_RE.match(chunk), _RESULT_RE.match(chunk)
        if call is not None:
            tools.append(call.group(1))
        elif result is not None:
            omitted.append(strip_annotation(result.group(1), chunk[result.end() :]))
        elif not chunk.startswith(_THINKING):
            texts.append(chunk)
    snippet = " ".join(" ".join(texts).split())[:DIGEST_SNIPPET_CHARS]
    parts = [snippet] if snippet else []
    if tools:
        parts.append("[tools: " + ", ".join(dict.fromkeys(tools)) + "]")
    parts.extend(omitted)
    role = "tool results" if record.kind == "tool_results" else record.role
    return f"{role}: " + (" ".join(parts) or "(no text)")


def _cut_lines(lines: list[str], limit: int, counter: TokenCounter) -> str:
    newline = max(counter("\n"), 1)
    ellipsis = counter("…")
    kept = [lines[0]]
    used = counter(lines[0])
    for line in lines[1:]:
        cost = newline + counter(line)
        if used + cost <= limit:
            kept.append(line)
            used += cost
            continue
        piece = _fit(line, limit - used - newline - ellipsis, counter, from_end=False).rstrip()
        if line.startswith("* ") and len(piece) > line.find(": ") + 2:  # some event text, not just the head
            kept.append(piece + "…")
        break
    while len(kept) > 1 and counter("\n".join(kept)) > limit:  # per-line counts are an estimate
        kept.pop()
    return "\n".join(kept)
