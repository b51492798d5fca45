"""Every migration applied to an empty database gives exactly the models' schema, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from lore_core.store import VERSION_TABLE, create_engine, current_revision, downgrade, head_revision, upgrade
from lore_core.store.migrate import alembic_config, target_metadata

# The chain, oldest first, with the tables each revision adds.
REVISIONS = {
    "0001": {"sessions", "session_state", "messages", "distillations", "knowledge", "kv"},
    "0002": {"worker_runs"},
    "0003": {"lore_batch_request_log"},
    "0004": {"lore_batch_items", "lore_batch_batches", "lore_batch_processes", "lore_batch_leases"},
}


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"version_table": VERSION_TABLE, "compare_type": True, "target_metadata": None}
    )
    return list(compare_metadata(context, target_metadata()))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_upgrade_head_matches_the_models_then_down_and_up_again(store_url: str) -> None:
    engine = create_engine(store_url)
    try:
        await upgrade(engine)
        async with engine.connect() as connection:
            assert await connection.run_sync(_differences) == []
            assert await connection.run_sync(_tables) == {*target_metadata().tables, VERSION_TABLE}
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
