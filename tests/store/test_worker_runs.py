"""``worker_runs``: recording, ordering, filtering, counting and pruning, on every backend."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import text

from lore_core.errors import ConfigError, SessionNotFoundError, StoreError
from lore_core.store import ERROR_DETAIL_LIMIT, SqlSessionStore, WorkerRunRecord

from .builders import NOW, SID, stored_session


def run(minute: int, *, session_id: str | None = SID, **kw: object) -> WorkerRunRecord:
    """A run started ``minute`` minutes after NOW, lasting two seconds."""
    fields: dict[str, object] = {
        "id": str(uuid.uuid4()),
        "session_id": session_id,
        "project": "p1",
        "worker": "distill",
        "status": "ok",
        "started_at": NOW + timedelta(minutes=minute),
        "finished_at": NOW + timedelta(minutes=minute, seconds=2),
    }
    fields.update(kw)
    return WorkerRunRecord(**fields)  # type: ignore[arg-type]


async def test_runs_round_trip_every_field(store: SqlSessionStore) -> None:
    await stored_session(store)
    failed = run(
        0,
        worker="meta-distill",
        urgent=True,
        status="error",
        route="fallback",
        error_type="LLMUnavailableError",
        error_detail="status=529 overloaded_error request_id=req_01",
        input_tokens=12_345,
        output_tokens=678,
    )
    consolidated = run(1, session_id=None, worker="consolidate", route="batch")
    await store.record_worker_run(failed)
    await store.record_worker_run(consolidated)
    await store.record_worker_run(failed)  # a retried call stores the run once

    assert await store.list_worker_runs() == [consolidated, failed]
    assert await store.count_worker_runs() == 2


async def test_defaults_and_long_details_are_cut(store: SqlSessionStore) -> None:
    await store.record_worker_run(run(0, session_id=None, project=None, error_detail="x" * 2000))

    [stored] = await store.list_worker_runs()
    assert (stored.urgent, stored.route, stored.input_tokens, stored.output_tokens) == (False, None, 0, 0)
    assert stored.error_detail == "x" * ERROR_DETAIL_LIMIT


async def test_list_is_newest_first_filtered_and_limited(store: SqlSessionStore) -> None:
    await stored_session(store)
    await stored_session(store, session_id="other")
    runs = [
        run(0),
        run(3, status="rejected", error_type="no_observations_block"),
        run(1, worker="curate"),
        run(2, session_id="other", project="p2", status="stale", error_type="stale"),
        run(4, session_id=None, worker="consolidate", project="p2"),
    ]
    for r in runs:
        await store.record_worker_run(r)

    def minutes(found: list[WorkerRunRecord]) -> list[int]:
        return [int((r.started_at - NOW).total_seconds() // 60) for r in found]

    assert minutes(await store.list_worker_runs()) == [4, 3, 2, 1, 0]
    assert minutes(await store.list_worker_runs(limit=2)) == [4, 3]
    assert await store.list_worker_runs(limit=0) == []
    assert minutes(await store.list_worker_runs(session_id=SID)) == [3, 1, 0]
    assert minutes(await store.list_worker_runs(project="p2")) == [4, 2]
    assert minutes(await store.list_worker_runs(status="stale")) == [2]
    assert minutes(await store.list_worker_runs(worker="curate")) == [1]
    assert minutes(await store.list_worker_runs(session_id=SID, status="ok", worker="distill")) == [0]
    assert await store.list_worker_runs(session_id="nope") == []
    with pytest.raises(ConfigError):
        await store.list_worker_runs(limit=-1)


async def test_count_filters(store: SqlSessionStore) -> None:
    await stored_session(store)
    for r in [
        run(0),
        run(1, status="error"),
        run(2, worker="curate", status="error"),
        run(3, session_id=None),
    ]:
        await store.record_worker_run(r)

    assert await store.count_worker_runs() == 4
    assert await store.count_worker_runs(session_id=SID) == 3
    assert await store.count_worker_runs(status="error") == 2
    assert await store.count_worker_runs(worker="distill") == 3
    assert await store.count_worker_runs(session_id=SID, worker="distill", status="error") == 1
    assert await store.count_worker_runs(project="p9") == 0


async def test_equal_start_times_order_by_id(store: SqlSessionStore) -> None:
    await stored_session(store)
    ids = sorted(str(uuid.uuid4()) for _ in range(3))
    for run_id in ids:
        await store.record_worker_run(run(0, id=run_id))

    assert [r.id for r in await store.list_worker_runs()] == ids[::-1]


async def test_prune_keeps_the_newest_per_session_and_per_project(store: SqlSessionStore) -> None:
    await stored_session(store)
    await stored_session(store, session_id="other")
    for minute in range(5):
        await store.record_worker_run(run(minute))
    for minute in (10, 0, 5):
        await store.record_worker_run(run(minute, session_id="other"))
    for minute in range(4):
        await store.record_worker_run(run(minute, session_id=None, project="p1", worker="consolidate"))
        await store.record_worker_run(run(minute, session_id=None, project=None, worker="digest"))

    assert await store.prune_worker_runs(keep_per_session=2) == 3 + 1 + 2 + 2

    def starts(found: list[WorkerRunRecord]) -> list[int]:
        return [int((r.started_at - NOW).total_seconds() // 60) for r in found]

    assert starts(await store.list_worker_runs(session_id=SID)) == [4, 3]
    assert starts(await store.list_worker_runs(session_id="other")) == [10, 5]
    assert starts(await store.list_worker_runs(worker="consolidate")) == [3, 2]
    assert starts(await store.list_worker_runs(worker="digest")) == [3, 2]
    assert await store.prune_worker_runs(keep_per_session=2) == 0
    assert await store.prune_worker_runs(keep_per_session=0) == 8
    assert await store.count_worker_runs() == 0
    with pytest.raises(ConfigError):
        await store.prune_worker_runs(keep_per_session=-1)


async def test_refused_runs_store_nothing(store: SqlSessionStore) -> None:
    with pytest.raises(SessionNotFoundError):
        await store.record_worker_run(run(0, session_id="ghost"))
    with pytest.raises(StoreError) as caught:  # the status CHECK holds in the database
        await store.record_worker_run(run(0, session_id=None, status="exploded"))
    assert not caught.value.retryable
    assert await store.count_worker_runs() == 0


async def test_runs_go_with_their_session(store: SqlSessionStore) -> None:
    await stored_session(store)
    await store.record_worker_run(run(0))
    await store.record_worker_run(run(1, session_id=None))

    async with store.engine.begin() as connection:
        await connection.execute(text("DELETE FROM sessions WHERE session_id = :sid"), {"sid": SID})

    assert [r.session_id for r in await store.list_worker_runs()] == [None]
