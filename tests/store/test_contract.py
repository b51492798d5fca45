"""The SessionStore contract, run on every backend (``store`` is parametrized over SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import dataclasses
import traceback
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from lore_core.errors import ClosedError, ConfigError, SessionNotFoundError, StoreError
from lore_core.store import KnowledgePin, RawPin, SessionStateRecord, SqlSessionStore

from .builders import NOW, SID, distillation, entry, message, stored_session

# -- sessions ----------------------------------------------------------------------------------------------


async def test_ensure_session_creates_once_and_follows_the_model(store: SqlSessionStore) -> None:
    created = await store.ensure_session(SID, "proj", "model-a", NOW)
    again = await store.ensure_session(SID, "other-project", "model-b", NOW + timedelta(hours=1))

    assert (created.project, created.last_model, created.created_at) == ("proj", "model-a", NOW)
    assert (again.project, again.last_model, again.created_at) == ("proj", "model-b", NOW)
    assert await store.get_session(SID) == again
    assert await store.load_state(SID) == SessionStateRecord(session_id=SID)


async def test_unknown_session_reads_none_and_writes_raise(store: SqlSessionStore) -> None:
    assert await store.get_session("nope") is None
    assert await store.load_state("nope") is None
    with pytest.raises(SessionNotFoundError):
        await store.save_state("nope", last_layer=1)
    with pytest.raises(SessionNotFoundError):
        await store.try_take_lease("nope", "w1", NOW, NOW)
    with pytest.raises(SessionNotFoundError):
        await store.insert_messages([message(0, session_id="nope")])


# -- messages ----------------------------------------------------------------------------------------------


async def test_insert_messages_is_idempotent(store: SqlSessionStore) -> None:
    records = await stored_session(store, 3)
    extra = message(3)

    assert await store.insert_messages([*records, extra, extra]) == 1
    assert await store.insert_messages([*records, extra]) == 0
    assert [m.id for m in await store.list_messages(SID)] == [m.id for m in [*records, extra]]


async def test_same_message_id_in_two_sessions_is_stored_for_each(store: SqlSessionStore) -> None:
    await stored_session(store, 1, session_id="a")
    await stored_session(store, 1, session_id="b")

    assert await store.message_ids("a") == await store.message_ids("b") == {message(0).id}


async def test_insert_into_unknown_session_stores_nothing(store: SqlSessionStore) -> None:
    await stored_session(store)

    with pytest.raises(SessionNotFoundError):
        await store.insert_messages([message(0), message(1, session_id="ghost")])
    assert await store.message_ids(SID) == set()


async def test_messages_round_trip_every_field(store: SqlSessionStore) -> None:
    await stored_session(store)
    call = message(0, role="assistant", kind="assistant", meta={"tools": ["read"], "media": [], "n": 1.5})
    result = message(1, unit_id=call.id, kind="tool_results", text="[result:read] a\n\x1fb é")
    await store.insert_messages([call, result])

    assert await store.list_messages(SID) == [call, result]


async def test_list_messages_orders_by_position_and_filters(store: SqlSessionStore) -> None:
    await stored_session(store)
    shuffled = [message(p) for p in (4, 0, 3, 1, 2)]
    await store.insert_messages(shuffled)
    rewrite = message(2, text="rewritten", created_at=NOW + timedelta(minutes=5))
    await store.insert_messages([rewrite])

    ordered = await store.list_messages(SID)
    assert [(m.position, m.text) for m in ordered] == [
        (0, "message 0"),
        (1, "message 1"),
        (2, "message 2"),
        (2, "rewritten"),
        (3, "message 3"),
        (4, "message 4"),
    ]
    assert [m.position for m in await store.list_messages(SID, after_position=2)] == [3, 4]
    assert [m.position for m in await store.list_messages(SID, limit=2)] == [0, 1]


async def test_content_hash_lookup_is_scoped_by_session_and_role(store: SqlSessionStore) -> None:
    [first] = await stored_session(store, 1)

    assert await store.has_content_hash(SID, "user", first.content_hash)
    assert not await store.has_content_hash(SID, "assistant", first.content_hash)
    assert not await store.has_content_hash("other", "user", first.content_hash)


async def test_undistilled_accounting(store: SqlSessionStore) -> None:
    assert await store.undistilled_tokens(SID) == 0
    records = await stored_session(store, 4)
    assert await store.undistilled_tokens(SID) == 40

    await store.insert_distillation_and_mark(distillation(records[:2]))

    assert await store.undistilled_tokens(SID) == 20
    undistilled = await store.list_messages(SID, undistilled_only=True)
    assert [m.position for m in undistilled] == [2, 3]
    assert all(m.distilled for m in await store.list_messages(SID) if m.position < 2)


# -- distillations -----------------------------------------------------------------------------------------


async def test_distill_inserts_marks_and_numbers_rows(store: SqlSessionStore) -> None:
    records = await stored_session(store, 4)

    first = await store.insert_distillation_and_mark(distillation(records[:2]))
    second = await store.insert_distillation_and_mark(distillation(records[2:], kind="digest", route=None))

    assert first is not None
    assert second is not None
    assert (first.seq, second.seq) == (1, 2)
    assert await store.list_distillations(SID) == [first, second]
    assert await store.undistilled_tokens(SID) == 0


@pytest.mark.parametrize("case", ["already_distilled", "missing_source"])
async def test_stale_distill_writes_nothing(store: SqlSessionStore, case: str) -> None:
    records = await stored_session(store, 3)
    assert await store.insert_distillation_and_mark(distillation(records[:1]))
    sources = records[:2] if case == "already_distilled" else [records[1], message(99)]

    assert await store.insert_distillation_and_mark(distillation(sources)) is None

    assert len(await store.list_distillations(SID)) == 1
    assert [m.position for m in await store.list_messages(SID, undistilled_only=True)] == [1, 2]


async def test_concurrent_distills_of_the_same_sources_one_wins(migrated_url: str) -> None:
    async with SqlSessionStore(migrated_url) as a, SqlSessionStore(migrated_url) as b:
        records = await stored_session(a, 3)
        results = await asyncio.gather(
            a.insert_distillation_and_mark(distillation(records)),
            b.insert_distillation_and_mark(distillation(records)),
        )

        assert sum(result is not None for result in results) == 1
        assert len(await a.list_distillations(SID)) == 1


async def test_distill_rejects_bad_source_lists(store: SqlSessionStore) -> None:
    records = await stored_session(store, 2)
    row = distillation(records)

    with pytest.raises(ConfigError):
        await store.insert_distillation_and_mark(row, [records[0].id])
    with pytest.raises(ConfigError):
        await store.insert_distillation_and_mark(dataclasses.replace(row, source_ids=()))
    assert await store.insert_distillation_and_mark(row, [records[1].id, records[0].id]) is not None


async def test_meta_insert_and_archive_is_atomic(store: SqlSessionStore) -> None:
    records = await stored_session(store, 6)
    rows = [await store.insert_distillation_and_mark(distillation(records[i : i + 2])) for i in (0, 2, 4)]
    ids = [row.id for row in rows if row is not None]
    meta = distillation(records[:4], generation=1, kind="reflector")

    stored = await store.insert_meta_and_archive(meta, ids[:2])
    assert stored is not None
    assert stored.seq == 4
    live = await store.list_distillations(SID)
    assert [row.id for row in live] == [ids[2], meta.id]

    # A second meta built from the same (now archived) inputs is stale: nothing is written.
    assert (
        await store.insert_meta_and_archive(
            distillation(records[:4], generation=2, kind="reflector"), ids[:2]
        )
        is None
    )
    assert [row.id for row in await store.list_distillations(SID, include_archived=True)] == [*ids, meta.id]
    # Unknown ids are stale too, and do not archive the valid ones listed with them.
    assert await store.insert_meta_and_archive(meta, [ids[2], str(uuid.uuid4())]) is None
    assert [row.id for row in await store.list_distillations(SID)] == [ids[2], meta.id]


async def test_list_and_archive_distillations(store: SqlSessionStore) -> None:
    records = await stored_session(store, 4)
    gen0 = await store.insert_distillation_and_mark(distillation(records[:2]))
    gen1 = await store.insert_distillation_and_mark(distillation(records[2:], generation=1, kind="reflector"))
    assert gen0 is not None
    assert gen1 is not None

    assert [r.id for r in await store.list_distillations(SID, generation=0)] == [gen0.id]
    assert await store.archive_distillations([gen0.id, gen0.id]) == 1
    assert await store.archive_distillations([gen0.id]) == 0
    assert [r.id for r in await store.list_distillations(SID)] == [gen1.id]
    archived = await store.list_distillations(SID, include_archived=True)
    assert [(r.id, r.archived) for r in archived] == [(gen0.id, True), (gen1.id, False)]


async def test_retention_and_revision(store: SqlSessionStore) -> None:
    records = await stored_session(store, 2)
    row = await store.insert_distillation_and_mark(distillation(records))
    assert row is not None

    assert await store.record_retention(row.id, 0.5)
    assert await store.revise_distillation(
        row.id, observations="more", token_count=20, retention_score=0.9, expected_revision=0
    )
    assert not await store.revise_distillation(
        row.id, observations="again", token_count=30, retention_score=1.0, expected_revision=0
    )
    assert not await store.record_retention(str(uuid.uuid4()), 0.1)
    [revised] = await store.list_distillations(SID)
    assert (revised.observations, revised.revision, revised.retention_score) == ("more", 1, 0.9)
    assert revised.retention_initial == 0.5


async def test_crash_repair_resets_unreferenced_distilled_messages(store: SqlSessionStore) -> None:
    records = await stored_session(store, 4)
    await store.insert_distillation_and_mark(distillation(records[:2]))
    async with store.engine.begin() as connection:  # a crash between the mark and the insert
        await connection.execute(
            text("UPDATE messages SET distilled = :yes WHERE id IN (:a, :b)"),
            {"yes": True, "a": records[2].id, "b": records[3].id},
        )
    assert await store.undistilled_tokens(SID) == 0

    assert await store.reset_orphan_distilled(SID) == 2
    assert await store.reset_orphan_distilled(SID) == 0
    assert [m.position for m in await store.list_messages(SID, undistilled_only=True)] == [2, 3]


# -- knowledge and kv --------------------------------------------------------------------------------------


async def test_knowledge_below_min_confidence_is_invisible(store: SqlSessionStore) -> None:
    for title, confidence in [("floor", 0.2), ("above", 0.21), ("zero", 0.0), ("sure", 1.0)]:
        await store.upsert_knowledge(entry(title, confidence=confidence))

    assert [e.title for e in await store.list_knowledge("p1")] == ["sure", "above"]
    assert [e.title for e in await store.list_knowledge("p1", min_confidence=0.5)] == ["sure"]


async def test_knowledge_project_and_global_scopes(store: SqlSessionStore) -> None:
    await store.upsert_knowledge(entry("mine", project="p1", confidence=0.5))
    await store.upsert_knowledge(entry("theirs", project="p2"))
    await store.upsert_knowledge(entry("everyone", project=None, confidence=0.7))

    assert [e.title for e in await store.list_knowledge("p1")] == ["everyone", "mine"]
    assert [e.title for e in await store.list_knowledge("p1", include_global=False)] == ["mine"]
    assert [e.title for e in await store.list_knowledge(None)] == ["everyone"]


async def test_knowledge_upsert_overwrites_and_delete(store: SqlSessionStore) -> None:
    original = entry("title", source_session=SID)
    await store.upsert_knowledge(original)
    later = NOW + timedelta(days=1)
    await store.upsert_knowledge(
        dataclasses.replace(original, content="new", confidence=0.4, created_at=later, updated_at=later)
    )

    [stored] = await store.list_knowledge("p1")
    assert stored == dataclasses.replace(original, content="new", confidence=0.4, updated_at=later)
    assert await store.delete_knowledge(original.id)
    assert not await store.delete_knowledge(original.id)
    assert await store.list_knowledge("p1") == []


async def test_knowledge_content_is_capped_at_1200_chars(store: SqlSessionStore) -> None:
    await store.upsert_knowledge(entry("fits", content="x" * 1200))
    with pytest.raises(StoreError):
        await store.upsert_knowledge(entry("too long", content="x" * 1201))

    assert [e.title for e in await store.list_knowledge("p1")] == ["fits"]


async def test_kv_round_trips_json(store: SqlSessionStore) -> None:
    value = {"watermark": "2026-03-04", "counts": [1, 2.5, None, True], "nested": {"é": "ü"}}
    assert await store.kv_get("prune:p1") is None

    await store.kv_set("prune:p1", value, NOW)
    await store.kv_set("flag", None, NOW)
    none = await store.kv_get("flag")
    assert none is not None
    assert none.value is None
    await store.kv_set("flag", [], NOW + timedelta(seconds=1))

    stored = await store.kv_get("prune:p1")
    assert stored is not None
    assert (stored.value, stored.updated_at) == (value, NOW)
    flag = await store.kv_get("flag")
    assert flag is not None
    assert (flag.value, flag.updated_at) == ([], NOW + timedelta(seconds=1))


# -- session state and lease -------------------------------------------------------------------------------


async def test_state_updates_touch_only_the_given_columns(store: SqlSessionStore) -> None:
    await stored_session(store)
    pin = RawPin(raw_count=12, total_count=40, budget=30_000)
    knowledge_pin = KnowledgePin(text="## Knowledge\n- a", tokens=7)

    # The transform's writer and the curator's writer each own their columns.
    await store.save_state(SID, last_layer=2, raw_pin=pin, calibration={"model-a": 1500}, last_turn_at=NOW)
    await store.save_state(SID, turns_since_curation=0, last_curated_at=NOW, knowledge_pin=knowledge_pin)
    await store.save_state(SID, last_layer=3)
    await store.save_state(SID)

    assert await store.load_state(SID) == SessionStateRecord(
        session_id=SID,
        last_layer=3,
        raw_pin=pin,
        calibration={"model-a": 1500},
        last_turn_at=NOW,
        last_curated_at=NOW,
        knowledge_pin=knowledge_pin,
    )
    await store.save_state(SID, raw_pin=None, knowledge_pin=None, last_turn_at=None)
    state = await store.load_state(SID)
    assert state is not None
    assert (state.raw_pin, state.knowledge_pin, state.last_turn_at) == (
        None,
        None,
        None,
    )
    assert state.last_layer == 3


async def test_lease_is_compare_and_set(store: SqlSessionStore) -> None:
    await stored_session(store)
    until = NOW + timedelta(seconds=600)

    assert await store.try_take_lease(SID, "w1", until, NOW)
    assert not await store.try_take_lease(SID, "w2", until, NOW + timedelta(seconds=1))
    assert await store.try_take_lease(SID, "w1", until + timedelta(seconds=60), NOW)  # renewal
    assert not await store.release_lease(SID, "w2")
    assert await store.try_take_lease(
        SID, "w2", until + timedelta(hours=1), until + timedelta(seconds=60)
    )  # expired
    state = await store.load_state(SID)
    assert state is not None
    assert state.lease_owner == "w2"
    assert await store.release_lease(SID, "w2")
    assert await store.try_take_lease(SID, "w1", until, NOW)


async def test_lease_contention_between_two_stores(migrated_url: str) -> None:
    async with SqlSessionStore(migrated_url) as a, SqlSessionStore(migrated_url) as b:
        await stored_session(a)
        until = NOW + timedelta(seconds=600)
        for round_ in range(5):
            won = await asyncio.gather(
                a.try_take_lease(SID, f"a{round_}", until, NOW),
                b.try_take_lease(SID, f"b{round_}", until, NOW),
            )
            assert sorted(won) == [False, True]
            state = await a.load_state(SID)
            assert state is not None
            assert state.lease_owner == (f"a{round_}" if won[0] else f"b{round_}")
            assert await a.release_lease(SID, state.lease_owner)


# -- time, errors, lifecycle -------------------------------------------------------------------------------


async def test_datetimes_round_trip_as_aware_utc(store: SqlSessionStore) -> None:
    tokyo = timezone(timedelta(hours=9))
    local = datetime(2026, 3, 4, 14, 6, 7, 891011, tzinfo=tokyo)
    created = await store.ensure_session(SID, "default", "m", local)
    await store.save_state(SID, idle_done_at=local)

    assert created.created_at == NOW
    assert created.created_at.tzinfo is UTC
    state = await store.load_state(SID)
    assert state is not None
    assert state.idle_done_at is not None
    assert state.idle_done_at.tzinfo is UTC
    assert state.idle_done_at == NOW


async def test_naive_datetime_is_refused(store: SqlSessionStore) -> None:
    with pytest.raises(StoreError) as caught:
        await store.ensure_session(SID, "default", "m", datetime(2026, 1, 1))
    assert not caught.value.retryable
    assert await store.get_session(SID) is None


async def test_database_errors_are_wrapped_without_values(store: SqlSessionStore) -> None:
    secret = "sk-ant-secret-value-0123456789"
    with pytest.raises(StoreError) as caught:
        await store.upsert_knowledge(entry(secret, confidence=1.5))  # violates the confidence CHECK

    error = caught.value
    assert error.operation == "upsert knowledge"
    assert not error.retryable
    assert error.__cause__ is not None
    assert secret not in "".join(traceback.format_exception(error))
    assert await store.list_knowledge("p1") == []


async def test_deleting_a_session_cascades(store: SqlSessionStore) -> None:
    records = await stored_session(store, 2)
    await store.insert_distillation_and_mark(distillation(records))

    async with store.engine.begin() as connection:
        await connection.execute(text("DELETE FROM sessions WHERE session_id = :sid"), {"sid": SID})

    assert await store.load_state(SID) is None
    assert await store.message_ids(SID) == set()
    assert await store.list_distillations(SID, include_archived=True) == []


async def test_closed_store_refuses_use(migrated_url: str) -> None:
    opened = SqlSessionStore(migrated_url)
    await opened.aclose()
    await opened.aclose()

    with pytest.raises(ClosedError):
        await opened.get_session(SID)
    with pytest.raises(ClosedError):
        _ = opened.engine
