"""Small statement helpers shared by the query modules: dialect-aware INSERT and bounded IN lists."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Final

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import DeclarativeBase

__all__ = ["IN_CHUNK", "chunks", "insert"]

IN_CHUNK: Final = 500
"""Ids per ``IN (...)`` list: far below SQLite's and asyncpg's bound-parameter limits (32,766 / 32,767)."""


def insert(connection: AsyncConnection, model: type[DeclarativeBase]) -> sqlite.Insert | postgresql.Insert:
    """An INSERT for ``model`` that has ``on_conflict_do_*`` on the connection's dialect."""
    if connection.dialect.name == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)


def chunks(ids: Sequence[str], size: int = IN_CHUNK) -> Iterator[Sequence[str]]:
    """``ids`` in consecutive slices of at most ``size``."""
    for start in range(0, len(ids), size):
        yield ids[start : start + size]
