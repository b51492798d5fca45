"""Message blocks and the reads the background workers need, on every backend (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from lore_core.errors import StoreError
from lore_core.store import SqlSessionStore

from .builders import NOW, SID, distillation, entry, message, stored_session

TOOL_UNIT_BLOCKS = (
    {"type": "text", "text": "Lis le fichier « été.md » 🌞", "cache_control": {"type": "ephemeral"}},
    {
        "type": "tool_use",
        "id": "toolu_01",
        "name": "read",
        "input": {"path": "/tmp/é.md", "opts": {"lines": [1, 2, 3], "raw": True, "enc": None, "ratio": 0.5}},
    },
    {"type": "thinking", "thinking": '漢字\n\x1f and "quotes" \\ backslash', "signature": "sig=="},
)


# -- message blocks ----------------------------------------------------------------------------------------


async def test_blocks_round_trip_nested_and_unicode(store: SqlSessionStore) -> None:
    await stored_session(store)
    rich = message(0, role="assistant", kind="assistant", blocks=TOOL_UNIT_BLOCKS)
    result = message(
        1,
        kind="tool_results",
        unit_id=rich.id,
        blocks=(
            {"type": "tool_result", "tool_use_id": "toolu_01", "content": [{"type": "text", "text": ""}]},
        ),
    )
    plain = message(2)
    assert await store.insert_messages([rich, result, plain]) == 3

    stored = await store.list_messages(SID)

    assert stored == [rich, result, plain]
    assert stored[0].blocks == TOOL_UNIT_BLOCKS
    assert isinstance(stored[0].blocks, tuple)
    assert plain.blocks == stored[2].blocks == ()


async def test_reads_can_skip_the_blocks(store: SqlSessionStore) -> None:
    await stored_session(store)
    rich = message(0, blocks=TOOL_UNIT_BLOCKS)
    await store.insert_messages([rich, message(1, blocks=TOOL_UNIT_BLOCKS[:1])])

    light = await store.list_messages(SID, with_blocks=False)
    assert [m.blocks for m in light] == [(), ()]
    assert light[0] == message(0)  # every other field is read
    assert [m.blocks for m in await store.messages_after(SID, NOW - timedelta(1), with_blocks=False)] == [
        (),
        (),
    ]
    assert (await store.messages_after(SID, NOW - timedelta(1)))[0].blocks == TOOL_UNIT_BLOCKS


async def test_a_stored_message_keeps_its_first_blocks(store: SqlSessionStore) -> None:
    await stored_session(store)
    first = message(0, blocks=({"type": "text", "text": "a"},))
    await store.insert_messages([first])

    assert await store.insert_messages([message(0, blocks=({"type": "text", "text": "b"},))]) == 0
    assert [m.blocks for m in await store.list_messages(SID)] == [first.blocks]


# -- message counts and the curator's watermark ------------------------------------------------------------


async def test_count_messages(store: SqlSessionStore) -> None:
    assert await store.count_messages(SID) == 0
    records = await stored_session(store, 5)
    await store.insert_distillation_and_mark(distillation(records[:2]))

    assert await store.count_messages(SID) == 5
    assert await store.count_messages(SID, undistilled_only=True) == 3
    assert await store.count_messages("other") == 0


async def test_messages_after_is_strict_and_ordered_by_position(store: SqlSessionStore) -> None:
    await stored_session(store)
    # created_at = NOW + position seconds; position 1 arrives last (a rewrite stored later).
    await store.insert_messages([message(p) for p in (0, 2, 3)])
    late = message(1, created_at=NOW + timedelta(minutes=1))
    await store.insert_messages([late])

    assert [m.position for m in await store.messages_after(SID, NOW - timedelta(seconds=1))] == [0, 1, 2, 3]
    assert [m.position for m in await store.messages_after(SID, NOW + timedelta(seconds=2))] == [1, 3]
    assert await store.messages_after(SID, late.created_at) == []
    assert await store.messages_after("other", NOW - timedelta(days=1)) == []


# -- distillation reads ------------------------------------------------------------------------------------


async def test_get_distillation(store: SqlSessionStore) -> None:
    records = await stored_session(store, 2)
    row = await store.insert_distillation_and_mark(distillation(records))
    assert row is not None
    await store.archive_distillations([row.id])

    got = await store.get_distillation(row.id)
    assert got is not None
    assert (got.id, got.seq, got.archived) == (row.id, 1, True)
    assert await store.get_distillation(str(uuid.uuid4())) is None
    assert await store.get_distillation("not-a-uuid") is None


async def test_latest_distillation_is_the_highest_live_seq(store: SqlSessionStore) -> None:
    assert await store.latest_distillation(SID) is None
    records = await stored_session(store, 6)
    first = await store.insert_distillation_and_mark(distillation(records[:2]))
    second = await store.insert_distillation_and_mark(distillation(records[2:4]))
    assert first is not None
    assert second is not None
    assert await store.latest_distillation(SID) == second

    meta = await store.insert_meta_and_archive(
        distillation(records[:4], generation=1, kind="reflector"), [first.id, second.id]
    )
    assert await store.latest_distillation(SID) == meta
    assert meta is not None
    await store.archive_distillations([meta.id])
    assert await store.latest_distillation(SID) is None  # archived rows never count

    third = await store.insert_distillation_and_mark(distillation(records[4:]))
    assert await store.latest_distillation(SID) == third


async def test_distillations_after(store: SqlSessionStore) -> None:
    records = await stored_session(store, 6)
    rows = []
    for i, start in enumerate((0, 2, 4)):
        row = await store.insert_distillation_and_mark(
            distillation(records[start : start + 2], created_at=NOW + timedelta(minutes=i))
        )
        assert row is not None
        rows.append(row)
    await store.archive_distillations([rows[1].id])

    after = await store.distillations_after(SID, NOW)
    assert [(r.seq, r.archived) for r in after] == [(2, True), (3, False)]
    assert [r.seq for r in await store.distillations_after(SID, NOW, include_archived=False)] == [3]
    assert [r.seq for r in await store.distillations_after(SID, NOW - timedelta(seconds=1))] == [1, 2, 3]
    assert await store.distillations_after(SID, NOW + timedelta(minutes=2)) == []


# -- sessions and knowledge --------------------------------------------------------------------------------


async def test_list_sessions(store: SqlSessionStore) -> None:
    assert await store.list_sessions() == []
    await store.ensure_session("b", "p1", "m", NOW + timedelta(seconds=1))
    await store.ensure_session("a", "p2", "m", NOW + timedelta(seconds=2))
    await store.ensure_session("c", "p1", "m", NOW)

    assert [s.session_id for s in await store.list_sessions()] == ["c", "b", "a"]
    assert [s.session_id for s in await store.list_sessions(project="p1")] == ["c", "b"]
    assert await store.list_sessions(project="nope") == []
    [a] = await store.list_sessions(project="p2")
    assert a == await store.get_session("a")


async def test_count_knowledge_counts_what_list_knowledge_shows(store: SqlSessionStore) -> None:
    for title, project, confidence in [
        ("mine", "p1", 0.9),
        ("mine too", "p1", 0.3),
        ("hidden", "p1", 0.2),
        ("theirs", "p2", 0.9),
        ("everyone", None, 0.7),
    ]:
        await store.upsert_knowledge(entry(title, project=project, confidence=confidence))

    assert await store.count_knowledge("p1") == 2
    assert await store.count_knowledge("p1", own_only=False) == 3 == len(await store.list_knowledge("p1"))
    assert await store.count_knowledge("p1", min_confidence=0.5) == 1
    assert await store.count_knowledge(None) == 1
    assert await store.count_knowledge("p3") == 0


async def test_blocks_must_be_json(store: SqlSessionStore) -> None:
    await stored_session(store)
    with pytest.raises(StoreError) as caught:
        await store.insert_messages([message(0, blocks=({"type": "text", "text": object()},))])
    assert not caught.value.retryable
    assert await store.count_messages(SID) == 0
