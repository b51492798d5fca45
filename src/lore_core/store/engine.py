"""The async engine factory: one place that knows the two supported backends and their connection rules.

SQLite (``sqlite+aiosqlite``): every connection runs ``PRAGMA busy_timeout=5000``, ``foreign_keys=ON``,
``journal_mode=WAL`` and ``synchronous=NORMAL``; the driver's own transaction handling is switched off and SQLAlchemy emits ``BEGIN
IMMEDIATE`` for write transactions (readers marked with :data:`READ_ONLY_OPTION` get a deferred ``BEGIN``, so
they never queue behind a writer in WAL mode). This is SQLAlchemy's documented recipe for taking over
transaction control from the ``sqlite3`` driver.

PostgreSQL (``postgresql+asyncpg``): a plain pooled engine; writers take row locks where SQLite relies on
``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Final

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from lore_core.errors import ConfigError
from lore_core.settings import Settings

__all__ = ["READ_ONLY_OPTION", "create_engine", "mask_url"]

READ_ONLY_OPTION: Final = "lore_read_only"
"""Connection execution option: on SQLite, begin this connection's transactions deferred, not immediate."""

SQLITE_BUSY_TIMEOUT_MS: Final = 5000
"""How long a SQLite writer waits for the file lock before failing with "database is locked"."""

# Accepted spellings, normalised to the one async driver we support per backend.
_DRIVERS: Final = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}

_PASSWORD_IN_URL = re.compile(r"(?P<head>://[^:/@]*:)(?P<password>[^@]*)(?P<tail>@)")


def mask_url(url: str | URL) -> str:
    """Return ``url`` as text with its password replaced by ``***`` (also for text that does not parse).

    >>> mask_url("postgresql+asyncpg://lore:s3cret@db/lore")
    'postgresql+asyncpg://lore:***@db/lore'
    """
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    return _PASSWORD_IN_URL.sub(r"\g<head>***\g<tail>", url)


def _compact_json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _parse(url: str) -> URL:
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise ConfigError(f"invalid database URL {mask_url(url)!r}") from exc
    driver = _DRIVERS.get(parsed.drivername)
    if driver is None:
        raise ConfigError(
            f"unsupported database URL {mask_url(parsed)!r}: use sqlite+aiosqlite:// or postgresql+asyncpg://"
        )
    parsed = parsed.set(drivername=driver)
    if driver == "postgresql+asyncpg" and not parsed.database:
        raise ConfigError(f"database URL {mask_url(parsed)!r} names no database")
    return parsed


def _sqlite_file(url: URL) -> Path | None:
    """The database file of a SQLite URL, or None for an in-memory or URI-style database."""
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:") or url.query.get("uri"):
        return None
    return Path(database)


def create_engine(url: str | None = None, *, echo: bool = False) -> AsyncEngine:
    """Create the async engine for ``url``; ``None`` means ``Settings.from_env().db_url``.

    That is ``LORE_DB_URL`` when set, else a SQLite file in the user data dir. A SQLite file's directory is
    created if missing. ``sqlite://`` and ``postgresql://`` are accepted as shorthands for the async drivers.
    Bound parameters are hidden from SQLAlchemy's error messages and logs, so row values never reach them.

    Raises:
        ConfigError: the URL does not parse, names another backend or driver, or its SQLite directory cannot
            be created. The message shows the URL with its password masked.

    >>> engine = create_engine("sqlite+aiosqlite:///tmp/lore.db")  # doctest: +SKIP
    """
    parsed = _parse(Settings.from_env().db_url if url is None else url)
    options: dict[str, Any] = {"echo": echo, "hide_parameters": True, "json_serializer": _compact_json}
    if parsed.drivername == "postgresql+asyncpg":
        return create_async_engine(parsed, pool_pre_ping=True, **options)

    path = _sqlite_file(parsed)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the directory of {mask_url(parsed)!r}") from exc
    engine = create_async_engine(parsed, **options)
    _install_sqlite_hooks(engine)
    return engine


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: object) -> None:
        # Take transaction control away from the sqlite3 driver; the "begin" hook below emits BEGIN itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: no fsync per commit (the per-turn insert is on the hot path). A commit survives an
            # application crash; only a power loss may drop the last commits, and callers re-send their
            # history every turn, so those messages are stored again on the next one.
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if connection.get_execution_options().get(READ_ONLY_OPTION):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
