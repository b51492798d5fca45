"""Alembic, driven from code: upgrade, downgrade, and the schema check ``Lore.open`` runs.

The script directory ships inside the package as ``lore_core.migrations`` (the repository's top-level
``migrations/`` directory, mapped in ``pyproject.toml``), so this works from an installed wheel and never
reads the working directory's ``alembic.ini``. Migrations run in one transaction on the caller's engine:
``BEGIN IMMEDIATE`` on SQLite, and on PostgreSQL a transaction-scoped advisory lock taken by ``env.py`` so
that two processes starting at once do not race.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Final

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from lore_core.errors import SchemaOutOfDateError, StoreError
from lore_core.store.engine import READ_ONLY_OPTION, create_engine
from lore_core.store.models import metadata

__all__ = [
    "FULLTEXT_COLUMN",
    "FULLTEXT_TABLES",
    "VERSION_TABLE",
    "alembic_config",
    "current_revision",
    "downgrade",
    "ensure_schema",
    "head_revision",
    "include_name",
    "is_fulltext_object",
    "target_metadata",
    "upgrade",
]

VERSION_TABLE: Final = "lore_core_version"
"""Alembic's version table; one tree for lore_core and lore_batch tables."""

MIGRATIONS_PACKAGE: Final = "lore_core.migrations"


def target_metadata() -> MetaData:
    """The metadata every revision must match: what ``env.py`` autogenerates against and the tests compare."""
    return metadata


FULLTEXT_TABLES: Final = ("messages", "distillations", "knowledge")
"""The tables revision 0005 indexes for full-text search (recall)."""

FULLTEXT_COLUMN: Final = "fts_vector"
"""PostgreSQL's generated ``tsvector`` column on each of :data:`FULLTEXT_TABLES`."""


def is_fulltext_object(name: str | None) -> bool:
    """Whether ``name`` is one of the full-text objects of revision 0005, which the models do not describe.

    By naming convention: SQLite's FTS5 tables ``<table>_fts`` and their shadow tables ``<table>_fts_*``
    (triggers ``<table>_fts_insert|delete|update`` go with them), PostgreSQL's ``fts_vector`` columns and
    their GIN indexes ``ix_<table>_fts_vector``. Example: ``is_fulltext_object("messages_fts_data")``.
    """
    if name is None:
        return False
    if name == FULLTEXT_COLUMN:
        return True
    return any(
        name in (f"{table}_fts", f"ix_{table}_{FULLTEXT_COLUMN}") or name.startswith(f"{table}_fts_")
        for table in FULLTEXT_TABLES
    )


def include_name(name: str | None, type_: str, parent_names: Mapping[str, str | None]) -> bool:
    """Alembic's ``include_name`` hook: compare everything but the full-text objects.

    Revision 0005 creates them with dialect-specific DDL (an FTS5 virtual table has no SQLAlchemy model, a
    generated ``tsvector`` column exists on PostgreSQL only), so autogenerate and the head-matches-models test
    leave them out here and tests check them directly.
    """
    return not (type_ in ("table", "column", "index") and is_fulltext_object(name))


def _script_location() -> str:
    spec = importlib.util.find_spec(MIGRATIONS_PACKAGE)
    locations = list(spec.submodule_search_locations or ()) if spec is not None else []
    if not locations:
        raise StoreError(f"locate {MIGRATIONS_PACKAGE}: package not installed", retryable=False)
    return str(locations[0])


def alembic_config() -> Config:
    """An Alembic ``Config`` built in code, pointing at the packaged script directory."""
    config = Config()
    config.set_main_option("script_location", _script_location().replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    return config


def head_revision() -> str:
    """The newest revision this code ships (Alembic's single head).

    Raises:
        StoreError: the script directory is missing or has several heads (a packaging or merge mistake).
    """
    try:
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    except CommandError as exc:
        raise StoreError("read migration head", retryable=False) from exc
    if head is None:
        raise StoreError("read migration head: no revisions", retryable=False)
    return head


@asynccontextmanager
async def _engine_for(engine_or_url: AsyncEngine | str | None) -> AsyncIterator[AsyncEngine]:
    if isinstance(engine_or_url, AsyncEngine):
        yield engine_or_url
        return
    engine = create_engine(engine_or_url)
    try:
        yield engine
    finally:
        await engine.dispose()


def _run(connection: Connection, action: Callable[[Config, str], None], revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    action(config, revision)


async def _migrate(
    engine_or_url: AsyncEngine | str | None, action: Callable[[Config, str], None], revision: str, label: str
) -> None:
    async with _engine_for(engine_or_url) as engine:
        try:
            async with engine.begin() as connection:
                await connection.run_sync(_run, action, revision)
        except CommandError as exc:
            raise StoreError(f"{label} to {revision}", retryable=False) from exc
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(f"{label} to {revision}") from exc


async def upgrade(engine_or_url: AsyncEngine | str | None, revision: str = "head") -> None:
    """Apply every migration up to ``revision`` in one transaction.

    ``engine_or_url`` is an engine (left open) or a URL (``None``: ``LORE_DB_URL`` or the default SQLite
    file), for which an engine is created and disposed.

    Raises:
        ConfigError: a bad URL.
        StoreError: the database failed (retryable), or ``revision`` is unknown (not retryable).

    >>> await upgrade("sqlite+aiosqlite:///tmp/lore.db")  # doctest: +SKIP
    """
    await _migrate(engine_or_url, command.upgrade, revision, "upgrade")


async def downgrade(engine_or_url: AsyncEngine | str | None, revision: str) -> None:
    """Revert migrations down to ``revision`` (``"base"`` drops every table) in one transaction.

    Raises:
        ConfigError: a bad URL.
        StoreError: as for :func:`upgrade`.
    """
    await _migrate(engine_or_url, command.downgrade, revision, "downgrade")


def _read_revision(connection: Connection) -> str | None:
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or ``None`` for a database never migrated.

    Raises:
        StoreError: the database failed.
    """
    try:
        async with engine.connect() as connection:
            await connection.execution_options(**{READ_ONLY_OPTION: True})
            return await connection.run_sync(_read_revision)
    except (SQLAlchemyError, OSError) as exc:
        raise StoreError("read schema revision") from exc


def _is_known(revision: str) -> bool:
    try:
        ScriptDirectory.from_config(alembic_config()).get_revision(revision)
    except CommandError:
        return False
    return True


async def ensure_schema(engine: AsyncEngine, *, auto_migrate: bool = True) -> str:
    """Bring the database to the code's head revision, or refuse to run on an old schema; return the head.

    Raises:
        SchemaOutOfDateError: the database is behind (or empty) and ``auto_migrate`` is False.
        StoreError: the database is at a revision this code does not know (a newer release migrated it), or
            the database failed.
    """
    head = head_revision()
    current = await current_revision(engine)
    if current == head:
        return head
    if current is not None and not _is_known(current):
        raise StoreError(f"schema check: database is at unknown revision {current!r}", retryable=False)
    if not auto_migrate:
        raise SchemaOutOfDateError(current=current, head=head)
    await upgrade(engine, head)
    return head
