"""``lore db upgrade``: bring a database to the latest schema."""

from __future__ import annotations

import argparse
import asyncio

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("db", help="database maintenance")
    db_sub = parser.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    upgrade = db_sub.add_parser("upgrade", help="apply every Alembic migration up to head")
    upgrade.add_argument("--url", default=None, help="database URL (default: LORE_DB_URL or the data dir)")
    upgrade.set_defaults(handler=_upgrade)


def _upgrade(args: argparse.Namespace) -> int:
    from lore_core.store import create_engine, current_revision, upgrade

    async def go() -> str | None:
        engine = create_engine(args.url)
        try:
            await upgrade(engine)
            return await current_revision(engine)
        finally:
            await engine.dispose()

    revision = asyncio.run(go())
    print(f"lore db upgrade: schema at {revision}")
    return 0
