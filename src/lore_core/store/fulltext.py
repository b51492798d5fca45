"""Full-text queries for recall: FTS5 on SQLite, ``tsvector`` on PostgreSQL, behind one function.

Revision 0005 builds the indexes (see ``migrations/versions/0005_recall_search.py``): on SQLite an FTS5
external-content table per source, ``<table>_fts``, joined back on ``rowid`` and kept in sync by triggers; on
PostgreSQL a generated ``fts_vector`` column per source table with a GIN index. Both split words at every
punctuation character and stem English, so the same terms find the same rows on both backends.

A search is one query per source; each returns that source's best rows, ranked by the backend (BM25 on
SQLite; on PostgreSQL the number of distinct terms a row holds, then ``ts_rank`` normalised by document
length), ties broken newest first, then by id. Terms are OR-ed: a row needs one of them, and more (and, on
SQLite, rarer) terms rank it higher.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    Select,
    bindparam,
    cast,
    func,
    literal_column,
    or_,
    select,
    table,
)
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from lore_core.errors import ConfigError
from lore_core.store import rows
from lore_core.store.migrate import FULLTEXT_COLUMN
from lore_core.store.models import Distillation, Knowledge, Message, Session
from lore_core.store.records import (
    DistillationRecord,
    KnowledgeRecord,
    MessageRecord,
    SearchSource,
    TextMatch,
    TextSearch,
)

__all__ = ["match_expression", "search_text"]

_TERM_RE: Final = re.compile(r"[^\W_]+")
# What a term may be: letters and digits only, so it can never be read as FTS5 or tsquery syntax.

PG_CONFIG: Final = "english"
"""PostgreSQL's text search configuration; revision 0005's ``fts_vector`` columns use the same one."""

_MESSAGE_COLUMNS = tuple(column for column in Message.__table__.c if column.key != "blocks")


def match_expression(terms: tuple[str, ...], dialect: str) -> str:
    """The backend's query text for ``terms``, any of which may match.

    FTS5 gets quoted strings joined by ``OR`` (each still stemmed by the table's tokenizer), PostgreSQL a
    ``to_tsquery`` text joined by ``|``. Example: ``match_expression(("port", "db"), "sqlite") == '"port" OR
    "db"'``.

    Raises:
        ConfigError: a term is empty or holds anything but letters and digits.
    """
    for term in terms:
        if not _TERM_RE.fullmatch(term):
            raise ConfigError(f"search term {term!r}: only letters and digits are allowed")
    if dialect == "sqlite":
        return " OR ".join(f'"{term}"' for term in terms)
    return " | ".join(terms)


@dataclass(frozen=True, slots=True)
class _Relevance:
    """How one table is matched and ranked: the condition, the ORDER BY keys (best first), the score shown,
    and the FTS5 table to join (None on PostgreSQL)."""

    condition: ColumnElement[bool]
    order: tuple[ColumnElement[Any], ...]
    score: ColumnElement[float]
    fts: Any | None


def _relevance(name: str, dialect: str, terms: tuple[str, ...]) -> _Relevance:
    """SQLite: BM25 (term rarity, frequency, document length). PostgreSQL: first how many distinct terms a row
    holds (``ts_rank`` knows no term rarity, so a short row holding one common word would otherwise beat the
    row holding them all), then ``ts_rank`` normalised by document length."""
    query = match_expression(terms, dialect)
    if dialect == "sqlite":
        fts: ColumnElement[Any] = literal_column(f"{name}_fts")
        score = (-func.bm25(fts, type_=Float)).label("score")
        return _Relevance(
            fts.op("MATCH")(bindparam("match", query)), (score.desc(),), score, table(f"{name}_fts")
        )
    vector: ColumnElement[Any] = literal_column(f"{name}.{FULLTEXT_COLUMN}")
    config: ColumnElement[Any] = literal_column(f"'{PG_CONFIG}'::regconfig")
    tsquery = func.to_tsquery(config, bindparam("match", query))
    matched = [
        cast(vector.op("@@")(func.to_tsquery(config, bindparam(f"term{n}", term))), Integer)
        for n, term in enumerate(terms)
    ]
    coverage = functools.reduce(operator.add, matched)
    score = func.ts_rank(vector, tsquery, 1, type_=Float).label("score")
    return _Relevance(vector.op("@@")(tsquery), (coverage.desc(), score.desc()), score, None)


def _joined(base: Any, name: str, fts: Any | None) -> Any:
    if fts is None:
        return base
    return base.join(fts, literal_column(f"{name}_fts.rowid") == literal_column(f"{name}.rowid"))


def _messages(search: TextSearch, dialect: str) -> Select[Any]:
    rel = _relevance("messages", dialect, search.terms)
    statement = (
        select(*_MESSAGE_COLUMNS, rel.score)
        .select_from(_joined(Message.__table__, "messages", rel.fts))
        .where(rel.condition)
    )
    if search.session_id is not None:
        statement = statement.where(Message.session_id == search.session_id)
    elif search.project is not None:
        sessions = select(Session.session_id).where(Session.project == search.project)
        statement = statement.where(Message.session_id.in_(sessions))
    return statement.order_by(
        *rel.order, Message.created_at.desc(), Message.position.desc(), Message.session_id, Message.id
    )


def _distillations(search: TextSearch, dialect: str) -> Select[Any]:
    rel = _relevance("distillations", dialect, search.terms)
    statement = (
        select(*Distillation.__table__.c, rel.score)
        .select_from(_joined(Distillation.__table__, "distillations", rel.fts))
        .where(rel.condition)
    )
    if search.session_id is not None:
        statement = statement.where(Distillation.session_id == search.session_id)
    elif search.project is not None:
        statement = statement.where(Distillation.project == search.project)
    return statement.order_by(*rel.order, Distillation.created_at.desc(), Distillation.id)


def _knowledge(search: TextSearch, dialect: str) -> Select[Any]:
    rel = _relevance("knowledge", dialect, search.terms)
    statement = (
        select(*Knowledge.__table__.c, rel.score)
        .select_from(_joined(Knowledge.__table__, "knowledge", rel.fts))
        .where(rel.condition, Knowledge.confidence > search.min_confidence)
    )
    if search.project is not None:
        scope = Knowledge.project == search.project
        if search.include_global:
            scope = or_(scope, Knowledge.project.is_(None))
        statement = statement.where(scope)
    return statement.order_by(*rel.order, Knowledge.updated_at.desc(), Knowledge.id)


_STATEMENTS: dict[SearchSource, Callable[[TextSearch, str], Select[Any]]] = {
    "message": _messages,
    "distillation": _distillations,
    "knowledge": _knowledge,
}
_RECORDS: dict[SearchSource, Callable[[Row[Any]], MessageRecord | DistillationRecord | KnowledgeRecord]] = {
    "message": rows.message_record,
    "distillation": rows.distillation_record,
    "knowledge": rows.knowledge_record,
}


async def search_text(connection: AsyncConnection, search: TextSearch) -> list[TextMatch]:
    """Each requested source's best ``search.limit`` rows for ``search.terms``, source by source.

    Raises:
        ConfigError: a term holds anything but letters and digits.
    """
    if not search.terms or search.limit <= 0:
        return []
    dialect = connection.dialect.name
    found: list[TextMatch] = []
    for source in search.sources:
        statement = _STATEMENTS[source](search, dialect).limit(search.limit)
        result = await connection.execute(statement)
        build = _RECORDS[source]
        found += [
            TextMatch(rank=rank, score=float(row.score), record=build(row))
            for rank, row in enumerate(result, start=1)
        ]
    return found
