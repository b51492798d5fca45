"""What every SQL store method stands on: the engine it owns or borrows, its lifecycle, one transaction per
call, and the error wrapping.

Writes use ``engine.begin()`` (``BEGIN IMMEDIATE`` on SQLite), reads a deferred transaction. Every SQLAlchemy
or driver error becomes a :class:`~lore_core.errors.StoreError` naming the operation, with the original
chained (``raise ... from``). Bound values never appear in those errors: the engine is created with
``hide_parameters=True``, and PostgreSQL's ``DETAIL`` text (which quotes row values) is blanked.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Self

from sqlalchemy.exc import DataError, IntegrityError, ProgrammingError, SQLAlchemyError, StatementError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from lore_core.errors import ClosedError, StoreError
from lore_core.store.engine import READ_ONLY_OPTION, create_engine
from lore_core.store.migrate import ensure_schema

__all__ = ["SqlStoreBase"]


def _redact_details(exc: BaseException) -> None:
    """Blank the server's DETAIL text everywhere in the chain (PostgreSQL puts row values there, e.g.
    "Failing row contains (...)"), so a logged traceback of the wrapped error never shows stored content."""
    pending: list[BaseException | None] = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(getattr(current, "detail", None), str):
            setattr(current, "detail", "(redacted by lore-memory: may contain row values)")  # noqa: B010
        pending += [getattr(current, "orig", None), current.__cause__, current.__context__]


def _store_error(operation: str, exc: BaseException) -> StoreError:
    """Wrap a backend error; constraint and data errors will fail again, so they are not retryable."""
    _redact_details(exc)
    permanent = isinstance(exc, IntegrityError | DataError | ProgrammingError) or (
        isinstance(exc, StatementError) and isinstance(exc.orig, ValueError | TypeError)
    )
    return StoreError(operation, retryable=not permanent)


class SqlStoreBase:
    """An engine, a lifecycle and transactions; :class:`~lore_core.store.sql.SqlSessionStore` adds the port.

    ``engine`` is an :class:`AsyncEngine` (shared: never disposed here) or a URL / ``None`` (an engine is
    created with :func:`~lore_core.store.engine.create_engine` and disposed on :meth:`aclose`).

    Raises:
        ConfigError: (constructor) a bad URL.
    """

    def __init__(self, engine: AsyncEngine | str | None = None) -> None:
        self._owns_engine = not isinstance(engine, AsyncEngine)
        self._engine: AsyncEngine | None = (
            engine if isinstance(engine, AsyncEngine) else create_engine(engine)
        )

    @classmethod
    async def open(cls, engine: AsyncEngine | str | None = None, *, auto_migrate: bool = True) -> Self:
        """Create the store and bring its schema to head (Alembic), the way the engine opens its store.

        Raises:
            ConfigError: a bad URL.
            SchemaOutOfDateError: the schema is behind and ``auto_migrate`` is False (the store is closed).
            StoreError: the database failed or is at a revision this code does not know.

        Example::

            async with await SqlSessionStore.open("sqlite+aiosqlite:///lore.db") as store:
                ...
        """
        store = cls(engine)
        try:
            await ensure_schema(store.engine, auto_migrate=auto_migrate)
        except BaseException:
            await store.aclose()
            raise
        return store

    @property
    def engine(self) -> AsyncEngine:
        """The engine in use. Raises ``ClosedError`` after :meth:`aclose`."""
        return self._live()

    async def __aenter__(self) -> Self:
        self._live()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the store (idempotent); dispose the engine if the store created it."""
        engine, self._engine = self._engine, None
        if engine is not None and self._owns_engine:
            await engine.dispose()

    def _live(self) -> AsyncEngine:
        if self._engine is None:
            raise ClosedError(f"{type(self).__name__} is closed")
        return self._engine

    busy: int = 0
    """Transactions open now. Database I/O runs outside any injected clock (a driver thread, a socket), so
    tests that step a manual clock hold it still while this is above zero."""

    @asynccontextmanager
    async def _write(self, operation: str) -> AsyncIterator[AsyncConnection]:
        """One write transaction, committed on success; backend errors become ``StoreError(operation)``."""
        engine = self._live()
        self.busy += 1
        try:
            async with engine.begin() as connection:
                yield connection
        except (SQLAlchemyError, OSError) as exc:
            raise _store_error(operation, exc) from exc
        finally:
            self.busy -= 1

    @asynccontextmanager
    async def _read(self, operation: str) -> AsyncIterator[AsyncConnection]:
        """One read-only (deferred on SQLite) transaction; backend errors become ``StoreError(operation)``."""
        engine = self._live()
        self.busy += 1
        try:
            async with engine.connect() as connection:
                await connection.execution_options(**{READ_ONLY_OPTION: True})
                yield connection
        except (SQLAlchemyError, OSError) as exc:
            raise _store_error(operation, exc) from exc
        finally:
            self.busy -= 1
