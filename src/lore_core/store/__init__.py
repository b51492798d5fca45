"""Session storage: the async engine, Alembic migrations, the ``SessionStore`` port and its SQL
implementation.

>>> engine = create_engine()              # LORE_DB_URL, else SQLite in the user data dir  # doctest: +SKIP
>>> await ensure_schema(engine)           # upgrade to head (or SchemaOutOfDateError)     # doctest: +SKIP
>>> store = SqlSessionStore(engine)                                                         # doctest: +SKIP

ORM models live in :mod:`lore_core.store.models` for migrations and ``lore_batch`` tables; they never leave
the store: every read returns a frozen record from :mod:`lore_core.store.records`.
"""

from lore_core.store.engine import create_engine, mask_url
from lore_core.store.migrate import (
    VERSION_TABLE,
    current_revision,
    downgrade,
    ensure_schema,
    head_revision,
    upgrade,
)
from lore_core.store.port import SessionStore
from lore_core.store.records import (
    ERROR_DETAIL_LIMIT,
    UNSET,
    DistillationKind,
    DistillationRecord,
    KnowledgeCategory,
    KnowledgePin,
    KnowledgeRecord,
    KvRecord,
    MessageKind,
    MessageRecord,
    RawPin,
    Role,
    SessionRecord,
    SessionStateRecord,
    Unset,
    WorkerRunRecord,
    WorkerRunStatus,
)
from lore_core.store.sql import SqlSessionStore
from lore_core.store.types import JSON_TYPE, JsonValue, UTCDateTime

__all__ = [
    "ERROR_DETAIL_LIMIT",
    "JSON_TYPE",
    "UNSET",
    "VERSION_TABLE",
    "DistillationKind",
    "DistillationRecord",
    "JsonValue",
    "KnowledgeCategory",
    "KnowledgePin",
    "KnowledgeRecord",
    "KvRecord",
    "MessageKind",
    "MessageRecord",
    "RawPin",
    "Role",
    "SessionRecord",
    "SessionStateRecord",
    "SessionStore",
    "SqlSessionStore",
    "UTCDateTime",
    "Unset",
    "WorkerRunRecord",
    "WorkerRunStatus",
    "create_engine",
    "current_revision",
    "downgrade",
    "ensure_schema",
    "head_revision",
    "mask_url",
    "upgrade",
]
