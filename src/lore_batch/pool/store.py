"""The durable pool's one I/O seam: every statement on the ``lore_batch_*`` pool tables (BATCH.md 6.1, 6.4).

The same statements run on SQLite (one machine) and PostgreSQL (many hosts). A claim is one ``UPDATE`` whose
``WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)`` picks the oldest queued items of one credential and
workspace, re-checks ``state = 'queued'`` and ``RETURNING`` them: PostgreSQL skips rows another transaction
holds; SQLite drops the locking clause and relies on its single writer (``BEGIN IMMEDIATE``) and the state
re-check. Every state change is conditional on the state it expects, so two processes never both move an
item, and a result is applied only while its item is ``in_batch`` under that batch. Database failures are
:class:`~lore_core.errors.StoreError`.
"""

from __future__ import annotations

import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, Table, cast, delete, func, insert, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from lore_core.store.models import BatchItem, BatchLease, BatchProcess, BatchRecord
from lore_core.store.transactions import SqlStoreBase

from .records import FINISHED, StoredBatch, StoredItem

__all__ = ["GroupDue", "PoolStore", "ProcessRow"]

_items = typing.cast(Table, BatchItem.__table__)
_batches = typing.cast(Table, BatchRecord.__table__)
_processes = typing.cast(Table, BatchProcess.__table__)
_leases = typing.cast(Table, BatchLease.__table__)

# Item ids per UPDATE of a claim (PostgreSQL allows 32,767 bind parameters in one statement).
CLAIM_CHUNK = 10_000


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupDue:
    """The queued items of one (credential, workspace): how many, and since when."""

    workspace: str | None
    count: int
    oldest: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessRow:
    """One ``lore_batch_processes`` row."""

    id: str
    host: str
    pid: int
    credential_fps: tuple[str, ...]
    workers: tuple[str, ...]
    heartbeat_at: datetime
    stopped_at: datetime | None


def _workspace_is(workspace: str | None) -> ColumnElement[bool]:
    column = _items.c.workspace
    return column.is_(None) if workspace is None else column == workspace


class PoolStore(SqlStoreBase):
    """Statements on the pool tables. ``engine`` is shared with the rest of the store (or made from a URL)."""

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.engine.dialect.name

    async def _run(self, operation: str, statement: Any, *, write: bool = True) -> Any:
        context = self._write(operation) if write else self._read(operation)
        async with context as connection:
            return await connection.execute(statement)

    # -- processes and leases --------------------------------------------------------------------------------

    async def register_process(self, row: ProcessRow, *, now: datetime) -> None:
        """Insert this process's row."""
        await self._run(
            "register pool process",
            insert(_processes).values(
                id=row.id,
                host=row.host,
                pid=row.pid,
                credential_fps=list(row.credential_fps),
                workers=list(row.workers),
                started_at=now,
                heartbeat_at=now,
            ),
        )

    async def heartbeat(
        self, process_id: str, *, fps: Iterable[str], workers: Iterable[str], now: datetime
    ) -> None:
        """Refresh this process's heartbeat and the credentials and handlers it holds."""
        await self._run(
            "pool heartbeat",
            update(_processes)
            .where(_processes.c.id == process_id)
            .values(heartbeat_at=now, credential_fps=sorted(fps), workers=sorted(workers)),
        )

    async def stop_process(self, process_id: str, *, now: datetime) -> None:
        """Mark this process stopped."""
        await self._run(
            "stop pool process",
            update(_processes).where(_processes.c.id == process_id).values(stopped_at=now, heartbeat_at=now),
        )

    async def processes(self) -> list[ProcessRow]:
        """Every process row, newest heartbeat first."""
        result = await self._run(
            "list pool processes",
            select(_processes).order_by(_processes.c.heartbeat_at.desc()),
            write=False,
        )
        return [
            ProcessRow(
                id=row.id,
                host=row.host,
                pid=row.pid,
                credential_fps=tuple(row.credential_fps or ()),
                workers=tuple(row.workers or ()),
                heartbeat_at=row.heartbeat_at,
                stopped_at=row.stopped_at,
            )
            for row in result
        ]

    async def take_lease(self, key: str, holder: str, *, now: datetime, ttl: float) -> bool:
        """Take or renew the lease ``key`` for ``holder`` if it is free, expired or already ours."""
        expires = now + timedelta(seconds=ttl)
        maker = pg_insert if self.dialect == "postgresql" else sqlite_insert
        statement = maker(_leases).values(key=key, holder=holder, expires_at=expires)
        statement = statement.on_conflict_do_update(
            index_elements=[_leases.c.key],
            set_={"holder": holder, "expires_at": expires},
            where=or_(_leases.c.expires_at < now, _leases.c.holder == holder),
        )
        async with self._write("take pool lease") as connection:
            await connection.execute(statement)
            current = await connection.scalar(select(_leases.c.holder).where(_leases.c.key == key))
        return bool(current == holder)

    async def release_lease(self, key: str, holder: str) -> None:
        """Give up the lease ``key`` if ``holder`` has it."""
        await self._run(
            "release pool lease", delete(_leases).where(_leases.c.key == key, _leases.c.holder == holder)
        )

    async def leases(self) -> list[tuple[str, str, datetime]]:
        """Every lease as (key, holder, expires_at)."""
        result = await self._run("list pool leases", select(_leases), write=False)
        return [(row.key, row.holder, row.expires_at) for row in result]

    # -- items in ---------------------------------------------------------------------------------------------

    async def insert_items(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert queued items, all in one transaction."""
        async with self._write("enqueue batch items") as connection:
            await connection.execute(insert(_items), list(rows))

    async def queued_groups(self, fp: str) -> list[GroupDue]:
        """The queued items of credential ``fp`` by workspace: count and oldest ``enqueued_at``."""
        statement = (
            select(_items.c.workspace, func.count(), func.min(_items.c.enqueued_at))
            .where(_items.c.state == "queued", _items.c.credential_fp == fp)
            .group_by(_items.c.workspace)
        )
        result = await self._run("read queued groups", statement, write=False)
        return [GroupDue(workspace=ws, count=int(n), oldest=oldest) for ws, n, oldest in result]

    async def claim(
        self,
        fp: str,
        workspace: str | None,
        *,
        limit: int,
        max_bytes: int,
        submission_id: str,
        provider: str,
        process_id: str,
        now: datetime,
        only: Sequence[str] | None = None,
    ) -> list[StoredItem]:
        """Claim the oldest queued items of (``fp``, ``workspace``), at most ``limit`` of them and ``max_bytes``
        in all, for a new batch row ``submission_id`` (status ``creating``); one transaction. Each claimed item
        becomes ``submitting`` with ``attempts + 1`` and its new custom_id ``lb-<id>-<attempt>``. ``only``
        restricts the claim to those item ids; ``process_id`` (the claiming process) is kept on the batch row so
        a later leader can tell a create still running from one a dead process left. The ids are picked with
        ``FOR UPDATE SKIP LOCKED`` and moved in chunks of :data:`CLAIM_CHUNK` (PostgreSQL takes at most 32,767
        bind parameters per statement)."""
        async with self._write("claim batch items") as connection:
            clauses = [_items.c.state == "queued", _items.c.credential_fp == fp, _workspace_is(workspace)]
            if only is not None:
                clauses.append(_items.c.id.in_(only))
            sizes = await connection.execute(
                select(_items.c.id, _items.c.params_bytes)
                .where(*clauses)
                .order_by(_items.c.enqueued_at, _items.c.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            picked: list[str] = []
            total = 0
            for item_id, size in sizes:
                if picked and total + size > max_bytes:
                    break
                picked.append(item_id)
                total += size
            if not picked:
                return []
            attempt = _items.c.attempts + 1
            rows: list[RowMapping] = []
            for start in range(0, len(picked), CLAIM_CHUNK):
                claimed = await connection.execute(
                    update(_items)
                    .where(_items.c.id.in_(picked[start : start + CLAIM_CHUNK]), _items.c.state == "queued")
                    .values(
                        state="submitting",
                        attempts=attempt,
                        custom_id=literal("lb-") + _items.c.id + literal("-") + cast(attempt, String),
                        submission_id=submission_id,
                        batch_id=None,
                        submitted_at=now,
                        updated_at=now,
                    )
                    .returning(*_items.c)
                )
                rows.extend(claimed.mappings())
            items = [StoredItem.from_row(row) for row in rows]
            if items:
                await connection.execute(
                    insert(_batches).values(
                        submission_id=submission_id,
                        provider=provider,
                        credential_fp=fp,
                        workspace=workspace,
                        process_id=process_id,
                        status="creating",
                        request_count=len(items),
                        created_at=now,
                    )
                )
            return sorted(items, key=lambda item: (item.enqueued_at, item.id))

    # -- batches ----------------------------------------------------------------------------------------------

    async def batch_created(
        self,
        submission_id: str,
        batch_id: str,
        *,
        expires_at: datetime | None,
        next_poll_at: datetime,
        now: datetime,
    ) -> bool:
        """The create answered (or was adopted): the batch row gets its id, its items become ``in_batch``.
        Only a row still ``creating`` moves; ``False`` when another leader had already settled it."""
        async with self._write("record batch create") as connection:
            moved = await connection.execute(
                update(_batches)
                .where(_batches.c.submission_id == submission_id, _batches.c.status == "creating")
                .values(id=batch_id, status="in_progress", expires_at=expires_at, next_poll_at=next_poll_at)
            )
            if moved.rowcount != 1:
                return False
            await connection.execute(
                update(_items)
                .where(_items.c.submission_id == submission_id, _items.c.state == "submitting")
                .values(state="in_batch", batch_id=batch_id, updated_at=now)
            )
            return True

    async def batch_failed(self, submission_id: str, *, error: str, requeue: bool, now: datetime) -> None:
        """The create failed for good: the batch row is ``failed``; with ``requeue`` its items go back to
        ``queued`` (the submission never happened, so its attempt is taken back), else they stay for the caller
        to move (fallback)."""
        async with self._write("record failed create") as connection:
            await connection.execute(
                update(_batches)
                .where(_batches.c.submission_id == submission_id)
                .values(status="failed", error=error[:500])
            )
            if requeue:
                await connection.execute(
                    update(_items)
                    .where(_items.c.submission_id == submission_id, _items.c.state == "submitting")
                    .values(
                        state="queued",
                        custom_id=None,
                        submission_id=None,
                        attempts=_items.c.attempts - 1,
                        updated_at=now,
                    )
                )

    async def track_stray(
        self, batch_id: str, *, fp: str, workspace: str | None, process_id: str, now: datetime
    ) -> None:
        """Record a batch whose items were already settled elsewhere (a create that answered after another
        leader requeued its items): it is polled, its paid results logged as superseded, nothing delivered."""
        async with self._write("record stray batch") as connection:
            await connection.execute(
                insert(_batches).values(
                    submission_id=f"stray-{batch_id}",
                    id=batch_id,
                    provider="anthropic",
                    credential_fp=fp,
                    workspace=workspace,
                    process_id=process_id,
                    status="in_progress",
                    request_count=0,
                    created_at=now,
                    next_poll_at=now,
                )
            )

    async def update_batch(self, submission_id: str, **values: Any) -> None:
        """Set columns of one batch row."""
        await self._run(
            "update batch",
            update(_batches).where(_batches.c.submission_id == submission_id).values(**values),
        )

    async def batches(self, fp: str, statuses: Sequence[str]) -> list[StoredBatch]:
        """The batch rows of credential ``fp`` in ``statuses``, oldest first."""
        result = await self._run(
            "read batches",
            select(_batches)
            .where(_batches.c.credential_fp == fp, _batches.c.status.in_(statuses))
            .order_by(_batches.c.created_at),
            write=False,
        )
        return [StoredBatch.from_row(row) for row in result.mappings()]

    async def inflight_requests(self, fp: str) -> int:
        """Requests of credential ``fp`` in batches being created or not yet ended."""
        result = await self._run(
            "count in-flight requests",
            select(func.coalesce(func.sum(_batches.c.request_count), 0)).where(
                _batches.c.credential_fp == fp,
                _batches.c.status.in_(("creating", "in_progress", "canceling")),
            ),
            write=False,
        )
        return int(result.scalar_one())

    # -- items ------------------------------------------------------------------------------------------------

    async def items(self, *clauses: ColumnElement[bool], limit: int | None = None) -> list[StoredItem]:
        """Items matching every clause, oldest first."""
        statement = select(_items).where(*clauses).order_by(_items.c.enqueued_at, _items.c.id)
        if limit is not None:
            statement = statement.limit(limit)
        result = await self._run("read batch items", statement, write=False)
        return [StoredItem.from_row(row) for row in result.mappings()]

    async def min_deadline(self, fp: str, state: str) -> datetime | None:
        """The earliest deadline among items of credential ``fp`` in ``state``."""
        result = await self._run(
            "read next deadline",
            select(func.min(_items.c.deadline)).where(_items.c.credential_fp == fp, _items.c.state == state),
            write=False,
        )
        value: datetime | None = result.scalar_one()
        return value

    async def item_by_custom_id(self, custom_id: str) -> StoredItem | None:
        """The item whose current submission has ``custom_id``."""
        found = await self.items(_items.c.custom_id == custom_id)
        return found[0] if found else None

    async def move(
        self,
        item_id: str,
        *,
        expect: Sequence[str],
        where_batch: str | None = None,
        where_owner: str | None = None,
        **values: Any,
    ) -> bool:
        """Set ``values`` on item ``item_id`` only while its state is in ``expect`` (and, when given, its
        ``batch_id`` is ``where_batch`` and its ``owner_id`` is ``where_owner``); whether it moved."""
        clauses = [_items.c.id == item_id, _items.c.state.in_(expect)]
        if where_batch is not None:
            clauses.append(_items.c.batch_id == where_batch)
        if where_owner is not None:
            clauses.append(_items.c.owner_id == where_owner)
        result = await self._run("move batch item", update(_items).where(*clauses).values(**values))
        return bool(result.rowcount == 1)

    async def finish_many(self, batch_id: str, rows: Sequence[tuple[str, dict[str, Any]]]) -> set[str]:
        """Store many outcomes of batch ``batch_id`` in one transaction: each ``(item_id, values)`` is set only
        while that item is ``in_batch`` under this batch. Returns the ids that moved."""
        moved: set[str] = set()
        async with self._write("store batch results") as connection:
            for item_id, values in rows:
                result = await connection.execute(
                    update(_items)
                    .where(
                        _items.c.id == item_id, _items.c.state == "in_batch", _items.c.batch_id == batch_id
                    )
                    .values(**values)
                    .returning(_items.c.id)
                )
                if result.first() is not None:
                    moved.add(item_id)
        return moved

    async def mark_delivered(self, item_ids: Sequence[str], *, now: datetime) -> None:
        """Mark finished items ``delivered`` (one statement)."""
        if not item_ids:
            return
        await self._run(
            "mark items delivered",
            update(_items)
            .where(_items.c.id.in_(item_ids), _items.c.state.in_(FINISHED))
            .values(state="delivered", delivered_at=now, updated_at=now),
        )

    async def items_in(
        self,
        fp: str,
        states: Sequence[str],
        *,
        batch_id: str | None = None,
        deadline_before: datetime | None = None,
    ) -> list[StoredItem]:
        """Items of credential ``fp`` in ``states`` (of one batch, or due before a time)."""
        clauses = [_items.c.credential_fp == fp, _items.c.state.in_(states)]
        if batch_id is not None:
            clauses.append(_items.c.batch_id == batch_id)
        if deadline_before is not None:
            clauses.append(_items.c.deadline < deadline_before)
        return await self.items(*clauses)

    async def finished_for(self, owner_id: str, *, since: datetime | None = None) -> list[StoredItem]:
        """Items of ``owner_id`` with a stored outcome not yet delivered (changed at or after ``since``)."""
        clauses = [_items.c.owner_id == owner_id, _items.c.state.in_(FINISHED)]
        if since is not None:
            clauses.append(_items.c.updated_at >= since)
        return await self.items(*clauses)

    async def orphans(
        self, live: Sequence[str], workers: Sequence[str], *, limit: int = 100
    ) -> list[StoredItem]:
        """Finished, undelivered items whose owner is not among ``live`` and whose worker is in ``workers``."""
        if not workers:
            return []
        return await self.items(
            _items.c.state.in_(FINISHED),
            _items.c.owner_id.not_in(live),
            _items.c.worker.in_(workers),
            limit=limit,
        )

    async def expire_unheld(
        self, held: Sequence[str], *, older_than: datetime, now: datetime
    ) -> list[tuple[str, str, datetime]]:
        """Fail queued items enqueued before ``older_than`` whose credential no live process holds; returns
        (item id, credential_fp, enqueued_at) of each."""
        clauses = [
            _items.c.state == "queued",
            _items.c.enqueued_at < older_than,
            _items.c.credential_fp.not_in(held),
        ]
        async with self._write("expire unheld items") as connection:
            rows = (
                await connection.execute(
                    select(_items.c.id, _items.c.credential_fp, _items.c.enqueued_at).where(*clauses)
                )
            ).all()
            expired: list[tuple[str, str, datetime]] = []
            for item_id, fp, enqueued_at in rows:
                waited = (now - enqueued_at).total_seconds()
                moved = await connection.execute(
                    update(_items)
                    .where(_items.c.id == item_id, _items.c.state == "queued")
                    .values(
                        state="failed",
                        error={"kind": "credential_unavailable", "credential_fp": fp, "waited": waited},
                        finished_at=now,
                        updated_at=now,
                    )
                )
                if moved.rowcount == 1:
                    expired.append((item_id, fp, enqueued_at))
            return expired

    async def counts(self) -> dict[tuple[str, str], int]:
        """Items by (state, credential_fp)."""
        result = await self._run(
            "count batch items",
            select(_items.c.state, _items.c.credential_fp, func.count()).group_by(
                _items.c.state, _items.c.credential_fp
            ),
            write=False,
        )
        return {(state, fp): int(n) for state, fp, n in result}

    async def oldest_queued(self) -> dict[str, datetime]:
        """The oldest ``enqueued_at`` of queued items, by credential fingerprint."""
        result = await self._run(
            "oldest queued",
            select(_items.c.credential_fp, func.min(_items.c.enqueued_at))
            .where(_items.c.state == "queued")
            .group_by(_items.c.credential_fp),
            write=False,
        )
        return {fp: oldest for fp, oldest in result}

    async def connection(self) -> AsyncConnection:
        """A dedicated connection (the caller closes it): PostgreSQL advisory locks live on it."""
        return await self.engine.connect()
