"""Column types shared by every table: aware UTC datetimes and portable JSON.

Both are plain SQLAlchemy types, so Alembic revisions can name them (``UTCDateTime()``, ``JSON_TYPE``) and
``lore_batch`` tables can reuse them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeAlias

from sqlalchemy import JSON, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

__all__ = ["JSON_TYPE", "JsonValue", "UTCDateTime"]

JsonValue: TypeAlias = str | int | float | bool | list["JsonValue"] | dict[str, "JsonValue"] | None
"""A value that survives a JSON round trip unchanged."""

JSON_TYPE = JSON().with_variant(JSONB(), "postgresql")
"""``JSON`` everywhere, ``JSONB`` on PostgreSQL (indexable, compact, compared by value)."""


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is stored in UTC and always read back as an aware UTC ``datetime``.

    PostgreSQL stores ``timestamptz``; SQLite stores the naive UTC wall time as ISO text, which sorts and
    compares correctly because every value is UTC. Binding a naive ``datetime`` raises ``ValueError``: a naive
    value has no defined instant.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    @property
    def python_type(self) -> type[datetime]:
        return datetime

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime: lore-memory stores only aware UTC timestamps")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
