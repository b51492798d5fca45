"""The engine factory and the schema check, on real SQLite files (and PostgreSQL where it matters)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from lore_core.errors import ConfigError, SchemaOutOfDateError, StoreError
from lore_core.store import (
    VERSION_TABLE,
    SqlSessionStore,
    create_engine,
    current_revision,
    ensure_schema,
    head_revision,
    mask_url,
    upgrade,
)
from lore_core.store.engine import READ_ONLY_OPTION


def _path(url: str) -> Path:
    return Path(url.removeprefix("sqlite+aiosqlite:///"))


async def _pragma(engine: AsyncEngine, name: str) -> object:
    async with engine.connect() as connection:
        return (await connection.exec_driver_sql(f"PRAGMA {name}")).scalar_one()


async def test_sqlite_connections_get_the_pragmas(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    try:
        assert await _pragma(engine, "journal_mode") == "wal"
        assert await _pragma(engine, "foreign_keys") == 1
        assert await _pragma(engine, "busy_timeout") == 5000
        # A second pooled connection, opened while the first is checked out, gets them too.
        async with engine.connect() as first, engine.connect() as second:
            assert first is not second
            assert (await second.exec_driver_sql("PRAGMA foreign_keys")).scalar_one() == 1
            assert (await second.exec_driver_sql("PRAGMA busy_timeout")).scalar_one() == 5000
    finally:
        await engine.dispose()


def _try_write_lock(path: Path) -> bool:
    """Whether another client can take SQLite's write lock right now (no waiting)."""
    probe = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        probe.close()


async def test_write_transactions_begin_immediate_and_readers_do_not(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    try:
        async with engine.begin() as connection:
            await connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        async with engine.begin():
            # No statement yet: only BEGIN IMMEDIATE can already hold the write lock.
            assert not _try_write_lock(_path(sqlite_url))
        async with engine.connect() as connection:
            await connection.execution_options(**{READ_ONLY_OPTION: True})
            assert (await connection.exec_driver_sql("SELECT count(*) FROM t")).scalar_one() == 0
            assert _try_write_lock(_path(sqlite_url))
    finally:
        await engine.dispose()


async def test_default_url_is_the_user_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LORE_DB_URL", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))

    engine = create_engine()
    try:
        expected = tmp_path / "xdg" / "lore-memory" / "lore.db"
        assert engine.url.database == str(expected)
        assert expected.parent.is_dir()
        await upgrade(engine)
        assert expected.is_file()
    finally:
        await engine.dispose()


async def test_lore_db_url_overrides_the_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    target = tmp_path / "nested" / "dir" / "custom.db"
    monkeypatch.setenv("LORE_DB_URL", f"sqlite:///{target}")  # the sync spelling is accepted

    engine = create_engine()
    try:
        assert engine.url.drivername == "sqlite+aiosqlite"
        assert engine.url.database == str(target)
        await upgrade(engine)
        assert await current_revision(engine) == head_revision()
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    "url",
    [
        "mysql+aiomysql://lore:hunter2@db/lore",
        "postgresql+psycopg2://lore:hunter2@db/lore",
        "postgresql://lore:hunter2@db",
        "definitely not a url",
        "postgresql+asyncpg://lore:hunter2@db:notaport/lore",
    ],
)
def test_bad_urls_raise_config_error_with_the_password_masked(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        create_engine(url)
    assert "hunter2" not in str(caught.value)


def test_mask_url() -> None:
    assert mask_url("postgresql+asyncpg://lore:s3cret@db/lore") == "postgresql+asyncpg://lore:***@db/lore"
    assert mask_url("postgresql+asyncpg://lore@db/lore") == "postgresql+asyncpg://lore@db/lore"
    assert mask_url("x://u:p%40ss@h:notaport/d") == "x://u:***@h:notaport/d"


async def test_schema_check_refuses_an_old_schema_without_auto_migrate(store_url: str) -> None:
    engine = create_engine(store_url)
    try:
        with pytest.raises(SchemaOutOfDateError) as caught:
            await ensure_schema(engine, auto_migrate=False)
        assert (caught.value.current, caught.value.head) == (None, head_revision())
        assert not caught.value.retryable

        assert await ensure_schema(engine) == head_revision()
        assert await current_revision(engine) == head_revision()
        assert await ensure_schema(engine, auto_migrate=False) == head_revision()
    finally:
        await engine.dispose()


async def test_schema_check_refuses_an_unknown_revision(store_url: str) -> None:
    engine = create_engine(store_url)
    try:
        await upgrade(engine)
        async with engine.begin() as connection:
            await connection.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = 'from_the_future'"))

        with pytest.raises(StoreError) as caught:
            await ensure_schema(engine)
        assert not isinstance(caught.value, SchemaOutOfDateError)
        assert not caught.value.retryable
    finally:
        await engine.dispose()


async def test_upgrade_to_an_unknown_revision_is_a_store_error(sqlite_url: str) -> None:
    with pytest.raises(StoreError) as caught:
        await upgrade(sqlite_url, "nope")
    assert not caught.value.retryable


async def test_unreachable_database_is_a_retryable_store_error() -> None:
    engine = create_engine("postgresql+asyncpg://lore:hunter2@127.0.0.1:1/lore")  # nothing listens on port 1
    try:
        with pytest.raises(StoreError) as caught:
            await current_revision(engine)
        assert caught.value.retryable
        assert "hunter2" not in str(caught.value)
    finally:
        await engine.dispose()


async def test_open_migrates_a_fresh_database_on_open(store_url: str) -> None:
    async with await SqlSessionStore.open(store_url) as store:
        assert await current_revision(store.engine) == head_revision()
        record = await store.ensure_session("s-open", "default", "claude-sonnet-4-6", datetime.now(UTC))
        assert record.session_id == "s-open"
    # opening again finds the schema at head and changes nothing
    async with await SqlSessionStore.open(store_url) as store:
        assert await store.get_session("s-open") is not None


async def test_open_without_auto_migrate_refuses_and_closes(store_url: str) -> None:
    with pytest.raises(SchemaOutOfDateError) as caught:
        await SqlSessionStore.open(store_url, auto_migrate=False)
    assert caught.value.current is None
    assert caught.value.head == head_revision()
