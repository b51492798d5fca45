"""Recall: search the whole stored history when the distilled context is not enough.

``await session.recall(query)`` searches the session's raw messages (distilled ones too, tool outputs in
full), its distillations (archived ones too) and the visible knowledge of its project (plus global entries),
with the store's full-text index (FTS5 on SQLite, ``tsvector`` on PostgreSQL). Each source gives a ranked
list per query; the lists are merged by reciprocal rank fusion (:func:`lore_core.ranking.fuse`), cut to
``limit`` hits, and each hit's text is cut to a snippet around the query terms while a character budget
lasts. With query expansion on, up to three other queries from one urgent ``recall`` worker call add their
lists to the fusion; the call gets 3 s (``recall_expand_timeout_seconds``), after which the original query
alone is used.

Scope never widens silently: ``"session"`` (default) searches one session, ``"project"`` every session of a
project, ``"all"`` everything; knowledge is per project plus global entries (every entry for ``"all"``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, TypeAlias

from lore_core.errors import ConfigError
from lore_core.expansion import Expansion, ExpansionOutcome, expand_query
from lore_core.ranking import fuse, query_terms, snippet, tidy, within_budget
from lore_core.store.port import SessionStore
from lore_core.store.records import (
    DistillationKind,
    DistillationRecord,
    KnowledgeCategory,
    KnowledgeRecord,
    MessageKind,
    MessageRecord,
    Role,
    TextMatch,
    TextSearch,
)
from lore_core.workers.runtime import WorkerContext

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "DistillationSource",
    "KnowledgeSource",
    "MessageSource",
    "RecallHit",
    "RecallResult",
    "RecallScope",
    "RecallSource",
    "recall_in",
    "search_history",
]

RecallScope: TypeAlias = Literal["session", "project", "all"]
SCOPES: Final[tuple[RecallScope, ...]] = ("session", "project", "all")

DEFAULT_LIMIT: Final = 10
"""Hits one recall returns unless told otherwise."""
MAX_LIMIT: Final = 50
"""Most hits one recall returns."""
MAX_QUERY_CHARS: Final = 2_000
"""A longer query is refused: recall wants a few distinctive words, not a document."""
# Rows each source contributes per query before fusion: enough depth for fusion to reorder.
_CANDIDATES_FLOOR: Final = 20


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageSource:
    """A stored raw message: ``message_id`` (32 hex), where and when it was said, and whether a distillation
    already covers it (``distilled``: it may be out of the model's context)."""

    session_id: str
    message_id: str
    position: int
    role: Role
    kind: MessageKind
    created_at: datetime
    distilled: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class DistillationSource:
    """A distillation row: ``generation`` 0 for observer logs and digests, 1+ for reflector summaries;
    ``archived`` rows were folded into a later summary and are out of the prefix."""

    session_id: str
    distillation_id: str
    generation: int
    seq: int
    kind: DistillationKind
    archived: bool
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class KnowledgeSource:
    """A long-term knowledge entry; ``project`` None means a global entry."""

    knowledge_id: str
    project: str | None
    category: KnowledgeCategory
    title: str
    updated_at: datetime


RecallSource: TypeAlias = MessageSource | DistillationSource | KnowledgeSource


@dataclass(frozen=True, slots=True, kw_only=True)
class RecallHit:
    """One result: where it comes from, its text (a snippet when ``truncated``) and its fused score."""

    source: RecallSource
    text: str
    score: float
    truncated: bool

    @property
    def source_type(self) -> Literal["message", "distillation", "knowledge"]:
        """``message``, ``distillation`` or ``knowledge`` (``source.kind`` is the message or row kind)."""
        if isinstance(self.source, MessageSource):
            return "message"
        if isinstance(self.source, DistillationSource):
            return "distillation"
        return "knowledge"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``source_type``, the source's fields (times in ISO 8601), ``text``, ``score``,
        ``truncated``."""
        fields = {name: getattr(self.source, name) for name in self.source.__dataclass_fields__}
        source = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in fields.items()}
        return {
            "source_type": self.source_type,
            **source,
            "text": self.text,
            "score": self.score,
            "truncated": self.truncated,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class RecallResult:
    """What a recall found.

    ``queries`` holds the original query first, then the expanded ones that were searched; ``expansion``
    says how expansion went (``off``, ``ok``, ``timeout``, ``error``). ``omitted`` counts hits that ranked
    within ``limit`` but did not fit the character budget; ``chars`` is the total length of the hits' texts.
    """

    query: str
    terms: tuple[str, ...]
    queries: tuple[str, ...]
    expansion: ExpansionOutcome
    scope: RecallScope
    session_id: str
    project: str | None
    hits: tuple[RecallHit, ...]
    omitted: int
    chars: int

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the result, hits as :meth:`RecallHit.as_dict`."""
        return {
            "query": self.query,
            "terms": list(self.terms),
            "queries": list(self.queries),
            "expansion": self.expansion,
            "scope": self.scope,
            "session_id": self.session_id,
            "project": self.project,
            "hits": [hit.as_dict() for hit in self.hits],
            "omitted": self.omitted,
            "chars": self.chars,
        }


def _source(record: MessageRecord | DistillationRecord | KnowledgeRecord) -> RecallSource:
    if isinstance(record, MessageRecord):
        return MessageSource(
            session_id=record.session_id,
            message_id=record.id,
            position=record.position,
            role=record.role,
            kind=record.kind,
            created_at=record.created_at,
            distilled=record.distilled,
        )
    if isinstance(record, DistillationRecord):
        return DistillationSource(
            session_id=record.session_id,
            distillation_id=record.id,
            generation=record.generation,
            seq=record.seq,
            kind=record.kind,
            archived=record.archived,
            created_at=record.created_at,
        )
    return KnowledgeSource(
        knowledge_id=record.id,
        project=record.project,
        category=record.category,
        title=record.title,
        updated_at=record.updated_at,
    )


def _text(record: MessageRecord | DistillationRecord | KnowledgeRecord) -> str:
    if isinstance(record, MessageRecord):
        return record.text
    if isinstance(record, DistillationRecord):
        return record.observations
    return f"{record.title}: {record.content}"


def _key(match: TextMatch) -> tuple[str, str, str]:
    record = match.record
    session = record.session_id if not isinstance(record, KnowledgeRecord) else ""
    return (match.source, session or "", record.id)


def _ranked_lists(matches: list[TextMatch]) -> list[list[TextMatch]]:
    """The store's matches split into one list per source, in the order the store returned them."""
    lists: dict[str, list[TextMatch]] = {}
    for match in matches:
        lists.setdefault(match.source, []).append(match)
    return list(lists.values())


def _scope(scope: RecallScope, session_id: str, project: str | None) -> tuple[str | None, str | None]:
    """(session filter, project filter) of :class:`TextSearch` for a scope."""
    if scope == "session":
        return session_id, project
    if scope == "project":
        return None, project
    return None, None


def _checked(query: str, limit: int, scope: str) -> None:
    if not isinstance(query, str) or not query.strip() or len(query) > MAX_QUERY_CHARS:
        raise ConfigError(
            f"a recall query must be a non-empty string of at most {MAX_QUERY_CHARS} characters"
        )
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ConfigError(f"recall limit must be between 1 and {MAX_LIMIT} (got {limit!r})")
    if scope not in SCOPES:
        raise ConfigError(f"recall scope must be one of {', '.join(SCOPES)} (got {scope!r})")


async def search_history(
    store: SessionStore,
    query: str,
    *,
    session_id: str,
    project: str | None,
    scope: RecallScope = "session",
    limit: int = DEFAULT_LIMIT,
    max_chars: int = 6_000,
    snippet_chars: int = 600,
    min_confidence: float = 0.2,
    expander: Callable[[str], Awaitable[Expansion]] | None = None,
) -> RecallResult:
    """Search the stored history: the engine of :meth:`LoreSession.recall`, usable on a bare store.

    ``project`` is the session's project (knowledge scope; the searched project with ``scope="project"``).
    ``expander``, when given, runs concurrently with the search for the original query; the lists of the
    queries it returns are fused with the original ones (the original query's lists first, so they win ties).

    Raises:
        ConfigError: an empty or over-long query, a limit outside 1..50, an unknown scope, or
            ``scope="project"`` without a project.
        StoreError: the database failed.
    """
    _checked(query, limit, scope)
    if scope == "project" and project is None:
        raise ConfigError("recall with scope='project' needs a project")
    in_session, in_project = _scope(scope, session_id, project)
    per_list = max(limit * 2, _CANDIDATES_FLOOR)
    terms = query_terms(query)

    async def lists_for(words: tuple[str, ...]) -> list[list[TextMatch]]:
        if not words:
            return []
        search = TextSearch(
            terms=words,
            session_id=in_session,
            project=in_project,
            min_confidence=min_confidence,
            limit=per_list,
        )
        return _ranked_lists(await store.search_text(search))

    pending = asyncio.ensure_future(expander(query)) if expander is not None else None
    try:
        lists = await lists_for(terms)
        expansion = await pending if pending is not None else Expansion()
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
    searched = [query]
    all_terms = dict.fromkeys(terms)
    seen = {terms}
    for other in expansion.queries:
        words = query_terms(other)
        if words and words not in seen:
            seen.add(words)
            searched.append(other)
            all_terms.update(dict.fromkeys(words))
            lists += await lists_for(words)

    by_key: dict[tuple[str, str, str], TextMatch] = {}
    for ranked in lists:
        for match in ranked:
            by_key.setdefault(_key(match), match)
    fused = fuse([[_key(match) for match in ranked] for ranked in lists])[:limit]
    words = tuple(all_terms)
    full = [_text(by_key[key].record) for key, _ in fused]
    snippets = [snippet(text, words, max_chars=snippet_chars) for text in full]
    kept = within_budget(snippets, max_chars=max_chars)
    hits = tuple(
        RecallHit(
            source=_source(by_key[key].record),
            text=text,
            score=score,
            truncated=text != tidy(full[index]),
        )
        for index, ((key, score), text) in enumerate(zip(fused, kept, strict=False))
    )
    return RecallResult(
        query=query,
        terms=terms,
        queries=tuple(searched),
        expansion=expansion.outcome,
        scope=scope,
        session_id=session_id,
        project=project,
        hits=hits,
        omitted=len(fused) - len(hits),
        chars=sum(len(hit.text) for hit in hits),
    )


async def recall_in(
    context: WorkerContext,
    query: str,
    *,
    session_id: str,
    project: str,
    model: str | None,
    limit: int = DEFAULT_LIMIT,
    scope: RecallScope = "session",
    scope_project: str | None = None,
    expand: bool | None = None,
    max_chars: int | None = None,
) -> RecallResult:
    """Recall for a session of an engine: :func:`search_history` with the engine's settings and, when
    ``expand`` (default ``config.recall_expand``), query expansion through its ``LLMClient``.

    ``project`` is the session's; ``scope_project`` searches another project (``scope="project"`` only).

    Raises:
        ConfigError: as :func:`search_history`, or ``scope_project`` with another scope.
        StoreError: the database failed.
    """
    config = context.config
    if scope_project is not None and scope != "project":
        raise ConfigError("a recall project applies to scope='project' only")
    expander: Callable[[str], Awaitable[Expansion]] | None = None
    if config.recall_expand if expand is None else expand:

        async def expander(text: str) -> Expansion:
            return await expand_query(
                context,
                text,
                session_id=session_id,
                project=project,
                model=config.worker_model or model,
                count=config.recall_expansions,
                wait_seconds=config.recall_expand_timeout_seconds,
            )

    return await search_history(
        context.store,
        query,
        session_id=session_id,
        project=scope_project or project,
        scope=scope,
        limit=limit,
        max_chars=config.recall_max_chars if max_chars is None else max_chars,
        snippet_chars=config.recall_snippet_chars,
        min_confidence=config.knowledge_min_confidence,
        expander=expander,
    )
