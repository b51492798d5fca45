"""A read-only snapshot of the durable pool: what ``lore queue`` shows (BATCH.md 6).

:func:`pool_status` reads the four ``lore_batch_*`` tables through a :class:`~lore_batch.pool.store.PoolStore`
and returns frozen records: items by credential fingerprint and state (with whether a live process holds the
credential, so items waiting for an unregistered credential are visible), the unfinished batches plus the
newest finished ones, the processes with their liveness, and the SQLite leases. Nothing here writes, migrates
or sees a secret: the tables hold credential *fingerprints* (16 hex) only, and no request, answer or error
text is read. Each table is read in its own transaction, so the snapshot is not atomic across tables.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from sqlalchemy import Table, select
from sqlalchemy.engine import RowMapping

from lore_core.store.models import BATCH_STATUSES, ITEM_STATES, BatchRecord

from .records import ACTIVE
from .store import PoolStore, ProcessRow

__all__ = [
    "BATCH_STATUSES",
    "FINISHED_BATCHES_SHOWN",
    "ITEM_STATES",
    "UNFINISHED_BATCH_STATUSES",
    "BatchStatus",
    "CredentialStatus",
    "LeaseStatus",
    "PoolStatus",
    "ProcessStatus",
    "pool_status",
    "rfc3339",
]

UNFINISHED_BATCH_STATUSES: Final = ("creating", "in_progress", "canceling")
FINISHED_BATCHES_SHOWN: Final = 20
"""How many finished batches (newest first) a snapshot carries besides every unfinished one."""

ProcessState = Literal["live", "stale", "stopped"]

_batches = typing.cast(Table, BatchRecord.__table__)


def rfc3339(value: datetime | None) -> str | None:
    """``value`` as an RFC 3339 UTC string (``...Z``), or ``None``.

    Raises:
        ValueError: ``value`` is naive.

    >>> rfc3339(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    '2026-01-02T03:04:05Z'
    """
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime: expected an aware UTC timestamp")
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _age(now: datetime, then: datetime) -> float:
    return round((now - then).total_seconds(), 3)


@dataclass(frozen=True, slots=True, kw_only=True)
class CredentialStatus:
    """The items of one credential fingerprint.

    ``counts`` has every item state (zeros included). ``live_holders`` is how many live processes hold the
    credential; ``held`` is ``live_holders > 0``. ``waiting_for_credential`` is true when no live process holds
    it while it has items still to work on (queued, submitting, in a batch or rescued): they wait, visibly, and
    queued ones fail after the pool's ``credential_wait``.
    """

    credential_fp: str
    counts: dict[str, int]
    oldest_queued_at: datetime | None
    oldest_queued_age: float | None
    live_holders: int

    @property
    def held(self) -> bool:
        """Whether a live process holds this credential."""
        return self.live_holders > 0

    @property
    def active(self) -> int:
        """Items a leader still works on (queued, submitting, in_batch, rescued)."""
        return sum(self.counts[state] for state in ACTIVE)

    @property
    def total(self) -> int:
        """Every item row of this credential."""
        return sum(self.counts.values())

    @property
    def waiting_for_credential(self) -> bool:
        """No live process holds the credential and some of its items are still to be worked on."""
        return not self.held and self.active > 0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "credential_fp": self.credential_fp,
            "counts": dict(self.counts),
            "active": self.active,
            "total": self.total,
            "oldest_queued_at": rfc3339(self.oldest_queued_at),
            "oldest_queued_age_s": self.oldest_queued_age,
            "live_holders": self.live_holders,
            "held": self.held,
            "waiting_for_credential": self.waiting_for_credential,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchStatus:
    """One batch row. ``batch_id`` is the provider's id (``None`` while ``creating``); ``next_poll_in`` is
    seconds until the next poll is due (negative: overdue; ``None``: none scheduled)."""

    submission_id: str
    batch_id: str | None
    provider: str
    credential_fp: str
    status: str
    request_count: int
    polls: int
    created_at: datetime
    age: float
    ended_at: datetime | None
    next_poll_at: datetime | None
    next_poll_in: float | None

    @property
    def finished(self) -> bool:
        """Whether the batch is past ``creating``, ``in_progress`` and ``canceling``."""
        return self.status not in UNFINISHED_BATCH_STATUSES

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "submission_id": self.submission_id,
            "batch_id": self.batch_id,
            "provider": self.provider,
            "credential_fp": self.credential_fp,
            "status": self.status,
            "finished": self.finished,
            "request_count": self.request_count,
            "polls": self.polls,
            "created_at": rfc3339(self.created_at),
            "age_s": self.age,
            "ended_at": rfc3339(self.ended_at),
            "next_poll_at": rfc3339(self.next_poll_at),
            "next_poll_in_s": self.next_poll_in,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessStatus:
    """One pool process: ``live`` (not stopped, heartbeat within ``stale_after``), ``stale`` or ``stopped``."""

    id: str
    host: str
    pid: int
    state: ProcessState
    credentials_held: int
    workers: tuple[str, ...]
    heartbeat_at: datetime
    heartbeat_age: float
    stopped_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "id": self.id,
            "host": self.host,
            "pid": self.pid,
            "state": self.state,
            "credentials_held": self.credentials_held,
            "workers": list(self.workers),
            "heartbeat_at": rfc3339(self.heartbeat_at),
            "heartbeat_age_s": self.heartbeat_age,
            "stopped_at": rfc3339(self.stopped_at),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaseStatus:
    """One SQLite leadership lease (key ``fp:<fingerprint>``); PostgreSQL leads with advisory locks instead,
    which leave no rows. ``expires_in`` is negative once the lease has expired."""

    key: str
    holder: str
    expires_at: datetime
    expires_in: float

    @property
    def expired(self) -> bool:
        """Whether the lease is past its expiry (free for any process to take)."""
        return self.expires_in < 0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "key": self.key,
            "holder": self.holder,
            "expires_at": rfc3339(self.expires_at),
            "expires_in_s": self.expires_in,
            "expired": self.expired,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolStatus:
    """A snapshot of the pool at ``now``; see the module docstring and :func:`pool_status`."""

    now: datetime
    stale_after: float
    credentials: tuple[CredentialStatus, ...]
    batches: tuple[BatchStatus, ...]
    processes: tuple[ProcessStatus, ...]
    leases: tuple[LeaseStatus, ...]

    @property
    def empty(self) -> bool:
        """No item and no batch rows at all (processes and leases may still exist)."""
        return not any(c.total for c in self.credentials) and not self.batches

    def totals(self) -> dict[str, int]:
        """Items by state over every credential (every state, zeros included)."""
        return {state: sum(c.counts[state] for c in self.credentials) for state in ITEM_STATES}

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (datetimes as RFC 3339 UTC strings, durations in seconds).

        Example::

            json.dumps((await pool_status(store, now=datetime.now(UTC))).to_json())
        """
        return {
            "now": rfc3339(self.now),
            "stale_after_s": self.stale_after,
            "empty": self.empty,
            "totals": self.totals(),
            "credentials": [c.to_json() for c in self.credentials],
            "batches": [b.to_json() for b in self.batches],
            "processes": [p.to_json() for p in self.processes],
            "leases": [lease.to_json() for lease in self.leases],
        }


def _process_state(row: ProcessRow, cutoff: datetime) -> ProcessState:
    if row.stopped_at is not None:
        return "stopped"
    return "live" if row.heartbeat_at >= cutoff else "stale"


def _batch(row: RowMapping, now: datetime) -> BatchStatus:
    next_poll_at: datetime | None = row["next_poll_at"]
    return BatchStatus(
        submission_id=row["submission_id"],
        batch_id=row["id"],
        provider=row["provider"],
        credential_fp=row["credential_fp"],
        status=row["status"],
        request_count=row["request_count"],
        polls=row["polls"],
        created_at=row["created_at"],
        age=_age(now, row["created_at"]),
        ended_at=row["ended_at"],
        next_poll_at=next_poll_at,
        next_poll_in=None if next_poll_at is None else -_age(now, next_poll_at),
    )


async def _read_batches(store: PoolStore, *, finished_limit: int) -> list[RowMapping]:
    """Every unfinished batch row (oldest first), then the ``finished_limit`` newest finished ones."""
    columns = [
        _batches.c[name]
        for name in (
            "submission_id",
            "id",
            "provider",
            "credential_fp",
            "status",
            "request_count",
            "polls",
            "created_at",
            "ended_at",
            "next_poll_at",
        )
    ]
    unfinished = _batches.c.status.in_(UNFINISHED_BATCH_STATUSES)
    async with store._read("list pool batches for status") as connection:
        open_rows = await connection.execute(
            select(*columns).where(unfinished).order_by(_batches.c.created_at, _batches.c.submission_id)
        )
        rows = list(open_rows.mappings())
        done_rows = await connection.execute(
            select(*columns)
            .where(~unfinished)
            .order_by(_batches.c.created_at.desc(), _batches.c.submission_id)
            .limit(finished_limit)
        )
        rows.extend(done_rows.mappings())
    return rows


async def pool_status(store: PoolStore, *, now: datetime, stale_after: float = 60.0) -> PoolStatus:
    """Read a snapshot of the durable pool as of ``now`` (an aware datetime; ages are measured from it).

    A process is live when it has not stopped and its heartbeat is at most ``stale_after`` seconds before
    ``now`` (the pool's own rule, ``PoolSettings.stale_after``, default 60 s). Credentials are those with item
    rows or unfinished batches, sorted by fingerprint; processes come newest heartbeat first.

    Raises:
        ValueError: ``now`` is naive or ``stale_after`` is not positive.
        StoreError: the database failed (e.g. the pool tables do not exist: the schema is not migrated).
        ClosedError: the store is closed.

    Example::

        async with await PoolStore.open(url, auto_migrate=False) as store:
            status = await pool_status(store, now=datetime.now(UTC))
        waiting = [c.credential_fp for c in status.credentials if c.waiting_for_credential]
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("naive datetime: pass an aware UTC `now`")
    if not stale_after > 0:
        raise ValueError("stale_after must be positive")
    now = now.astimezone(UTC)
    counts = await store.counts()
    oldest = await store.oldest_queued()
    batch_rows = await _read_batches(store, finished_limit=FINISHED_BATCHES_SHOWN)
    process_rows = await store.processes()
    lease_rows = await store.leases()

    cutoff = now - timedelta(seconds=stale_after)
    processes = tuple(
        ProcessStatus(
            id=row.id,
            host=row.host,
            pid=row.pid,
            state=_process_state(row, cutoff),
            credentials_held=len(row.credential_fps),
            workers=row.workers,
            heartbeat_at=row.heartbeat_at,
            heartbeat_age=_age(now, row.heartbeat_at),
            stopped_at=row.stopped_at,
        )
        for row in process_rows
    )
    holders: dict[str, int] = {}
    for row, process in zip(process_rows, processes, strict=True):
        if process.state == "live":
            for fp in set(row.credential_fps):
                holders[fp] = holders.get(fp, 0) + 1

    batches = tuple(_batch(row, now) for row in batch_rows)
    fps = {fp for _state, fp in counts} | {b.credential_fp for b in batches if not b.finished}
    credentials = tuple(
        CredentialStatus(
            credential_fp=fp,
            counts={state: counts.get((state, fp), 0) for state in ITEM_STATES},
            oldest_queued_at=oldest.get(fp),
            oldest_queued_age=None if fp not in oldest else _age(now, oldest[fp]),
            live_holders=holders.get(fp, 0),
        )
        for fp in sorted(fps)
    )
    leases = tuple(
        LeaseStatus(key=key, holder=holder, expires_at=expires_at, expires_in=-_age(now, expires_at))
        for key, holder, expires_at in sorted(lease_rows)
    )
    return PoolStatus(
        now=now,
        stale_after=stale_after,
        credentials=credentials,
        batches=batches,
        processes=processes,
        leases=leases,
    )
