"""``SessionStore.search_text`` on SQLite (FTS5) and PostgreSQL (tsvector): what it finds, how it scopes, and
that the index follows every insert, update and delete (FTS5 external content kept by triggers)."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import text

from lore_core.errors import ConfigError
from lore_core.ranking import query_terms
from lore_core.store import SqlSessionStore, create_engine, upgrade
from lore_core.store.fulltext import match_expression
from lore_core.store.records import TextSearch

from ..store.builders import NOW, SID, distillation, entry, message


def search(query: str, **scope: object) -> TextSearch:
    return TextSearch(terms=query_terms(query), **scope)  # type: ignore[arg-type]


async def _ids(store: SqlSessionStore, query: str, **scope: object) -> list[tuple[str, str]]:
    return [(m.source, m.record.id) for m in await store.search_text(search(query, **scope))]


async def _fts_consistent(store: SqlSessionStore) -> None:
    """SQLite only: FTS5's own check that each index matches its external content table exactly."""
    async with store.engine.connect() as connection:
        if connection.dialect.name != "sqlite":
            return
        for table in ("messages", "distillations", "knowledge"):
            await connection.execute(
                text(f"INSERT INTO {table}_fts({table}_fts, rank) VALUES ('integrity-check', 1)")
            )


async def test_each_source_is_found_by_words_numbers_and_punctuated_tokens(store: SqlSessionStore) -> None:
    await store.ensure_session(SID, "p1", "m", NOW)
    host = message(0, text="[result:bash] ERR_CONN_REFUSED connecting to db.example.com:5433")
    other = message(1, text="we talked about lunch")
    await store.insert_messages([host, other])
    row = distillation([host], project="p1", observations="* red (05:06) migrations moved to alembic")
    await store.insert_distillation_and_mark(row)
    note = entry("Deploy token", project="p1", content="rotates every 90 days")
    await store.upsert_knowledge(note)

    assert await _ids(store, "example.com refused", session_id=SID) == [("message", host.id)]
    assert await _ids(store, "5433") == [("message", host.id)]
    assert await _ids(store, "migration") == [("distillation", row.id)]  # stemmed
    assert await _ids(store, "token rotation", project="p1") == [("knowledge", note.id)]
    assert await _ids(store, "nothing matches this") == []
    matches = await store.search_text(search("5433 lunch"))
    assert [(m.rank, m.source) for m in matches] == [(1, "message"), (2, "message")]
    assert matches[0].score >= matches[1].score
    assert matches[0].record.blocks == ()  # message records come without their blocks
    # only the sources asked for, and no terms means no query at all
    assert await store.search_text(search("5433 migrations", sources=("distillation",))) == [
        m for m in await store.search_text(search("5433 migrations")) if m.source == "distillation"
    ]
    assert await store.search_text(TextSearch(terms=())) == []


async def test_more_matching_terms_rank_higher(store: SqlSessionStore) -> None:
    await store.ensure_session(SID, "p1", "m", NOW)
    one = message(0, text="the staging box is slow today")
    both = message(1, text="staging database on port 6543")
    await store.insert_messages([one, both])
    assert await _ids(store, "staging port 6543") == [("message", both.id), ("message", one.id)]


async def test_search_never_crosses_sessions_or_projects_unless_asked(store: SqlSessionStore) -> None:
    for session_id, project in (("a1", "alpha"), ("a2", "alpha"), ("b1", "beta")):
        await store.ensure_session(session_id, project, "m", NOW)
        await store.insert_messages([message(0, session_id=session_id, text=f"shared fact in {session_id}")])
        await store.insert_distillation_and_mark(
            distillation(
                [message(0, session_id=session_id, text=f"shared fact in {session_id}")],
                session_id=session_id,
                project=project,
                observations=f"* shared fact noted in {session_id}",
            )
        )
    await store.upsert_knowledge(entry("shared fact alpha", project="alpha"))
    await store.upsert_knowledge(entry("shared fact beta", project="beta"))
    await store.upsert_knowledge(entry("shared fact global", project=None))
    await store.upsert_knowledge(entry("shared fact faint", project="alpha", confidence=0.1))

    async def found(**scope: object) -> set[tuple[str, str | None]]:
        matches = await store.search_text(search("shared fact", **scope))
        out: set[tuple[str, str | None]] = set()
        for m in matches:
            record = m.record
            owner = getattr(record, "session_id", None) if m.source != "knowledge" else record.project  # type: ignore[union-attr]
            out.add((m.source, owner))
        return out

    assert await found(session_id="a1", project="alpha") == {
        ("message", "a1"), ("distillation", "a1"), ("knowledge", "alpha"), ("knowledge", None),
    }  # fmt: skip
    assert await found(project="alpha") == {
        ("message", "a1"), ("message", "a2"), ("distillation", "a1"), ("distillation", "a2"),
        ("knowledge", "alpha"), ("knowledge", None),
    }  # fmt: skip
    assert await found(project="alpha", include_global=False) >= {("knowledge", "alpha")}
    assert ("knowledge", None) not in await found(project="alpha", include_global=False)
    everything = await found()
    assert {("message", "b1"), ("distillation", "b1"), ("knowledge", "beta")} <= everything
    assert len([m for m in everything if m[0] == "knowledge"]) == 3  # the faint entry stays invisible


async def test_the_index_follows_updates_deletes_and_cascades(store: SqlSessionStore) -> None:
    await store.ensure_session(SID, "p1", "m", NOW)
    first = message(0, text="original wording about kafka")
    await store.insert_messages([first])
    row = distillation([first], project="p1", observations="* yellow (05:06) kafka topic created")
    stored = await store.insert_distillation_and_mark(row)
    assert stored is not None
    assert await _ids(store, "kafka", sources=("distillation",)) == [("distillation", row.id)]

    # a revision replaces the observations: the old words are gone, the new ones found
    assert await store.revise_distillation(
        row.id, observations="* yellow (05:06) rabbitmq queue created", token_count=9, retention_score=1.0,
        expected_revision=0,
    )  # fmt: skip
    assert await _ids(store, "kafka", sources=("distillation",)) == []
    assert await _ids(store, "rabbitmq") == [("distillation", row.id)]
    # archiving changes nothing the index holds: archived rows stay searchable
    assert await store.archive_distillations([row.id]) == 1
    assert await _ids(store, "rabbitmq") == [("distillation", row.id)]

    note = entry("Cache policy", project="p1", content="redis with a 5 minute ttl")
    await store.upsert_knowledge(note)
    await store.upsert_knowledge(dataclasses.replace(note, content="memcached with a 10 minute ttl"))
    assert await _ids(store, "redis") == []
    assert await _ids(store, "memcached") == [("knowledge", note.id)]
    assert await store.delete_knowledge(note.id)
    assert await _ids(store, "memcached") == []
    await _fts_consistent(store)

    # deleting the session cascades to its messages and distillations, and out of the index
    async with store.engine.begin() as connection:
        await connection.execute(text("DELETE FROM sessions WHERE session_id = :sid"), {"sid": SID})
    assert await _ids(store, "kafka rabbitmq") == []
    await _fts_consistent(store)


def test_terms_are_letters_and_digits_only() -> None:
    assert match_expression(("port", "5433"), "sqlite") == '"port" OR "5433"'
    assert match_expression(("port", "5433"), "postgresql") == "port | 5433"
    for bad in ('a"b', "a|b", "a b", "", "a_b", "x:*"):
        with pytest.raises(ConfigError):
            match_expression((bad,), "sqlite")


async def test_bad_terms_never_reach_the_database(store: SqlSessionStore) -> None:
    with pytest.raises(ConfigError):
        await store.search_text(TextSearch(terms=('") OR 1=1 --',)))


@pytest.mark.postgres
async def test_postgresql_searches_through_the_gin_index(postgres_url: str) -> None:
    await upgrade(postgres_url)
    engine = create_engine(postgres_url)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SET enable_seqscan = off"))
            for table in ("messages", "distillations", "knowledge"):
                query = f"EXPLAIN SELECT 1 FROM {table} WHERE fts_vector @@ to_tsquery('english', 'port')"
                plan = "\n".join(row[0] for row in await connection.execute(text(query)))
                assert f"ix_{table}_fts_vector" in plan
    finally:
        await engine.dispose()
