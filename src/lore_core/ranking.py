"""Recall's pure steps: query terms, reciprocal rank fusion, snippets and the character budget.

Nothing here does I/O or reads a clock; the same input always gives the same output.

- :func:`query_terms` turns free text into the words a full-text index can look up (letters and digits,
  lower case, English stop words dropped: the list PostgreSQL's ``english`` configuration drops, so both
  backends see the same terms).
- :func:`fuse` merges ranked lists by reciprocal rank fusion: ``score(d) = sum(1 / (k + rank))`` over the
  lists that hold ``d``, ``k = 60`` (Cormack, Clarke and Buettcher, 2009). Ties go to the better single
  rank, then to the earlier list.
- :func:`tidy` compacts stored text (chunk separators gone, blank runs collapsed); :func:`snippet` cuts a
  long text to the window that holds the most distinct query terms.
- :func:`within_budget` keeps texts in order until a character budget is spent.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence
from typing import Final, TypeVar

__all__ = [
    "ELLIPSIS",
    "MAX_TERMS",
    "RRF_K",
    "STOP_WORDS",
    "fuse",
    "query_terms",
    "snippet",
    "tidy",
    "within_budget",
]

K = TypeVar("K", bound=Hashable)

RRF_K: Final = 60
"""The rank offset of reciprocal rank fusion: large enough that one list's top hit cannot drown the others."""

MAX_TERMS: Final = 32
"""Terms kept from one query: more only slows the search and blurs the ranking."""

ELLIPSIS: Final = "…"
"""Marks where a snippet was cut."""

# Smallest text worth adding when the budget is nearly spent: a shorter cut tells the model nothing.
MIN_PIECE: Final = 80
# Match positions looked at when placing a snippet window (a huge tool output can hold thousands).
_MAX_MATCHES: Final = 200

_STOP_TEXT: Final = """
    i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she her hers
    herself it its itself they them their theirs themselves what which who whom this that these those am is
    are was were be been being have has had having do does did doing a an the and but if or because as until
    while of at by for with about against between into through during before after above below to from up
    down in out on off over under again further then once here there when where why how all any both each
    few more most other some such no nor not only own same so than too very s t can will just don should now
"""
STOP_WORDS: Final = frozenset(_STOP_TEXT.split())
"""English stop words: the Snowball list that PostgreSQL's ``english`` configuration leaves out."""

_WORD_RE: Final = re.compile(r"[^\W_]+")
_BLANKS_RE: Final = re.compile(r"[^\S\n]+")
_NEWLINES_RE: Final = re.compile(r"\s*\n\s*")


def query_terms(text: str, *, limit: int = MAX_TERMS) -> tuple[str, ...]:
    """The searchable words of ``text``: letters and digits, lower-cased, stop words dropped, each once.

    Punctuation separates words, as the indexes do (``db.example.com:5433`` gives ``db``, ``example``,
    ``com``, ``5433``). Example: ``query_terms("Which port did we pick for the DB?") == ("port", "pick",
    "db")``.
    """
    seen: dict[str, None] = {}
    for match in _WORD_RE.finditer(text.lower()):
        word = match.group()
        if word not in STOP_WORDS and word not in seen:
            seen[word] = None
            if len(seen) >= limit:
                break
    return tuple(seen)


def fuse(lists: Sequence[Sequence[K]], *, k: int = RRF_K) -> list[tuple[K, float]]:
    """Reciprocal rank fusion of ranked lists (best first); returns ``(item, score)``, best first.

    An item's score is ``sum(1 / (k + rank))`` over the lists that hold it (rank from 1; a repeat within
    one list counts once, at its best place). Equal scores are ordered by the item's best rank in any list,
    then by the first list it appears in: deterministic for the same input.

    Example: ``fuse([["a", "b"], ["b", "c"]])`` puts ``b`` first (two lists), then ``a``, then ``c``.
    """
    scores: dict[K, float] = {}
    best: dict[K, tuple[int, int]] = {}
    for list_index, ranked in enumerate(lists):
        seen: set[K] = set()
        for rank, item in enumerate(ranked, start=1):
            if item in seen:
                continue
            seen.add(item)
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
            place = (rank, list_index)
            if item not in best or place < best[item]:
                best[item] = place
    order = sorted(scores, key=lambda item: (-scores[item], best[item]))
    return [(item, scores[item]) for item in order]


def tidy(text: str) -> str:
    """Stored text made compact: chunk separators gone, blank runs one space, line breaks one newline."""
    text = text.replace("\x1f", "")
    return _BLANKS_RE.sub(" ", _NEWLINES_RE.sub("\n", text)).strip()


def _stem(term: str) -> str:
    """A prefix that finds a term's inflections in plain text (``migrations`` -> ``migrati``)."""
    return term if len(term) <= 4 else term[: max(4, len(term) - 3)]


def _window_start(text: str, terms: Sequence[str], span: int) -> int:
    """Where a window of ``span`` characters holding the most distinct terms starts (earliest on ties)."""
    stems = {stem: index for index, stem in enumerate(dict.fromkeys(_stem(t.lower()) for t in terms if t))}
    if not stems:
        return 0
    alternatives = "|".join(re.escape(stem) for stem in sorted(stems, key=len, reverse=True))
    pattern = re.compile(r"(?<![^\W_])(" + alternatives + ")", re.IGNORECASE)
    hits: list[tuple[int, int]] = []
    for match in pattern.finditer(text):
        index = stems.get(match.group(1).lower())
        if index is not None:
            hits.append((match.start(), index))
            if len(hits) >= _MAX_MATCHES:
                break
    if not hits:
        return 0
    # The tightest cluster holding the most distinct terms: for each match as a left edge, how many distinct
    # terms fit in the span and how far right the last new one lies.
    best = (0, 0, 0)  # (-distinct, cluster length, left position) - smaller is better
    for left, (position, _) in enumerate(hits):
        seen: set[int] = set()
        reach = position
        for other, index in hits[left:]:
            if other >= position + span:
                break
            if index not in seen:
                seen.add(index)
                reach = other
        key = (-len(seen), reach - position, position)
        if left == 0 or key < best:
            best = key
    _, length, position = best
    # Centre the cluster, with at most a quarter of the span before it as context.
    return max(0, position - min(span // 4, max(0, span - length) // 2))


def _cut(text: str, start: int, stop: int) -> str:
    """``text[start:stop]`` moved to word boundaries when one is near, with an ellipsis at each cut end."""
    if start > 0:
        space = text.find(" ", start, min(start + 20, stop))
        start = space + 1 if space >= 0 else start
    if stop < len(text):
        space = text.rfind(" ", max(start, stop - 20), stop)
        stop = space if space > start else stop
    piece = text[start:stop].strip()
    return (ELLIPSIS if start > 0 else "") + piece + (ELLIPSIS if stop < len(text) else "")


def snippet(text: str, terms: Sequence[str], *, max_chars: int) -> str:
    """``text`` tidied (line breaks kept, blank runs collapsed) and, when longer than ``max_chars``, cut to
    the window holding the most distinct ``terms``, with ``…`` where it was cut. Never longer than
    ``max_chars``; never empty for a non-empty text and ``max_chars >= 3``.

    Example: ``snippet("a " * 500 + "port 5433", ["5433"], max_chars=40)`` ends with ``port 5433``.
    """
    tidied = tidy(text)
    if len(tidied) <= max_chars:
        return tidied
    span = max(1, max_chars - 2 * len(ELLIPSIS))
    start = min(_window_start(tidied, terms, span), max(0, len(tidied) - span))
    return _cut(tidied, start, start + span)[:max_chars]


def within_budget(texts: Sequence[str], *, max_chars: int, min_piece: int = MIN_PIECE) -> list[str]:
    """The leading ``texts`` whose lengths fit in ``max_chars``, in order.

    The first text that does not fit is cut to the room left (ending in ``…``) when at least ``min_piece``
    characters remain, and nothing is added after it. Example: ``within_budget(["aaaa", "bbbb"],
    max_chars=6, min_piece=2) == ["aaaa", "b…"]``.
    """
    kept: list[str] = []
    used = 0
    for text in texts:
        room = max_chars - used
        if len(text) <= room:
            kept.append(text)
            used += len(text)
            continue
        if room >= max(min_piece, len(ELLIPSIS) + 1):
            kept.append(text[: room - len(ELLIPSIS)].rstrip() + ELLIPSIS)
        break
    return kept
