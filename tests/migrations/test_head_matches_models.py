"""Every migration applied to an empty database gives exactly the models' schema, on SQLite and PostgreSQL.

The full-text objects of revision 0005 are not in the models: ``include_name`` leaves them out of the
comparison by name, and the tests here check that they exist at head and go with the downgrade.
"""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from lore_core.store import VERSION_TABLE, create_engine, current_revision, downgrade, head_revision, upgrade
from lore_core.store.migrate import (
    FULLTEXT_COLUMN,
    FULLTEXT_TABLES,
    alembic_config,
    include_name,
    is_fulltext_object,
    target_metadata,
)

# The chain, oldest first, with the model tables each revision adds (0005 adds full-text objects only).
REVISIONS = {
    "0001": {"sessions", "session_state", "messages", "distillations", "knowledge", "kv"},
    "0002": {"worker_runs"},
    "0003": {"lore_batch_request_log"},
    "0004": {"lore_batch_items", "lore_batch_batches", "lore_batch_processes", "lore_batch_leases"},
    "0005": set(),
}
FTS5_SHADOWS = ("data", "idx", "docsize", "config")


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={
            "version_table": VERSION_TABLE,
            "compare_type": True,
            "target_metadata": None,
            "include_name": include_name,
        },
    )
    return list(compare_metadata(context, target_metadata()))


def _tables(connection: Connection) -> set[str]:
    """Every table but the full-text ones (checked by :func:`_fulltext_objects`)."""
    return {name for name in inspect(connection).get_table_names() if not is_fulltext_object(name)}


def _fulltext_objects(connection: Connection) -> set[str]:
    """The full-text objects present: tables and triggers on SQLite, columns and indexes on PostgreSQL."""
    if connection.dialect.name == "sqlite":
        rows = connection.exec_driver_sql("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')")
        return {name for (name,) in rows if "_fts" in name}
    found: set[str] = set()
    inspector = inspect(connection)
    for table in FULLTEXT_TABLES:
        found |= {
            f"{table}.{c['name']}" for c in inspector.get_columns(table) if c["name"] == FULLTEXT_COLUMN
        }
        found |= {str(ix["name"]) for ix in inspector.get_indexes(table) if is_fulltext_object(ix["name"])}
    return found


def _expected_fulltext(dialect: str) -> set[str]:
    if dialect == "sqlite":
        return {
            name
            for table in FULLTEXT_TABLES
            for name in (
                f"{table}_fts",
                *(f"{table}_fts_{shadow}" for shadow in FTS5_SHADOWS),
                *(f"{table}_fts_{event}" for event in ("insert", "delete", "update")),
            )
        }
    return {f"{t}.{FULLTEXT_COLUMN}" for t in FULLTEXT_TABLES} | {
        f"ix_{t}_fts_vector" for t in FULLTEXT_TABLES
    }


async def test_upgrade_head_matches_the_models_then_down_and_up_again(store_url: str) -> None:
    engine = create_engine(store_url)
    try:
        await upgrade(engine)
        async with engine.connect() as connection:
            assert await connection.run_sync(_differences) == []
            assert await connection.run_sync(_tables) == {*target_metadata().tables, VERSION_TABLE}
            expected = _expected_fulltext(connection.dialect.name)
            assert await connection.run_sync(_fulltext_objects) == expected
        assert await current_revision(engine) == head_revision()

        await downgrade(engine, "base")
        async with engine.connect() as connection:
            assert await connection.run_sync(_tables) == {VERSION_TABLE}
        assert await current_revision(engine) is None

        await upgrade(engine)
        async with engine.connect() as connection:
            assert await connection.run_sync(_differences) == []
        assert await current_revision(engine) == head_revision()
    finally:
        await engine.dispose()


def test_models_declare_the_engine_tables() -> None:
    assert set(target_metadata().tables) == {
        "sessions",
        "session_state",
        "messages",
        "distillations",
        "knowledge",
        "kv",
        "worker_runs",
        "lore_batch_request_log",
        "lore_batch_items",
        "lore_batch_batches",
        "lore_batch_processes",
        "lore_batch_leases",
    }


def test_only_the_fulltext_objects_are_left_out_of_the_comparison() -> None:
    for table in FULLTEXT_TABLES:
        for name in (f"{table}_fts", f"{table}_fts_data", f"ix_{table}_fts_vector", FULLTEXT_COLUMN):
            assert is_fulltext_object(name)
            assert not include_name(name, "table" if "ix_" not in name else "index", {})
    for name in (*target_metadata().tables, "text", "ix_messages_session_id_content_hash", None):
        assert not is_fulltext_object(name)
        assert include_name(name, "table", {})


async def test_revision_0005_adds_the_fulltext_objects_and_its_downgrade_removes_them(store_url: str) -> None:
    engine = create_engine(store_url)
    try:
        await upgrade(engine, "0004")
        async with engine.connect() as connection:
            assert await connection.run_sync(_fulltext_objects) == set()
        await upgrade(engine, "0005")
        async with engine.connect() as connection:
            assert await connection.run_sync(_fulltext_objects) == _expected_fulltext(connection.dialect.name)
        await downgrade(engine, "0004")
        async with engine.connect() as connection:
            assert await connection.run_sync(_fulltext_objects) == set()
            assert await connection.run_sync(_differences) == []  # 0005 changes nothing the models describe
    finally:
        await engine.dispose()


def test_the_chain_is_linear_and_known() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    chain = [rev.revision for rev in reversed(list(script.walk_revisions()))]
    assert chain == list(REVISIONS)
    assert head_revision() == chain[-1]


async def test_each_revision_steps_up_and_down_one_at_a_time(store_url: str) -> None:
    engine = create_engine(store_url)
    try:
        expected = {VERSION_TABLE}
        for revision, added in REVISIONS.items():
            await upgrade(engine, revision)
            expected |= added
            assert await current_revision(engine) == revision
            async with engine.connect() as connection:
                assert await connection.run_sync(_tables) == expected
        chain = list(REVISIONS)
        for index in range(len(chain) - 1, -1, -1):
            target = chain[index - 1] if index else "base"
            await downgrade(engine, target)
            expected -= REVISIONS[chain[index]]
            assert await current_revision(engine) == (None if target == "base" else target)
            async with engine.connect() as connection:
                assert await connection.run_sync(_tables) == expected
        assert await current_revision(engine) is None
    finally:
        await engine.dispose()
