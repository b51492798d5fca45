"""Queries on ``messages``: idempotent storage, ordered reads, undistilled accounting, crash repair.

Reads take ``with_blocks``: the ``blocks`` column holds the caller's full content blocks (tool payloads
included), so the per-turn path leaves it out of the SELECT and gets records with ``blocks=()``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from lore_core.errors import SessionNotFoundError
from lore_core.store import rows
from lore_core.store.models import Distillation, Message, Session
from lore_core.store.records import MessageRecord
from lore_core.store.statements import chunks, insert

__all__ = [
    "count_messages",
    "has_content_hash",
    "insert_messages",
    "list_messages",
    "mark_distilled",
    "message_ids",
    "messages_after",
    "reset_orphan_distilled",
    "undistilled_tokens",
]


async def insert_messages(connection: AsyncConnection, records: Sequence[MessageRecord]) -> int:
    """Insert the records whose (session, id) is not stored yet; return how many were new.

    Raises:
        SessionNotFoundError: a record names a session that does not exist.
    """
    first: dict[tuple[str, str], MessageRecord] = {}
    for record in records:
        first.setdefault((record.session_id, record.id), record)
    unique = list(first.values())
    if not unique:
        return 0
    session_ids = sorted({record.session_id for record in unique})
    known = set(
        await connection.scalars(select(Session.session_id).where(Session.session_id.in_(session_ids)))
    )
    for session_id in session_ids:
        if session_id not in known:
            raise SessionNotFoundError(session_id)
    statement = (
        insert(connection, Message)
        .on_conflict_do_nothing(index_elements=[Message.session_id, Message.id])
        .returning(Message.id)
    )
    result = await connection.execute(statement, [rows.message_values(record) for record in unique])
    return len(result.all())


_WITHOUT_BLOCKS = tuple(column for column in Message.__table__.c if column.key != "blocks")


def _select(session_id: str, *, with_blocks: bool) -> Select[Any]:
    """The session's messages, with or without the ``blocks`` column."""
    query: Select[Any] = select(Message) if with_blocks else select(*_WITHOUT_BLOCKS)
    return query.where(Message.session_id == session_id)


def _in_order(query: Select[Any]) -> Select[Any]:
    """By position; a rewritten message at the same position after the older one; then by id."""
    return query.order_by(Message.position, Message.created_at, Message.id)


async def list_messages(
    connection: AsyncConnection,
    session_id: str,
    *,
    undistilled_only: bool = False,
    after_position: int | None = None,
    limit: int | None = None,
    with_blocks: bool = True,
) -> list[MessageRecord]:
    """The session's messages by position (ties: oldest first), optionally filtered and limited."""
    query = _select(session_id, with_blocks=with_blocks)
    if undistilled_only:
        query = query.where(Message.distilled.is_(False))
    if after_position is not None:
        query = query.where(Message.position > after_position)
    return [rows.message_record(row) for row in await connection.execute(_in_order(query).limit(limit))]


async def messages_after(
    connection: AsyncConnection, session_id: str, since: datetime, *, with_blocks: bool = True
) -> list[MessageRecord]:
    """The session's messages stored strictly after ``since`` (``created_at > since``), by position."""
    query = _select(session_id, with_blocks=with_blocks).where(Message.created_at > since)
    return [rows.message_record(row) for row in await connection.execute(_in_order(query))]


async def count_messages(connection: AsyncConnection, session_id: str, *, undistilled_only: bool) -> int:
    """How many messages the session stores (only undistilled ones with ``undistilled_only``)."""
    query = select(func.count()).select_from(Message).where(Message.session_id == session_id)
    if undistilled_only:
        query = query.where(Message.distilled.is_(False))
    return int(await connection.scalar(query) or 0)


async def message_ids(connection: AsyncConnection, session_id: str) -> set[str]:
    """Every stored message id of the session."""
    return set(await connection.scalars(select(Message.id).where(Message.session_id == session_id)))


async def has_content_hash(
    connection: AsyncConnection, session_id: str, role: str, content_hash: str
) -> bool:
    """Whether the session stores a message with this role and content hash."""
    query = select(Message.id).where(
        Message.session_id == session_id, Message.content_hash == content_hash, Message.role == role
    )
    return await connection.scalar(query.limit(1)) is not None


async def undistilled_tokens(connection: AsyncConnection, session_id: str) -> int:
    """Sum of ``tokens`` over the session's undistilled messages (0 when none)."""
    query = select(func.coalesce(func.sum(Message.tokens), 0)).where(
        Message.session_id == session_id, Message.distilled.is_(False)
    )
    return int(await connection.scalar(query) or 0)


async def mark_distilled(connection: AsyncConnection, session_id: str, ids: Sequence[str]) -> int:
    """Mark the listed undistilled messages distilled; return how many changed (compare-and-set)."""
    changed = 0
    for chunk in chunks(ids):
        result = await connection.execute(
            update(Message)
            .where(Message.session_id == session_id, Message.id.in_(chunk), Message.distilled.is_(False))
            .values(distilled=True)
        )
        changed += result.rowcount
    return changed


async def reset_orphan_distilled(connection: AsyncConnection, session_id: str) -> int:
    """Mark undistilled every distilled message no distillation row references; return how many.

    The caller locks the session first, so no distillation lands between the two reads.
    """
    referenced: set[str] = set()
    for source_ids in await connection.scalars(
        select(Distillation.source_ids).where(Distillation.session_id == session_id)
    ):
        referenced.update(source_ids)
    distilled = await connection.scalars(
        select(Message.id).where(Message.session_id == session_id, Message.distilled.is_(True))
    )
    orphans = sorted(set(distilled) - referenced)
    for chunk in chunks(orphans):
        await connection.execute(
            update(Message)
            .where(Message.session_id == session_id, Message.id.in_(chunk))
            .values(distilled=False)
        )
    return len(orphans)
