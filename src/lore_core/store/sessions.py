"""Queries on ``sessions`` and ``session_state``, including the cross-process distillation lease.

Functions here run on a connection the caller has opened (and will commit); they raise SQLAlchemy errors as
they come, and :class:`~lore_core.store.sql.SqlSessionStore` wraps them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from lore_core.errors import SessionNotFoundError
from lore_core.store import rows
from lore_core.store.models import Session, SessionState
from lore_core.store.records import SessionRecord, SessionStateRecord
from lore_core.store.statements import insert

__all__ = [
    "ensure_session",
    "get_session",
    "list_sessions",
    "load_state",
    "lock_session",
    "release_lease",
    "save_state",
    "try_take_lease",
]


async def ensure_session(
    connection: AsyncConnection, session_id: str, project: str, model: str, now: datetime
) -> SessionRecord:
    """Create the session and its state row unless they exist; record ``model`` as its last model."""
    await connection.execute(
        insert(connection, Session)
        .values(session_id=session_id, project=project, created_at=now, last_model=model)
        .on_conflict_do_nothing(index_elements=[Session.session_id])
    )
    await connection.execute(
        insert(connection, SessionState)
        .values(rows.new_state_values(session_id))
        .on_conflict_do_nothing(index_elements=[SessionState.session_id])
    )
    await connection.execute(
        update(Session)
        .where(Session.session_id == session_id, Session.last_model != model)
        .values(last_model=model)
    )
    row = (await connection.execute(select(Session).where(Session.session_id == session_id))).one()
    return rows.session_record(row)


async def get_session(connection: AsyncConnection, session_id: str) -> SessionRecord | None:
    """The session, or None when unknown."""
    row = (await connection.execute(select(Session).where(Session.session_id == session_id))).one_or_none()
    return None if row is None else rows.session_record(row)


async def list_sessions(connection: AsyncConnection, *, project: str | None) -> list[SessionRecord]:
    """Every session (of ``project`` when given), oldest first."""
    query = select(Session)
    if project is not None:
        query = query.where(Session.project == project)
    query = query.order_by(Session.created_at, Session.session_id)
    return [rows.session_record(row) for row in await connection.execute(query)]


async def lock_session(connection: AsyncConnection, session_id: str) -> None:
    """Serialize writers of one session's rows: ``SELECT ... FOR UPDATE`` on PostgreSQL.

    SQLite ignores ``FOR UPDATE``; there the write transaction's ``BEGIN IMMEDIATE`` already serializes.

    Raises:
        SessionNotFoundError: no such session.
    """
    found = await connection.scalar(
        select(Session.session_id).where(Session.session_id == session_id).with_for_update()
    )
    if found is None:
        raise SessionNotFoundError(session_id)


async def load_state(connection: AsyncConnection, session_id: str) -> SessionStateRecord | None:
    """The session's persisted state, or None when the session is unknown."""
    query = select(SessionState).where(SessionState.session_id == session_id)
    row = (await connection.execute(query)).one_or_none()
    return None if row is None else rows.state_record(row)


async def _require_state(connection: AsyncConnection, session_id: str) -> None:
    query = select(SessionState.session_id).where(SessionState.session_id == session_id)
    if await connection.scalar(query) is None:
        raise SessionNotFoundError(session_id)


async def save_state(connection: AsyncConnection, session_id: str, changes: Mapping[str, object]) -> None:
    """Update only the given state fields of the session.

    Raises:
        SessionNotFoundError: no such session.
    """
    if not changes:
        await _require_state(connection, session_id)
        return
    result = await connection.execute(
        update(SessionState).where(SessionState.session_id == session_id).values(rows.state_values(changes))
    )
    if result.rowcount == 0:
        raise SessionNotFoundError(session_id)


async def try_take_lease(
    connection: AsyncConnection, session_id: str, owner: str, until: datetime, now: datetime
) -> bool:
    """Compare-and-set: take (or renew) the lease when it is free, expired or already ``owner``'s.

    Raises:
        SessionNotFoundError: no such session.
    """
    state = SessionState
    result = await connection.execute(
        update(state)
        .where(
            state.session_id == session_id,
            or_(state.lease_owner.is_(None), state.lease_owner == owner, state.lease_until <= now),
        )
        .values(lease_owner=owner, lease_until=until)
    )
    if result.rowcount == 1:
        return True
    await _require_state(connection, session_id)
    return False


async def release_lease(connection: AsyncConnection, session_id: str, owner: str) -> bool:
    """Drop the lease if ``owner`` holds it; True when it did."""
    result = await connection.execute(
        update(SessionState)
        .where(SessionState.session_id == session_id, SessionState.lease_owner == owner)
        .values(lease_owner=None, lease_until=None)
    )
    return result.rowcount == 1
