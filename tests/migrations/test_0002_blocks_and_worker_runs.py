"""Revision 0002 on a database holding data: messages stored at 0001 read back with ``blocks == ()``, and the
downgrade keeps them (minus their blocks) and drops ``worker_runs``, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from lore_core.store import (
    JSON_TYPE,
    MessageRecord,
    SqlSessionStore,
    UTCDateTime,
    WorkerRunRecord,
    create_engine,
    current_revision,
    downgrade,
    upgrade,
)

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)

# The 0001 shape of the two tables, spelled out: the models already describe revision 0002.
SESSIONS_0001 = sa.table(
    "sessions",
    sa.column("session_id", sa.String()),
    sa.column("project", sa.String()),
    sa.column("created_at", UTCDateTime()),
    sa.column("last_model", sa.String()),
)
MESSAGES_0001 = sa.table(
    "messages",
    *(sa.column(name, sa.String()) for name in ("session_id", "id", "role", "kind", "text", "content_hash")),
    sa.column("position", sa.Integer()),
    sa.column("tokens", sa.Integer()),
    sa.column("distilled", sa.Boolean()),
    sa.column("created_at", UTCDateTime()),
    sa.column("meta", JSON_TYPE),
)
OLD_MESSAGE = MessageRecord(
    id="a" * 32,
    session_id="s1",
    position=0,
    role="user",
    kind="human",
    text="stored before blocks existed",
    content_hash="c" * 64,
    tokens=5,
    created_at=NOW,
    meta={"tools": ["read"]},
)


def _columns(connection: Connection, table: str) -> set[str]:
    return {column["name"] for column in inspect(connection).get_columns(table)}


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _constraints(connection: Connection) -> tuple[set[str | None], set[str | None]]:
    found = inspect(connection)
    checks = {check["name"] for check in found.get_check_constraints("messages")}
    indexes = {index["name"] for index in found.get_indexes("messages")}
    return checks, indexes


async def test_0001_data_survives_upgrade_and_downgrade(store_url: str) -> None:
    engine = create_engine(store_url)
    try:
        await upgrade(engine, "0001")
        async with engine.begin() as connection:
            await connection.execute(
                sa.insert(SESSIONS_0001).values(
                    session_id="s1", project="p1", created_at=NOW, last_model="claude-sonnet-4-6"
                )
            )
            await connection.execute(
                sa.insert(MESSAGES_0001).values(
                    session_id="s1",
                    id=OLD_MESSAGE.id,
                    role="user",
                    kind="human",
                    text=OLD_MESSAGE.text,
                    content_hash=OLD_MESSAGE.content_hash,
                    position=0,
                    tokens=5,
                    distilled=False,
                    created_at=NOW,
                    meta={"tools": ["read"]},
                )
            )
            checks_0001, indexes_0001 = await connection.run_sync(_constraints)

        await upgrade(engine, "0002")
        store = SqlSessionStore(engine)  # borrows the engine: never disposes it
        assert await store.list_messages("s1") == [OLD_MESSAGE]
        assert OLD_MESSAGE.blocks == ()
        run = WorkerRunRecord(
            id=str(uuid.uuid4()),
            worker="distill",
            status="ok",
            session_id="s1",
            started_at=NOW,
            finished_at=NOW,
        )
        await store.record_worker_run(run)
        new = dataclasses.replace(
            OLD_MESSAGE, id="b" * 32, position=1, blocks=({"type": "text", "text": "é"},)
        )
        await store.insert_messages([new])
        assert await store.list_messages("s1") == [OLD_MESSAGE, new]

        await downgrade(engine, "0001")
        assert await current_revision(engine) == "0001"
        async with engine.connect() as connection:
            assert "worker_runs" not in await connection.run_sync(_tables)
            assert "blocks" not in await connection.run_sync(_columns, "messages")
            assert await connection.run_sync(_constraints) == (checks_0001, indexes_0001)
            ids = await connection.scalars(sa.select(MESSAGES_0001.c.id).order_by(MESSAGES_0001.c.position))
            assert list(ids) == ["a" * 32, "b" * 32]

        await upgrade(engine)
        assert [m.blocks for m in await store.list_messages("s1")] == [(), ()]
    finally:
        await engine.dispose()
