"""Full-text search for recall over ``messages``, ``distillations`` and ``knowledge``.

SQLite: one FTS5 *external-content* table per source (``messages_fts``, ``distillations_fts``,
``knowledge_fts``; FTS5 adds its ``_data``, ``_idx``, ``_docsize`` and ``_config`` shadow tables), keyed by the
source row's ``rowid``, kept in sync by ``AFTER INSERT``, ``AFTER DELETE`` and ``AFTER UPDATE OF <text
columns>`` triggers, and filled from the existing rows with FTS5's ``rebuild`` command.

PostgreSQL: a generated, stored ``fts_vector tsvector`` column on each source table (computed for existing
rows by the ``ADD COLUMN`` itself) with a GIN index ``ix_<table>_fts_vector``.

Both backends split text the same way: every ASCII punctuation character separates words (PostgreSQL's
parser would otherwise keep ``db.example.com:5433`` or ``src/app/main.py`` as one token, FTS5's
``unicode61`` never does), English stemming (FTS5 ``porter``, PostgreSQL ``english``), diacritics kept.
PostgreSQL indexes the first 100,000 characters of a row (a ``tsvector`` holds at most 1 MB).

None of these objects is in the SQLAlchemy models: every name carries ``fts`` and
``lore_core.store.migrate.include_name`` leaves them out of autogenerate and of the head-matches-models test.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-12
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# table -> the columns its full-text index covers
SOURCES = {
    "messages": ("text",),
    "distillations": ("observations",),
    "knowledge": ("title", "content"),
}

# SQLite: porter stemming over unicode61 words; diacritics kept, as PostgreSQL's english configuration does.
FTS5_TOKENIZE = "porter unicode61 remove_diacritics 0"

# PostgreSQL: ASCII punctuation (backslash aside) becomes spaces before parsing; 100,000 characters at most.
_PUNCTUATION = "!\"#$%&''()*+,-./:;<=>?@[]^_`{|}~"
_SPACES = " " * len(_PUNCTUATION.replace("''", "'"))
PG_TEXT_LIMIT = 100_000


def _pg_vector(columns: tuple[str, ...]) -> str:
    body = " || ' ' || ".join(columns)
    return (
        f"to_tsvector('english'::regconfig, translate(left({body}, {PG_TEXT_LIMIT}), "
        f"'{_PUNCTUATION}', '{_SPACES}'))"
    )


def _sqlite_upgrade(table: str, columns: tuple[str, ...]) -> None:
    fts = f"{table}_fts"
    names = ", ".join(columns)
    new = ", ".join(f"new.{column}" for column in columns)
    old = ", ".join(f"old.{column}" for column in columns)
    op.execute(
        f"CREATE VIRTUAL TABLE {fts} USING fts5({names}, content='{table}', content_rowid='rowid', "
        f"tokenize='{FTS5_TOKENIZE}')"
    )
    op.execute(
        f"CREATE TRIGGER {fts}_insert AFTER INSERT ON {table} BEGIN "
        f"INSERT INTO {fts}(rowid, {names}) VALUES (new.rowid, {new}); END"
    )
    op.execute(
        f"CREATE TRIGGER {fts}_delete AFTER DELETE ON {table} BEGIN "
        f"INSERT INTO {fts}({fts}, rowid, {names}) VALUES ('delete', old.rowid, {old}); END"
    )
    op.execute(
        f"CREATE TRIGGER {fts}_update AFTER UPDATE OF {names} ON {table} BEGIN "
        f"INSERT INTO {fts}({fts}, rowid, {names}) VALUES ('delete', old.rowid, {old}); "
        f"INSERT INTO {fts}(rowid, {names}) VALUES (new.rowid, {new}); END"
    )
    # Backfill: index every row already stored.
    op.execute(f"INSERT INTO {fts}({fts}) VALUES ('rebuild')")


def _sqlite_downgrade(table: str) -> None:
    fts = f"{table}_fts"
    for event in ("update", "delete", "insert"):
        op.execute(f"DROP TRIGGER IF EXISTS {fts}_{event}")
    op.execute(f"DROP TABLE IF EXISTS {fts}")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table, columns in SOURCES.items():
        if dialect == "sqlite":
            _sqlite_upgrade(table, columns)
        else:
            op.execute(
                f"ALTER TABLE {table} ADD COLUMN fts_vector tsvector "
                f"GENERATED ALWAYS AS ({_pg_vector(columns)}) STORED"
            )
            op.execute(f"CREATE INDEX ix_{table}_fts_vector ON {table} USING gin (fts_vector)")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in reversed(SOURCES):
        if dialect == "sqlite":
            _sqlite_downgrade(table)
        else:
            op.execute(f"DROP INDEX IF EXISTS ix_{table}_fts_vector")
            op.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS fts_vector")
