"""Knowledge injection (ENGINE.md section 6, "Injection"): which entries go into the system blocks.

Two blocks follow the caller's system blocks: user preferences, and project knowledge. Each has its own
budget, a share of ``base`` (``max(0, max_input - overhead)``): ``budget_preferences`` (2%) and ``budget_ltm``
(5%). An entry costs ``T(title + content) + 10`` and a non-empty block 15 more. The output is a pure
function of its inputs, byte for byte, so the pinned knowledge text stays cache-stable.

Example::

    blocks = select_knowledge(entries, base_tokens=150_000, context_text=context, config=config,
                              layer_note=layer >= 1)
    system = [*caller_blocks, *(b for b in (blocks.preferences, blocks.knowledge) if b)]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from lore_core.config import LoreConfig
from lore_core.curation import content_words
from lore_core.store.records import KnowledgeRecord
from lore_core.tokens import TokenCounter, count_tokens

__all__ = [
    "BLOCK_COST",
    "ENTRY_COST",
    "LAYER_NOTE",
    "LAYER_NOTE_RECALL",
    "KnowledgeBlocks",
    "entry_cost",
    "select_knowledge",
]

ENTRY_COST: Final = 10
"""Tokens added to ``T(title + content)`` per entry: the bullet, separator and category label."""
BLOCK_COST: Final = 15
"""Tokens per non-empty block: its heading line and the system block's framing."""
ARCHITECTURE_SHARE: Final = 0.2
"""Architecture entries go first, up to this share of the knowledge budget (they frame everything else)."""

PREFERENCES_HEADING: Final = "User preferences (long-term memory; follow them unless told otherwise):"
KNOWLEDGE_HEADING: Final = "Project knowledge (long-term memory from earlier sessions):"
LAYER_NOTE: Final = (
    "Note: older parts of this conversation are condensed into summaries and may be lossy; "
    "ask the user when an exact earlier detail matters."
)
LAYER_NOTE_RECALL: Final = (
    "Note: older parts of this conversation are condensed into summaries and may be lossy; "
    "when an exact earlier detail matters, search the full history with the recall tool."
)
"""The layer note when the request offers the recall tool (same words as ``annotations.RECALL_HINT``)."""


@dataclass(frozen=True, slots=True)
class KnowledgeBlocks:
    """The two injected texts (``""`` when a block is empty) and their estimated total cost in tokens."""

    preferences: str
    knowledge: str
    tokens: int


def entry_cost(entry: KnowledgeRecord, *, counter: TokenCounter = count_tokens) -> int:
    """``T(title + content) + 10``.

    Example: with ``counter=len``, an entry titled ``"ab"`` with content ``"cde"`` costs 15.
    """
    return counter(entry.title + entry.content) + ENTRY_COST


def _line(entry: KnowledgeRecord, *, label: bool) -> str:
    content = "\n  ".join(line.strip() for line in entry.content.strip().splitlines() if line.strip())
    prefix = f"[{entry.category}] " if label else ""
    return f"- {prefix}{' '.join(entry.title.split())}: {content}"


def _recency(entry: KnowledgeRecord) -> float:
    return entry.updated_at.timestamp()


def _pack(
    ranked: Sequence[KnowledgeRecord],
    costs: dict[str, int],
    *,
    spent: int,
    budget: int,
    cap: int | None = None,
) -> tuple[list[KnowledgeRecord], int]:
    """Greedy, in rank order: take every entry that still fits (an entry too big is skipped, not a stop).

    ``cap`` additionally bounds the sum of the taken entries' own costs.
    """
    taken: list[KnowledgeRecord] = []
    own = 0
    for entry in ranked:
        cost = costs[entry.id]
        if spent + cost > budget or (cap is not None and own + cost > cap):
            continue
        taken.append(entry)
        spent += cost
        own += cost
    return taken, spent


def select_knowledge(
    entries: Sequence[KnowledgeRecord],
    *,
    base_tokens: int,
    context_text: str,
    config: LoreConfig,
    counter: TokenCounter = count_tokens,
    layer_note: bool,
) -> KnowledgeBlocks:
    """Choose and render the preferences and project-knowledge blocks.

    Entries with ``confidence <= knowledge_min_confidence`` are left out. Preferences (category
    ``preference``) are ranked by confidence, then most recently updated, then id, and packed into
    ``floor(budget_preferences * base_tokens)``. The other categories are ranked by
    ``overlap * confidence`` (overlap = share of the entry's words found in ``context_text``), then
    confidence, recency and id; architecture entries are packed first, up to 20% of
    ``floor(budget_ltm * base_tokens)``, then everything left in rank order fills the rest. Each packing is
    greedy: an entry that does not fit is skipped and smaller ones after it may still go in. With
    ``layer_note`` the knowledge block always carries :data:`LAYER_NOTE` (costing ``T(note)``, counted
    inside the budget when entries are added). ``tokens`` is the sum of the blocks' costs. Never raises.

    Example: with ``counter=len`` and ``base_tokens=10_000``, one preference ``"ab"``/``"cde"`` gives a
    preferences block of cost 15 + 15 and ``tokens == 30``.
    """
    live = [e for e in entries if e.confidence > config.knowledge_min_confidence]
    costs = {e.id: entry_cost(e, counter=counter) for e in live}
    preferences = sorted(
        (e for e in live if e.category == "preference"), key=lambda e: (-e.confidence, -_recency(e), e.id)
    )
    pref_budget = math.floor(config.budget_preferences * base_tokens)
    chosen_prefs, pref_cost = _pack(preferences, costs, spent=BLOCK_COST, budget=pref_budget)
    if not chosen_prefs:
        pref_cost = 0

    context = content_words(context_text)

    def relevance(entry: KnowledgeRecord) -> float:
        words = content_words(f"{entry.title} {entry.content}")
        overlap = len(words & context) / len(words) if words else 0.0
        return overlap * entry.confidence

    others = sorted(
        (e for e in live if e.category != "preference"),
        key=lambda e: (-relevance(e), -e.confidence, -_recency(e), e.id),
    )
    budget = math.floor(config.budget_ltm * base_tokens)
    start = BLOCK_COST + (counter(LAYER_NOTE) if layer_note else 0)
    architecture = [e for e in others if e.category == "architecture"]
    first, spent = _pack(
        architecture, costs, spent=start, budget=budget, cap=math.floor(ARCHITECTURE_SHARE * budget)
    )
    taken = {e.id for e in first}
    rest, spent = _pack([e for e in others if e.id not in taken], costs, spent=spent, budget=budget)
    chosen = first + rest
    knowledge_cost = spent if chosen or layer_note else 0

    pref_text = ""
    if chosen_prefs:
        pref_text = "\n".join([PREFERENCES_HEADING, *(_line(e, label=False) for e in chosen_prefs)])
    knowledge_text = ""
    if chosen or layer_note:
        lines = [KNOWLEDGE_HEADING, *(_line(e, label=True) for e in chosen)] if chosen else []
        knowledge_text = "\n".join([*lines, LAYER_NOTE] if layer_note else lines)
    return KnowledgeBlocks(preferences=pref_text, knowledge=knowledge_text, tokens=pref_cost + knowledge_cost)
