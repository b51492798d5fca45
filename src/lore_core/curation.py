"""Curation of long-term knowledge (ENGINE.md section 6): prompts, the ops a curator returns, their checks.

A curator answers with a JSON array of ops. :func:`parse_ops` finds the array, :func:`validate_ops` checks
every op on its own (a bad op is rejected with a reason and never blocks the others), and
:func:`dedup_target` turns a create into an update when an equivalent entry is already visible. Consolidation
uses the same ops with ``allow_create=False`` and never touches global entries. Everything here is pure.

Example::

    raw = parse_ops(reply)
    ops, rejected = validate_ops(raw, visible=entries, project="acme", config=config)
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from lore_core.config import LoreConfig
from lore_core.outputs import OutputRejected
from lore_core.prompting import Prompt, render
from lore_core.store.records import KnowledgeCategory, KnowledgeRecord

__all__ = [
    "CATEGORIES",
    "STOPWORDS",
    "TRUNCATION_MARK",
    "CreateOp",
    "DeleteOp",
    "KnowledgeOp",
    "RejectedOp",
    "Scope",
    "UpdateOp",
    "build_consolidation_prompt",
    "build_curation_prompt",
    "cap_content",
    "content_words",
    "dedup_target",
    "parse_ops",
    "render_entries",
    "validate_ops",
]

Scope: TypeAlias = Literal["project", "global"]
CATEGORIES: Final[tuple[KnowledgeCategory, ...]] = (
    "decision",
    "pattern",
    "preference",
    "architecture",
    "gotcha",
)
TRUNCATION_MARK: Final = " [truncated]"
_STOPWORD_TEXT = (
    "a an and are as at be but by for from has have how if in into is it its not of on or so than that the "
    "their then there these this to was were what when where which while who why will with"
)
STOPWORDS: Final = frozenset(_STOPWORD_TEXT.split(" "))
"""Function words ignored when titles and context are compared."""

_WORD_RE = re.compile(r"[a-z0-9_]+")
_FENCE_RE = re.compile(r"```[a-zA-Z0-9_-]*[ \t]*\n?(.*?)```", re.DOTALL)
_EMPTY_EXISTING = "(none)"


@dataclass(frozen=True, slots=True)
class CreateOp:
    """Insert a new entry (or update its duplicate, see :func:`dedup_target`)."""

    category: KnowledgeCategory
    title: str
    content: str
    scope: Scope = "project"
    confidence: float = 1.0


@dataclass(frozen=True, slots=True)
class UpdateOp:
    """Change an existing entry's content and/or confidence (None = unchanged)."""

    id: str
    content: str | None = None
    confidence: float | None = None


@dataclass(frozen=True, slots=True)
class DeleteOp:
    """Remove an existing entry."""

    id: str
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class RejectedOp:
    """An op that failed validation: its position in the reply and a short reason code."""

    index: int
    reason: str


KnowledgeOp: TypeAlias = CreateOp | UpdateOp | DeleteOp


def content_words(text: str) -> frozenset[str]:
    """The distinct lowercase words of ``text`` (letters, digits, underscore), stopwords removed.

    Example: ``content_words("Use the Redis cache") == frozenset({"use", "redis", "cache"})``.
    """
    return frozenset(word for word in _WORD_RE.findall(text.casefold()) if word not in STOPWORDS)


def cap_content(content: str, limit: int) -> str:
    """``content`` unchanged when it has at most ``limit`` characters, else cut so that the cut text plus
    ``" [truncated]"`` has exactly ``limit`` characters.

    Example: ``len(cap_content("x" * 1_201, 1_200)) == 1_200``.
    """
    if len(content) <= limit:
        return content
    return content[: max(0, limit - len(TRUNCATION_MARK))] + TRUNCATION_MARK


def parse_ops(text: str) -> list[object]:
    """The JSON array in a curator reply; code fences and text around the array are tolerated.

    Raises:
        OutputRejected: ``not_json`` when no JSON array can be read.

    Example::

        parse_ops('```json\\n[{"op": "delete", "id": "k1"}]\\n```')   # [{'op': 'delete', 'id': 'k1'}]
    """
    candidates = [match.group(1) for match in _FENCE_RE.finditer(text)]
    candidates.append(text)
    for candidate in candidates:
        found = _array_in(candidate)
        if found is not None:
            return found
    raise OutputRejected("not_json")


def _array_in(text: str) -> list[object] | None:
    stripped = text.strip()
    start, end = stripped.find("["), stripped.rfind("]")
    if start < 0 or end < start:
        return None
    for piece in (stripped, stripped[start : end + 1]):
        try:
            value = json.loads(piece)
        except ValueError:
            continue
        if isinstance(value, list):
            return value
    return None


def _confidence(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return 1.0
    return min(1.0, max(0.0, float(value)))


def _text(raw: Mapping[str, object], key: str) -> str | None:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()


def _create(raw: Mapping[str, object], config: LoreConfig) -> CreateOp | str:
    category = raw.get("category")
    if category is None or category == "":
        return "missing_category"
    if category not in CATEGORIES:
        return "bad_category"
    title, content = _text(raw, "title"), _text(raw, "content")
    if title is None:
        return "missing_title"
    if content is None:
        return "missing_content"
    scope = raw.get("scope") or "project"
    if scope not in ("project", "global"):
        return "bad_scope"
    return CreateOp(
        category=next(c for c in CATEGORIES if c == category),
        title=title,
        content=cap_content(content, config.max_entry_chars),
        scope="global" if scope == "global" else "project",
        confidence=_confidence(raw.get("confidence")),
    )


def _target(
    raw: Mapping[str, object], by_id: Mapping[str, KnowledgeRecord], project: str, consolidating: bool
) -> str:
    """The id an update/delete names, or a reason code starting with ``!``."""
    entry_id = _text(raw, "id")
    if entry_id is None:
        return "!missing_id"
    entry = by_id.get(entry_id)
    if entry is None:
        return "!unknown_id"
    if entry.project is not None and entry.project != project:
        return "!other_project"
    if consolidating and entry.project is None:
        return "!global_entry"
    return entry_id


def _update(raw: Mapping[str, object], entry_id: str, config: LoreConfig) -> UpdateOp | str:
    content: str | None = None
    if "content" in raw and raw["content"] is not None:
        content = _text(raw, "content")
        if content is None:
            return "empty_content"
        content = cap_content(content, config.max_entry_chars)
    confidence = None
    if "confidence" in raw and raw["confidence"] is not None:
        confidence = _confidence(raw["confidence"])
    if content is None and confidence is None:
        return "empty_update"
    return UpdateOp(id=entry_id, content=content, confidence=confidence)


def _one(
    raw: object,
    by_id: Mapping[str, KnowledgeRecord],
    deleted: set[str],
    *,
    project: str,
    config: LoreConfig,
    allow_create: bool,
) -> KnowledgeOp | str:
    if not isinstance(raw, Mapping):
        return "not_an_object"
    op = raw.get("op")
    if op == "create":
        return _create(raw, config) if allow_create else "create_not_allowed"
    if op not in ("update", "delete"):
        return "missing_op" if op is None or op == "" else "unknown_op"
    entry_id = _target(raw, by_id, project, not allow_create)
    if entry_id.startswith("!"):
        return entry_id[1:]
    if entry_id in deleted:
        return "already_deleted"
    if op == "update":
        return _update(raw, entry_id, config)
    deleted.add(entry_id)
    return DeleteOp(id=entry_id, reason=_text(raw, "reason"))


def validate_ops(
    raw_ops: Sequence[object],
    *,
    visible: Sequence[KnowledgeRecord],
    project: str,
    config: LoreConfig,
    allow_create: bool = True,
) -> tuple[list[KnowledgeOp], list[RejectedOp]]:
    """Check each raw op on its own; returns the valid ops in order and the rejected ones with reasons.

    Reasons: ``not_an_object``, ``missing_op``, ``unknown_op``, ``create_not_allowed`` (consolidation),
    ``missing_category``, ``bad_category``, ``missing_title``, ``missing_content``, ``bad_scope``,
    ``missing_id``, ``unknown_id`` (not among ``visible``), ``other_project``, ``global_entry`` (consolidation
    never touches global entries), ``already_deleted`` (an earlier op of the same reply deleted it),
    ``empty_content``, ``empty_update``. Updating a global entry during curation is allowed. Confidence is
    clamped to [0, 1], non-numbers become 1.0; content is capped with :func:`cap_content`. Never raises.

    Example::

        ops, rejected = validate_ops([{"op": "nope"}, {"op": "delete", "id": "k1"}], visible=entries,
                                     project="acme", config=LoreConfig())
        # rejected == [RejectedOp(index=0, reason="unknown_op")], ops == [DeleteOp(id="k1")]
    """
    by_id = {entry.id: entry for entry in visible}
    deleted: set[str] = set()
    ops: list[KnowledgeOp] = []
    rejected: list[RejectedOp] = []
    for index, raw in enumerate(raw_ops):
        result = _one(raw, by_id, deleted, project=project, config=config, allow_create=allow_create)
        if isinstance(result, str):
            rejected.append(RejectedOp(index=index, reason=result))
        else:
            ops.append(result)
    return ops, rejected


def _same_title(a: str, b: str) -> bool:
    return " ".join(a.casefold().split()) == " ".join(b.casefold().split())


def dedup_target(
    op: CreateOp, visible: Sequence[KnowledgeRecord], *, project: str, config: LoreConfig
) -> str | None:
    """The id of the visible entry a create should update instead of inserting, or None to insert.

    First an entry of the same scope with the same title (case- and whitespace-insensitive); else the best
    fuzzy title match among visible entries of this project or global scope: overlap coefficient of the
    title words (stopwords removed) >= ``title_overlap`` and >= ``title_shared_words`` shared words. Ties go
    to the higher overlap, then more shared words, then the smaller id. Never raises.

    Example: a create titled ``"Use UV for deps"`` updates a same-scope entry titled ``"use uv for deps"``.
    """
    reachable = sorted((e for e in visible if e.project is None or e.project == project), key=lambda e: e.id)
    for entry in reachable:
        same_scope = (entry.project is None) == (op.scope == "global")
        if same_scope and _same_title(entry.title, op.title):
            return entry.id
    words = content_words(op.title)
    best: tuple[float, int, str] | None = None
    for entry in reachable:
        other = content_words(entry.title)
        shared = len(words & other)
        smaller = min(len(words), len(other))
        if smaller == 0 or shared < config.title_shared_words:
            continue
        overlap = shared / smaller
        if overlap + 1e-9 < config.title_overlap:
            continue
        if best is None or (overlap, shared) > (best[0], best[1]):
            best = (overlap, shared, entry.id)
    return best[2] if best is not None else None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def render_entries(entries: Sequence[KnowledgeRecord]) -> str:
    """Entries as prompt lines ``- [<id>] (<category>) <title>: <content>``, whitespace folded to one line.

    Example: ``render_entries([entry])`` may give ``"- [k1] (gotcha) Pool size: keep it at 8"``.
    """
    return "\n".join(
        f"- [{e.id}] ({e.category}) {_one_line(e.title)}: {_one_line(e.content)}" for e in entries
    )


def build_curation_prompt(inputs: str, visible: Sequence[KnowledgeRecord], *, config: LoreConfig) -> Prompt:
    """The ``curate`` call: ``<existing>`` lists the visible entries, ``<inputs>`` holds the new material.

    Raises:
        ConfigError: a prompt template is missing from the installed package.

    Example: ``build_curation_prompt(text, entries, config=LoreConfig()).max_tokens == 2_048``.
    """
    user = render("curate_user", existing=render_entries(visible) or _EMPTY_EXISTING, inputs=inputs.strip())
    return Prompt(
        worker="curate", system=render("curate_system"), user=user, max_tokens=config.curator_max_tokens
    )


def build_consolidation_prompt(
    entries: Sequence[KnowledgeRecord], *, target: int, config: LoreConfig
) -> Prompt:
    """The consolidation call (worker ``curate``, update/delete only): the project's own entries in
    ``<existing>`` and the entry count to reach in ``<target>``. Global entries are left out.

    Raises:
        ConfigError: a prompt template is missing from the installed package.

    Example: ``build_consolidation_prompt(entries, target=25, config=LoreConfig()).max_tokens == 4_096``.
    """
    own = [entry for entry in entries if entry.project is not None]
    user = render(
        "consolidate_user",
        count=str(len(own)),
        existing=render_entries(own) or _EMPTY_EXISTING,
        target=str(target),
    )
    return Prompt(
        worker="curate",
        system=render("consolidate_system"),
        user=user,
        max_tokens=config.consolidate_max_tokens,
    )
