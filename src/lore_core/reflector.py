"""Meta-distillation, the reflector (ENGINE.md section 5): pure planning, prompt building and output checks.

The reflector folds the older generation-0 rows of a session (observer logs and digests) into one anchored
summary of generation 1+. Everything here is pure: the service loads the session's non-archived rows, asks
:func:`plan_meta` whether a round is due, sends :func:`build_meta_prompt`, checks the reply with
:func:`check_meta_output`, then writes one row with :func:`next_generation` and :func:`meta_source_ids` and
archives :func:`meta_archive_ids`, all in one transaction (pitfall 21).

Example::

    plan = plan_meta(rows, config=config, bust_pressure=False)
    if plan is not None:
        prompt = build_meta_prompt(plan, config=config)
        observations, warnings = check_meta_output(reply, input_tokens=meta_input_tokens(plan))
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from lore_core.config import LoreConfig
from lore_core.outputs import OutputRejected, observations_block
from lore_core.prompting import Prompt, render
from lore_core.store.records import DistillationRecord
from lore_core.tokens import TokenCounter, count_tokens

__all__ = [
    "HEADINGS",
    "SEGMENT_SEPARATOR",
    "MetaPlan",
    "build_meta_prompt",
    "check_meta_output",
    "meta_archive_ids",
    "meta_budget",
    "meta_candidates",
    "meta_input_tokens",
    "meta_source_ids",
    "meta_threshold",
    "next_generation",
    "plan_meta",
    "render_segments",
]

HEADINGS: Final = ("Current State", "Key Decisions", "Technical Changes", "Session Timeline")
"""The four sections of every meta document, in order."""

SEGMENT_SEPARATOR: Final = "\n\n---\n\n"
"""Between two ``Segment i`` blocks of a meta prompt."""

# Under bust pressure the threshold drops to a quarter of the normal one, never below 3 (ENGINE.md 5).
_BUST_DIVISOR: Final = 4
_BUST_FLOOR: Final = 3
# Folding a single row into an existing summary is worth a call; from scratch, fewer than 3 rows would
# produce a summary barely smaller than its inputs.
_MIN_MERGE_WITH_PRIOR: Final = 1
_MIN_MERGE_FROM_SCRATCH: Final = 3
_GEN0_KINDS: Final = frozenset({"observer", "digest"})

_ANCHORED_TASK = (
    "Update the document below with the new segments that follow it. Keep its four headings and change only "
    "what the new segments affect; everything else stays as it is."
)
_SCRATCH_TASK = (
    "There is no document yet (the document section is empty). Build it from scratch from the segments "
    "below, oldest first."
)


@dataclass(frozen=True, slots=True)
class MetaPlan:
    """One meta round: the prior meta row (or None), the gen-0 rows to fold in, and the gen-0 rows kept.

    ``merge`` and ``keep`` are oldest first; ``keep`` stays un-archived and in the prefix.
    """

    prior: DistillationRecord | None
    merge: tuple[DistillationRecord, ...]
    keep: tuple[DistillationRecord, ...]


def meta_threshold(config: LoreConfig, *, bust_pressure: bool) -> int:
    """How many non-archived gen-0 rows trigger a meta round: ``config.meta_threshold`` (20), or under bust
    pressure ``max(3, floor(meta_threshold / 4))`` (5).

    Example: ``meta_threshold(LoreConfig(), bust_pressure=True) == 5``.
    """
    if bust_pressure:
        return max(_BUST_FLOOR, config.meta_threshold // _BUST_DIVISOR)
    return config.meta_threshold


def _order(row: DistillationRecord) -> tuple[int, float, str]:
    return (row.seq, row.created_at.timestamp(), row.id)


def plan_meta(
    rows: Sequence[DistillationRecord], *, config: LoreConfig, bust_pressure: bool
) -> MetaPlan | None:
    """Decide whether a meta round is due over ``rows`` (the session's non-archived rows) and what it folds.

    Gen-0 rows are observer and digest rows of generation 0 (archived ones are ignored). The newest
    ``keep_recent_segments`` of them are kept; the older ones are merged. The round runs only when the gen-0
    count reaches :func:`meta_threshold` and the merge set holds >= 1 row with a prior meta or >= 3 without
    one. The prior meta is the non-archived row of the highest generation, newest on ties. Never raises.

    Example: with default settings, 20 gen-0 rows and no prior meta give a plan merging the oldest 15.
    """
    gen0, prior = _live(rows)
    if len(gen0) < meta_threshold(config, bust_pressure=bust_pressure):
        return None
    split = max(0, len(gen0) - config.keep_recent_segments)
    merge, keep = tuple(gen0[:split]), tuple(gen0[split:])
    needed = _MIN_MERGE_WITH_PRIOR if prior is not None else _MIN_MERGE_FROM_SCRATCH
    if len(merge) < needed:
        return None
    return MetaPlan(prior=prior, merge=merge, keep=keep)


def _live(rows: Sequence[DistillationRecord]) -> tuple[list[DistillationRecord], DistillationRecord | None]:
    """The live gen-0 rows, oldest first, and the prior meta (the live row of the highest generation)."""
    live = [row for row in rows if not row.archived]
    gen0 = sorted((r for r in live if r.generation == 0 and r.kind in _GEN0_KINDS), key=_order)
    metas = [row for row in live if row.generation > 0]
    prior = max(metas, key=lambda r: (r.generation, *_order(r))) if metas else None
    return gen0, prior


def meta_candidates(rows: Sequence[DistillationRecord]) -> list[MetaPlan]:
    """Every plan a meta round over ``rows`` may have sent, whatever the threshold was: the current prior meta
    with the oldest 1, 2, ... n live gen-0 rows merged (shortest merge first). Used to recognise the plan of
    a late answer after newer gen-0 rows arrived. Pure; never raises.

    Example: three live gen-0 rows ``a, b, c`` give plans merging ``(a,)``, ``(a, b)`` and ``(a, b, c)``.
    """
    gen0, prior = _live(rows)
    return [
        MetaPlan(prior=prior, merge=tuple(gen0[:k]), keep=tuple(gen0[k:])) for k in range(1, len(gen0) + 1)
    ]


def meta_budget(input_tokens: int, config: LoreConfig) -> int:
    """The ``max_tokens`` of a meta call: ``max(1024, min(ceil(0.25 * input_tokens), 8192))`` by default.

    Example: ``meta_budget(10_000, LoreConfig()) == 2_500``.
    """
    factor, floor, cap = config.meta_budget
    return max(floor, min(math.ceil(factor * input_tokens), cap))


def render_segments(rows: Sequence[DistillationRecord]) -> str:
    """The ``<segments>`` body: one ``Segment i`` block per row (1-based), separated by ``---`` lines.

    Example: ``render_segments([row])`` is ``"Segment 1\\n" + row.observations.strip()``.
    """
    blocks = [f"Segment {i}\n{row.observations.strip()}" for i, row in enumerate(rows, start=1)]
    return SEGMENT_SEPARATOR.join(blocks)


def _document(plan: MetaPlan) -> str:
    return plan.prior.observations.strip() if plan.prior is not None else ""


def meta_input_tokens(plan: MetaPlan, *, counter: TokenCounter = count_tokens) -> int:
    """The input size of a meta call: ``T(document) + T(segments)`` as :func:`build_meta_prompt` renders them.

    This is both the base of :func:`meta_budget` and the ``input_tokens`` bound of :func:`check_meta_output`.
    Example: with ``counter=len``, no prior and one merged row ``"abc"`` give ``len("Segment 1\\nabc")``.
    """
    return counter(_document(plan)) + counter(render_segments(plan.merge))


def build_meta_prompt(
    plan: MetaPlan, *, counter: TokenCounter = count_tokens, config: LoreConfig | None = None
) -> Prompt:
    """The ``meta-distill`` call for ``plan``: an anchored update when ``plan.prior`` exists (the prior meta
    is the ``<document>``, only the merged rows are ``<segments>``), else a build from scratch (empty
    ``<document>``). ``max_tokens`` is :func:`meta_budget` of :func:`meta_input_tokens`.

    Raises:
        ConfigError: a prompt template is missing from the installed package.

    Example: ``build_meta_prompt(plan).worker == "meta-distill"``.
    """
    settings = config if config is not None else LoreConfig()
    user = render(
        "meta_user",
        task=_ANCHORED_TASK if plan.prior is not None else _SCRATCH_TASK,
        document=_document(plan),
        segments=render_segments(plan.merge),
    )
    budget = meta_budget(meta_input_tokens(plan, counter=counter), settings)
    return Prompt(worker="meta-distill", system=render("meta_system"), user=user, max_tokens=budget)


def _heading_re(heading: str) -> re.Pattern[str]:
    # A line that is the heading, with optional markdown markers and a trailing colon.
    return re.compile(rf"^[ \t]*(?:#{{1,6}}[ \t]*|\*\*)?{re.escape(heading)}\b", re.IGNORECASE | re.MULTILINE)


_HEADING_RES: Final = tuple((heading, _heading_re(heading)) for heading in HEADINGS)


def check_meta_output(
    text: str, *, input_tokens: int, counter: TokenCounter = count_tokens
) -> tuple[str, list[str]]:
    """Check a meta reply: returns ``(observations, warnings)`` where warnings name the missing headings.

    Raises:
        OutputRejected: no block (``no_observations_block``), several (``several_observations_blocks``), an
            empty one (``empty_observations``), or ``T(observations) > input_tokens`` (``expansion``).

    Example::

        body, missing = check_meta_output("<observations>## Current State\\n- x</observations>",
                                          input_tokens=500)
        # missing == ["Key Decisions", "Technical Changes", "Session Timeline"]
    """
    body = observations_block(text)
    tokens = counter(body)
    if tokens > input_tokens:
        raise OutputRejected("expansion", f"{tokens} > {input_tokens} tokens")
    return body, [heading for heading, pattern in _HEADING_RES if pattern.search(body) is None]


def next_generation(plan: MetaPlan) -> int:
    """``max(input generations, prior generation, 0) + 1`` (pitfall 23).

    Example: a plan over gen-0 rows with a prior meta of generation 2 gives 3.
    """
    generations = [row.generation for row in plan.merge]
    if plan.prior is not None:
        generations.append(plan.prior.generation)
    return max([0, *generations]) + 1


def meta_source_ids(plan: MetaPlan) -> tuple[str, ...]:
    """The new meta row's ``source_ids``: the prior meta's, then each merged row's; duplicates dropped,
    first occurrence kept.

    Example: prior ``("a", "b")`` and merged ``("b", "c")`` give ``("a", "b", "c")``.
    """
    rows = ([plan.prior] if plan.prior is not None else []) + list(plan.merge)
    return tuple(dict.fromkeys(source for row in rows for source in row.source_ids))


def meta_archive_ids(plan: MetaPlan) -> tuple[str, ...]:
    """The row ids archived with the meta write: the merged gen-0 rows, then the superseded prior meta.

    Example: a plan merging rows ``r1, r2`` over prior ``m`` gives ``("r1", "r2", "m")``.
    """
    ids = [row.id for row in plan.merge]
    if plan.prior is not None:
        ids.append(plan.prior.id)
    return tuple(ids)
