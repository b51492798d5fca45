"""Revision 0005 on a database holding data: rows stored at 0004 are searchable right after the upgrade
(backfill), the downgrade keeps every row and drops only the full-text objects, and a second upgrade indexes
everything again, on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.store.builders import NOW, SID, distillation, entry, message

from lore_core.ranking import query_terms
from lore_core.store import SqlSessionStore, create_engine, current_revision, downgrade, upgrade
from lore_core.store.records import TextSearch


async def _found(store: SqlSessionStore, query: str) -> list[tuple[str, str]]:
    matches = await store.search_text(TextSearch(terms=query_terms(query)))
    return sorted((m.source, m.record.id) for m in matches)


async def test_upgrade_indexes_existing_rows_and_downgrade_keeps_them(store_url: str) -> None:
    engine = create_engine(store_url)
    try:
        await upgrade(engine, "0004")
        # The models describe 0004's tables exactly (0005 adds no model column), so the store can write now.
        store = SqlSessionStore(engine)
        await store.ensure_session(SID, "p1", "claude-sonnet-4-6", NOW)
        old = message(0, text="[result:bash] listening on port 7431")
        await store.insert_messages([old, message(1, text="unrelated")])
        row = distillation([old], project="p1", observations="* red (05:06) chose port 7431 for the queue")
        assert await store.insert_distillation_and_mark(row) is not None
        note = entry("Queue port", project="p1", content="7431, picked in March")
        await store.upsert_knowledge(note)
        expected = sorted([("message", old.id), ("distillation", row.id), ("knowledge", note.id)])

        await upgrade(engine, "0005")
        assert await _found(store, "port 7431") == expected

        await downgrade(engine, "0004")
        assert await current_revision(engine) == "0004"
        assert await store.count_messages(SID) == 2
        assert [d.id for d in await store.list_distillations(SID)] == [row.id]
        assert [k.id for k in await store.list_knowledge("p1")] == [note.id]
        # written while the index does not exist, found after the next upgrade
        late = message(2, text="port 7431 again, from 0004")
        await store.insert_messages([late])

        await upgrade(engine)
        assert await _found(store, "port 7431") == sorted([*expected, ("message", late.id)])
        await store.aclose()
    finally:
        await engine.dispose()
