"""Shared fixtures: real databases only.

- ``sqlite_url``: a fresh SQLite file in the test's temporary directory.
- ``postgres_url``: a fresh database on the real PostgreSQL server named by ``LORE_TEST_POSTGRES_URL``
  (default ``postgresql+asyncpg://postgres@127.0.0.1:5432/lore_test``), created through the server's
  ``postgres`` maintenance database and dropped ``WITH (FORCE)`` afterwards. An unreachable server FAILS the
  test: it never skips.
- ``store_url``: both of the above, so one test body runs on each backend (the PostgreSQL case carries the
  ``postgres`` marker).
- ``migrated_url`` / ``store``: ``store_url`` upgraded to head, and a ``SqlSessionStore`` on it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import URL, make_url

from lore_core.store import SqlSessionStore, mask_url, upgrade

DEFAULT_TEST_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/lore_test"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file URL in this test's temporary directory (the file does not exist yet)."""
    return f"sqlite+aiosqlite:///{tmp_path / 'lore.db'}"


def _server_url() -> URL:
    return make_url(os.environ.get("LORE_TEST_POSTGRES_URL") or DEFAULT_TEST_POSTGRES_URL)


async def _maintenance_connection(server: URL) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(
            host=server.host or "127.0.0.1",
            port=server.port or 5432,
            user=server.username or "postgres",
            password=server.password,
            database="postgres",
            timeout=10,
        )
    except (OSError, asyncpg.PostgresError) as exc:
        failure = exc
    pytest.fail(
        f"PostgreSQL is unreachable at {mask_url(server)} ({type(failure).__name__}: {failure}). "
        "Start the server or point LORE_TEST_POSTGRES_URL at one; PostgreSQL tests never skip.",
        pytrace=False,
    )


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database for this test; dropped afterwards."""
    server = _server_url()
    name = f"lore_t_{secrets.token_hex(6)}"
    admin = await _maintenance_connection(server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        admin = await _maintenance_connection(server)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest) -> str:
    """An empty database URL, once per backend."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture
async def migrated_url(store_url: str) -> str:
    """``store_url`` with the schema at Alembic head."""
    await upgrade(store_url)
    return store_url


@pytest.fixture
async def store(migrated_url: str) -> AsyncIterator[SqlSessionStore]:
    """A store on a migrated database, closed (and its engine disposed) after the test."""
    async with SqlSessionStore(migrated_url) as opened:
        yield opened


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say how many PostgreSQL tests ran, so a CI log shows they were not skipped."""
    counts = {"passed": 0, "failed": 0, "skipped": 0, "error": 0}
    for outcome in counts:
        for report in terminalreporter.stats.get(outcome, []):
            if "postgres" in getattr(report, "keywords", {}):
                counts[outcome] += 1
    if any(counts.values()):
        terminalreporter.write_line(
            f"PostgreSQL tests against {mask_url(_server_url())}: "
            + ", ".join(f"{n} {outcome}" for outcome, n in counts.items() if n)
        )
