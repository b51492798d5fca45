"""Queries on ``worker_runs``: one row per background worker run, so failures stay visible.

Runs of a session go with it (``ON DELETE CASCADE``); project-level runs (``session_id`` NULL) stay until
pruned. "Newest" means the latest ``started_at`` (ties: the greater id), everywhere in this module.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, case, delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from lore_core.errors import ConfigError, SessionNotFoundError
from lore_core.store import rows
from lore_core.store.models import Session, WorkerRun
from lore_core.store.records import WorkerRunRecord
from lore_core.store.statements import insert

__all__ = ["count_worker_runs", "list_worker_runs", "prune_worker_runs", "record_worker_run"]


async def record_worker_run(connection: AsyncConnection, run: WorkerRunRecord) -> None:
    """Insert the run; a run whose id is already stored is left as it is (a retried call stores it once).

    Raises:
        SessionNotFoundError: ``run.session_id`` names a session that does not exist.
    """
    if run.session_id is not None:
        found = await connection.scalar(
            select(Session.session_id).where(Session.session_id == run.session_id)
        )
        if found is None:
            raise SessionNotFoundError(run.session_id)
    await connection.execute(
        insert(connection, WorkerRun)
        .values(rows.worker_run_values(run))
        .on_conflict_do_nothing(index_elements=[WorkerRun.id])
    )


def _require_non_negative(name: str, value: int) -> None:
    if value < 0:
        raise ConfigError(f"{name} must be >= 0, got {value}")


def _filters(
    *, session_id: str | None, project: str | None, worker: str | None, status: str | None
) -> list[ColumnElement[bool]]:
    """The WHERE terms for the filters given; None means "any"."""
    given = [
        (WorkerRun.session_id, session_id),
        (WorkerRun.project, project),
        (WorkerRun.worker, worker),
        (WorkerRun.status, status),
    ]
    return [column == value for column, value in given if value is not None]


async def list_worker_runs(
    connection: AsyncConnection,
    *,
    session_id: str | None,
    project: str | None,
    worker: str | None,
    status: str | None,
    limit: int,
) -> list[WorkerRunRecord]:
    """The newest ``limit`` runs matching every filter given, newest first.

    Raises:
        ConfigError: ``limit`` is negative.
    """
    _require_non_negative("limit", limit)
    query = (
        select(WorkerRun)
        .where(*_filters(session_id=session_id, project=project, worker=worker, status=status))
        .order_by(WorkerRun.started_at.desc(), WorkerRun.id.desc())
        .limit(limit)
    )
    return [rows.worker_run_record(row) for row in await connection.execute(query)]


async def count_worker_runs(
    connection: AsyncConnection,
    *,
    session_id: str | None,
    project: str | None,
    worker: str | None,
    status: str | None,
) -> int:
    """How many runs match every filter given."""
    filters = _filters(session_id=session_id, project=project, worker=worker, status=status)
    query = select(func.count()).select_from(WorkerRun).where(*filters)
    return int(await connection.scalar(query) or 0)


async def prune_worker_runs(connection: AsyncConnection, *, keep_per_session: int) -> int:
    """Delete all but the newest ``keep_per_session`` runs of each session; return how many were deleted.

    Project-level runs (no session) are kept per project the same way. One DELETE with a window function
    (SQLite 3.25+, PostgreSQL).

    Raises:
        ConfigError: ``keep_per_session`` is negative.
    """
    _require_non_negative("keep_per_session", keep_per_session)
    # NULLs form one partition in both databases, so session-less runs group by project alone.
    group_project = case((WorkerRun.session_id.is_(None), WorkerRun.project), else_=None)
    ranked = select(
        WorkerRun.id,
        func.row_number()
        .over(
            partition_by=(WorkerRun.session_id, group_project),
            order_by=(WorkerRun.started_at.desc(), WorkerRun.id.desc()),
        )
        .label("newness"),
    ).subquery()
    doomed = select(ranked.c.id).where(ranked.c.newness > keep_per_session)
    result = await connection.execute(delete(WorkerRun).where(WorkerRun.id.in_(doomed)))
    return result.rowcount
