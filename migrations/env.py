"""Alembic environment of lore-memory.

Two ways in:

- From code (:mod:`lore_core.store.migrate`): the caller passes an open connection, already inside a
  transaction, in ``config.attributes["connection"]``; nothing here reads files or the environment.
- From the ``alembic`` command (developers, e.g. ``alembic revision --autogenerate``): the URL comes from
  ``-x url=...``, else ``sqlalchemy.url`` in the ini file, else ``LORE_DB_URL`` / the default SQLite file,
  and the engine is built by :func:`lore_core.store.create_engine` (same pragmas and ``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import asyncio
from typing import Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import JSON
from sqlalchemy.engine import Connection

from lore_core.settings import Settings
from lore_core.store.engine import create_engine
from lore_core.store.migrate import VERSION_TABLE, include_name, target_metadata
from lore_core.store.types import UTCDateTime

# Any 64-bit constant: serializes concurrent migrations on one PostgreSQL database ("lore" in ASCII).
_PG_MIGRATION_LOCK = 0x6C6F7265


def _render_item(kind: str, obj: object, autogen_context: AutogenContext) -> str | Literal[False]:
    """Autogenerate writes our two column types by name, as the hand-written revisions do."""
    if kind != "type":
        return False
    if isinstance(obj, UTCDateTime):
        autogen_context.imports.add("from lore_core.store.types import UTCDateTime")
        return "UTCDateTime()"
    if isinstance(obj, JSON) and "postgresql" in getattr(obj, "_variant_mapping", {}):
        autogen_context.imports.add("from lore_core.store.types import JSON_TYPE")
        return "JSON_TYPE"
    return False


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata(),
        version_table=VERSION_TABLE,
        # SQLite cannot ALTER most things in place; batch mode recreates tables when a revision asks for it.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=_render_item,
        # Full-text objects (revision 0005) are created by hand-written, dialect-specific DDL.
        include_name=include_name,
    )


def _run_on(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    return (
        context.get_x_argument(as_dictionary=True).get("url")
        or context.config.get_main_option("sqlalchemy.url")
        or Settings.from_env().db_url
    )


async def _run_from_command_line() -> None:
    engine = create_engine(_url())
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run_on)
    finally:
        await engine.dispose()


def _run_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=target_metadata(),
        version_table=VERSION_TABLE,
        literal_binds=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


_connection = context.config.attributes.get("connection")
if context.is_offline_mode():
    _run_offline()
elif isinstance(_connection, Connection):
    _run_on(_connection)
else:
    asyncio.run(_run_from_command_line())
