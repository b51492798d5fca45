"""The distilled prefix (ENGINE.md 8.5): render, selection, the message pair and the append-only cache.

The render is a pure function of the rows (no timestamps, no random ids)::

    ## Session History

    ### Earlier Work (summarized)

    (d:1a2b3c4d | 40 sources)
    <meta observations>

    ### Recent Work (distilled)

    (d:5e6f7a8b | 6 sources | lossy)
    <observations>

The "Earlier Work" part appears only when a meta row (generation >= 1) exists. Between meta rounds the cache
grows by appending the new row blocks, and equals a full render of the same rows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from lore_core.config import LoreConfig
from lore_core.messages import Message
from lore_core.store.records import DistillationRecord
from lore_core.tokens import TokenCounter, count_tokens, estimate_message

__all__ = [
    "NOTICE_TEXT",
    "PrefixCache",
    "meta_row",
    "pair_tokens",
    "prefix_pair",
    "render_row",
    "render_rows",
    "select_rows",
    "update_prefix_cache",
]

NOTICE_TEXT: Final = (
    "[Condensed memory of the earlier conversation follows. Use it as context and do not discuss its format.]"
)
"""The user half of the prefix pair: one bracketed line, fixed bytes (our wording)."""

HEADING: Final = "## Session History"
EARLIER_HEADING: Final = "### Earlier Work (summarized)"
RECENT_HEADING: Final = "### Recent Work (distilled)"
_SEPARATOR: Final = "\n\n"  # blocks are joined by blank lines

# select(): 0.7 x recency + 0.3 x bonus; the bonus words follow the reference's importance signals.
_RECENCY_WEIGHT: Final = 0.7
_BONUS_WEIGHT: Final = 0.3
_BONUSES: Final = (
    (re.compile(r"\b(?:decision|decided|decide|chose|chosen|agreed)\b", re.IGNORECASE), 0.3),
    (re.compile(r"\b(?:bugs?|gotchas?|regressions?)\b", re.IGNORECASE), 0.2),
    (re.compile(r"\barchitecture\b", re.IGNORECASE), 0.1),
)
_BONUS_SCAN: Final = 64 * 1024  # regex scans read at most this much of a row (pitfall 30)
_NO_BREAKPOINT: Final = LoreConfig(prefix_cache_breakpoint=False)  # breakpoints do not change estimates


@dataclass(frozen=True, slots=True, kw_only=True)
class PrefixCache:
    """A rendered prefix the session keeps between turns.

    ``row_ids`` are the rows rendered, in order; ``text`` is the assistant-side render; ``tokens`` the
    estimate of the whole pair (notice + render, as messages).
    """

    row_ids: tuple[str, ...]
    text: str
    tokens: int


def meta_row(rows: Sequence[DistillationRecord]) -> DistillationRecord | None:
    """The meta (reflector) row: the highest generation >= 1, the later one on ties; None without one.

    Example: ``meta_row([gen0, gen1]) is gen1``.
    """
    best: DistillationRecord | None = None
    for row in rows:
        if row.generation >= 1 and (best is None or row.generation >= best.generation):
            best = row
    return best


def render_row(row: DistillationRecord) -> str:
    """One row block: ``(d:<first 8 of id> | <n> sources[ | lossy])`` then its observations.

    ``lossy`` marks ``r_compression < 1.0``.
    Example: ``render_row(row) == "(d:1a2b3c4d | 3 sources)\\n* ..."``.
    """
    header = f"(d:{row.id[:8]} | {len(row.source_ids)} sources" + (
        " | lossy)" if row.r_compression < 1.0 else ")"
    )
    body = row.observations.strip()
    return f"{header}\n{body}" if body else header


def render_rows(rows: Sequence[DistillationRecord]) -> str:
    """The full render of ``rows`` (given in ``seq`` order): headings, the meta row first, then the rest.

    Example: ``render_rows([]) == "## Session History\\n\\n### Recent Work (distilled)"``.
    """
    meta = meta_row(rows)
    parts = [HEADING]
    if meta is not None:
        parts += [EARLIER_HEADING, render_row(meta)]
    parts.append(RECENT_HEADING)
    parts += [render_row(row) for row in rows if row is not meta]
    return _SEPARATOR.join(parts)


def _bonus(row: DistillationRecord) -> float:
    text = row.observations[:_BONUS_SCAN]
    return min(1.0, sum(weight for pattern, weight in _BONUSES if pattern.search(text)))


def select_rows(rows: Sequence[DistillationRecord], k: int) -> list[DistillationRecord]:
    """The best ``k`` rows for layers 3 and 4: the meta row first, then gen-0 rows in their (``seq``) order.

    All rows when there are at most ``k``. Otherwise the meta row takes the first slot and the others go to
    the gen-0 rows scoring highest on ``0.7 x recency + 0.3 x bonus`` (recency 0 for the oldest to 1 for the
    newest; bonus: decision words +0.3, bug / gotcha / regression +0.2, architecture +0.1, capped at 1.0),
    the newer one winning ties.

    Example: ``select_rows(rows, 5)[0] is meta_row(rows)`` when a meta row exists.
    """
    if k <= 0:
        return []
    meta = meta_row(rows)
    others = [row for row in rows if row is not meta]
    head = [meta] if meta is not None else []
    slots = k - len(head)
    if len(others) > slots:
        last = len(others) - 1
        scores = [
            _RECENCY_WEIGHT * (i / last if last else 1.0) + _BONUS_WEIGHT * _bonus(row)
            for i, row in enumerate(others)
        ]
        best = sorted(range(len(others)), key=lambda i: (-scores[i], -i))[: max(slots, 0)]
        others = [others[i] for i in sorted(best)]
    return head + others


def prefix_pair(text: str, *, config: LoreConfig, breakpoint: bool = True) -> tuple[Message, Message]:
    """The synthetic pair: a user message with :data:`NOTICE_TEXT`, an assistant message with ``text``.

    With ``breakpoint`` and ``config.prefix_cache_breakpoint`` the render block carries ``cache_control``
    ``{"type": "ephemeral"}`` (plus ``"ttl": "1h"`` when ``config.cache_ttl == "1h"``). New dicts every call,
    equal for equal arguments.
    Example: ``prefix_pair(render_rows(rows), config=LoreConfig())[1]["role"] == "assistant"``.
    """
    notice: Message = {"role": "user", "content": [{"type": "text", "text": NOTICE_TEXT}]}
    block: dict[str, Any] = {"type": "text", "text": text}
    if breakpoint and config.prefix_cache_breakpoint:
        control = {"type": "ephemeral"}
        if config.cache_ttl == "1h":
            control["ttl"] = "1h"
        block["cache_control"] = control
    return notice, {"role": "assistant", "content": [block]}


def pair_tokens(text: str, *, counter: TokenCounter = count_tokens) -> int:
    """The estimate of the prefix pair around ``text`` (notice + render, as messages; breakpoints cost 0).

    Example: ``pair_tokens("x", counter=len) == 2 * 7 + len(NOTICE_TEXT) + 1``.
    """
    notice, render = prefix_pair(text, config=_NO_BREAKPOINT)
    return estimate_message(notice, counter=counter) + estimate_message(render, counter=counter)


def update_prefix_cache(
    cache: PrefixCache | None, rows: Sequence[DistillationRecord], *, counter: TokenCounter = count_tokens
) -> PrefixCache:
    """The cache for ``rows``: ``cache`` itself, ``cache`` with new row blocks appended, or a full render.

    Append-only when the cached row ids are a prefix of the new ids and no new row becomes the meta row: only
    the new blocks are rendered and appended after a blank line (no heading repeated), which equals a full
    render of the same rows. Any other change (a meta round archived rows) renders everything again.
    Example: ``update_prefix_cache(None, rows, counter=len).text == render_rows(rows)``.
    """
    ids = tuple(row.id for row in rows)
    if cache is not None and ids[: len(cache.row_ids)] == cache.row_ids:
        if len(ids) == len(cache.row_ids):
            return cache
        kept = rows[: len(cache.row_ids)]
        if meta_row(rows) is meta_row(kept):
            added = _SEPARATOR.join(render_row(row) for row in rows[len(kept) :])
            text = cache.text + _SEPARATOR + added
            return PrefixCache(row_ids=ids, text=text, tokens=pair_tokens(text, counter=counter))
    text = render_rows(rows)
    return PrefixCache(row_ids=ids, text=text, tokens=pair_tokens(text, counter=counter))
