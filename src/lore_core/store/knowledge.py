"""Queries on ``knowledge`` (long-term entries, per project or global) and ``kv`` (engine metadata)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from lore_core.store import rows
from lore_core.store.models import Knowledge, Kv
from lore_core.store.records import KnowledgeRecord, KvRecord
from lore_core.store.statements import insert
from lore_core.store.types import JsonValue

__all__ = ["count_knowledge", "delete_knowledge", "kv_get", "kv_set", "list_knowledge", "upsert_knowledge"]


async def upsert_knowledge(connection: AsyncConnection, entry: KnowledgeRecord) -> None:
    """Insert the entry, or overwrite every field of the entry with its id except ``created_at``."""
    values = rows.knowledge_values(entry)
    statement = insert(connection, Knowledge).values(values)
    kept = {"id", "created_at"}
    await connection.execute(
        statement.on_conflict_do_update(
            index_elements=[Knowledge.id],
            set_={name: statement.excluded[name] for name in values if name not in kept},
        )
    )


async def delete_knowledge(connection: AsyncConnection, entry_id: str) -> bool:
    """Delete the entry; False when there was none."""
    result = await connection.execute(delete(Knowledge).where(Knowledge.id == entry_id))
    return result.rowcount == 1


def _visible(project: str | None, *, include_global: bool, min_confidence: float) -> ColumnElement[bool]:
    """Entries of ``project`` (plus global ones when ``include_global``; ``None``: global only) with
    confidence strictly above ``min_confidence``."""
    scope = Knowledge.project.is_(None) if project is None else Knowledge.project == project
    if project is not None and include_global:
        scope = or_(scope, Knowledge.project.is_(None))
    return and_(scope, Knowledge.confidence > min_confidence)


async def list_knowledge(
    connection: AsyncConnection, project: str | None, *, include_global: bool, min_confidence: float
) -> list[KnowledgeRecord]:
    """Visible entries (confidence strictly above ``min_confidence``), highest confidence first, then newest.

    ``project`` entries plus global ones when ``include_global``; ``project=None`` lists global entries only.
    """
    query = (
        select(Knowledge)
        .where(_visible(project, include_global=include_global, min_confidence=min_confidence))
        .order_by(Knowledge.confidence.desc(), Knowledge.updated_at.desc(), Knowledge.id)
    )
    return [rows.knowledge_record(row) for row in await connection.execute(query)]


async def count_knowledge(
    connection: AsyncConnection, project: str | None, *, include_global: bool, min_confidence: float
) -> int:
    """How many entries :func:`list_knowledge` would return for the same arguments."""
    visible = _visible(project, include_global=include_global, min_confidence=min_confidence)
    query = select(func.count()).select_from(Knowledge).where(visible)
    return int(await connection.scalar(query) or 0)


async def kv_get(connection: AsyncConnection, key: str) -> KvRecord | None:
    """The entry under ``key``, or None."""
    row = (await connection.execute(select(Kv).where(Kv.key == key))).one_or_none()
    return None if row is None else rows.kv_record(row)


async def kv_set(connection: AsyncConnection, key: str, value: JsonValue, now: datetime) -> None:
    """Store ``value`` under ``key`` (insert or overwrite)."""
    statement = insert(connection, Kv).values(key=key, value=value, updated_at=now)
    await connection.execute(
        statement.on_conflict_do_update(
            index_elements=[Kv.key],
            set_={"value": statement.excluded.value, "updated_at": statement.excluded.updated_at},
        )
    )
