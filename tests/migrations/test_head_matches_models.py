"""Every migration applied to an empty database gives exactly the models' schema, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from lore_core.store import VERSION_TABLE, create_engine, current_revision, downgrade, head_revision, upgrade
from lore_core.store.migrate import target_metadata


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
    }
