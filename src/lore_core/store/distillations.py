"""Queries on ``distillations``: the two atomic writes (gen-0 insert + mark, meta insert + archive) and reads.

Both writes lock the session first (``FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), assign the
next ``seq``, and re-check what the result was built from. When the check fails they raise
:class:`StaleWrite`, so the caller's transaction rolls back and nothing is written: another process got there
first.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from lore_core.store import rows
from lore_core.store.messages import mark_distilled
from lore_core.store.models import Distillation
from lore_core.store.records import DistillationRecord
from lore_core.store.sessions import lock_session
from lore_core.store.statements import chunks

__all__ = [
    "StaleWrite",
    "archive",
    "distillations_after",
    "get_distillation",
    "insert_and_mark",
    "insert_meta_and_archive",
    "latest_distillation",
    "list_distillations",
    "record_retention",
    "revise",
]


class StaleWrite(Exception):
    """Internal: the rows a result was built from changed; the transaction must roll back."""


async def _next_seq(connection: AsyncConnection, session_id: str) -> int:
    query = select(func.coalesce(func.max(Distillation.seq), 0)).where(Distillation.session_id == session_id)
    return int(await connection.scalar(query) or 0) + 1


async def _insert(connection: AsyncConnection, record: DistillationRecord) -> DistillationRecord:
    seq = await _next_seq(connection, record.session_id)
    await connection.execute(insert(Distillation).values(rows.distillation_values(record, seq=seq)))
    return dataclasses.replace(record, seq=seq, archived=False)


async def insert_and_mark(
    connection: AsyncConnection, record: DistillationRecord, source_ids: Sequence[str]
) -> DistillationRecord:
    """Insert a gen-0 row and mark its sources distilled; every source must exist and be undistilled.

    Raises:
        SessionNotFoundError: no such session.
        StaleWrite: a source message is missing or already distilled.
    """
    await lock_session(connection, record.session_id)
    unique = list(dict.fromkeys(source_ids))
    if await mark_distilled(connection, record.session_id, unique) != len(unique):
        raise StaleWrite(record.id)
    return await _insert(connection, record)


async def insert_meta_and_archive(
    connection: AsyncConnection, record: DistillationRecord, archive_ids: Sequence[str]
) -> DistillationRecord:
    """Insert a reflector row and archive the rows it replaces; each must be a live row of the same session.

    Raises:
        SessionNotFoundError: no such session.
        StaleWrite: a row to archive is missing, of another session, or already archived.
    """
    await lock_session(connection, record.session_id)
    unique = list(dict.fromkeys(archive_ids))
    if await _archive(connection, unique, session_id=record.session_id) != len(unique):
        raise StaleWrite(record.id)
    return await _insert(connection, record)


async def _archive(connection: AsyncConnection, ids: Sequence[str], *, session_id: str | None = None) -> int:
    changed = 0
    for chunk in chunks(ids):
        query = update(Distillation).where(Distillation.id.in_(chunk), Distillation.archived.is_(False))
        if session_id is not None:
            query = query.where(Distillation.session_id == session_id)
        changed += (await connection.execute(query.values(archived=True))).rowcount
    return changed


async def archive(connection: AsyncConnection, ids: Sequence[str]) -> int:
    """Archive the listed rows; return how many were live before."""
    return await _archive(connection, list(dict.fromkeys(ids)))


async def list_distillations(
    connection: AsyncConnection,
    session_id: str,
    *,
    include_archived: bool = False,
    generation: int | None = None,
) -> list[DistillationRecord]:
    """The session's rows by ``seq``; archived ones only when asked; optionally of one generation."""
    query = select(Distillation).where(Distillation.session_id == session_id)
    if not include_archived:
        query = query.where(Distillation.archived.is_(False))
    if generation is not None:
        query = query.where(Distillation.generation == generation)
    return [
        rows.distillation_record(row) for row in await connection.execute(query.order_by(Distillation.seq))
    ]


async def distillations_after(
    connection: AsyncConnection, session_id: str, since: datetime, *, include_archived: bool
) -> list[DistillationRecord]:
    """The session's rows created strictly after ``since`` (``created_at > since``), by ``seq``."""
    query = select(Distillation).where(Distillation.session_id == session_id, Distillation.created_at > since)
    if not include_archived:
        query = query.where(Distillation.archived.is_(False))
    return [
        rows.distillation_record(row) for row in await connection.execute(query.order_by(Distillation.seq))
    ]


async def get_distillation(connection: AsyncConnection, distillation_id: str) -> DistillationRecord | None:
    """The row with this id, archived or not; None when unknown (or not a UUID at all)."""
    try:
        uuid.UUID(distillation_id)
    except ValueError:
        return None
    query = select(Distillation).where(Distillation.id == distillation_id)
    row = (await connection.execute(query)).one_or_none()
    return None if row is None else rows.distillation_record(row)


async def latest_distillation(connection: AsyncConnection, session_id: str) -> DistillationRecord | None:
    """The session's live (non-archived) row with the highest ``seq``, of any generation; None when none."""
    query = (
        select(Distillation)
        .where(Distillation.session_id == session_id, Distillation.archived.is_(False))
        .order_by(Distillation.seq.desc())
        .limit(1)
    )
    row = (await connection.execute(query)).one_or_none()
    return None if row is None else rows.distillation_record(row)


async def record_retention(connection: AsyncConnection, distillation_id: str, score: float) -> bool:
    """Set the retention score (and the initial score if unset); False for an unknown row."""
    result = await connection.execute(
        update(Distillation)
        .where(Distillation.id == distillation_id)
        .values(
            retention_score=score,
            retention_initial=func.coalesce(Distillation.retention_initial, score),
        )
    )
    return result.rowcount == 1


async def revise(
    connection: AsyncConnection,
    distillation_id: str,
    *,
    observations: str,
    token_count: int,
    retention_score: float | None,
    expected_revision: int,
) -> bool:
    """Compare-and-set a revision: replace the observations and bump ``revision`` if it still equals
    ``expected_revision``.

    Returns False (writing nothing) for an unknown row or one already revised.
    """
    result = await connection.execute(
        update(Distillation)
        .where(Distillation.id == distillation_id, Distillation.revision == expected_revision)
        .values(
            observations=observations,
            token_count=token_count,
            retention_score=retention_score,
            revision=expected_revision + 1,
        )
    )
    return result.rowcount == 1
