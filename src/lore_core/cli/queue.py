"""``lore queue``: what the durable batch pool holds: items by credential and state, batches, processes.

Read-only: it never migrates. A database that is not at the code's schema head fails with exit code 1 and a
message naming ``lore db upgrade``; a missing SQLite file is reported the same way (and not created).
Credentials appear as their 16-hex fingerprints only; the pool tables hold no secret.

Example::

    lore queue --db sqlite+aiosqlite:///lore.db
    lore queue --json --stale-after 120
"""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from lore_core.errors import StoreError

if TYPE_CHECKING:
    from lore_batch.pool.status import PoolStatus

__all__ = ["register"]

WAITING = "no — waiting for its credential"


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``lore queue [--db URL] [--json] [--stale-after S]`` to ``sub``."""
    parser = sub.add_parser(
        "queue",
        help="show the durable batch pool: queued items, batches, processes",
        description="Items by credential fingerprint and state (and whether a live process holds the "
        "credential), unfinished and recent batches, pool processes and leases. Read-only; never migrates.",
    )
    parser.add_argument("--db", default=None, help="database URL (default: LORE_DB_URL or the data dir)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument(
        "--stale-after",
        type=_positive_seconds,
        default=60.0,
        metavar="S",
        help="a process whose heartbeat is older than S seconds counts as stale (default 60, the pool's)",
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from lore_batch.pool.status import pool_status
    from lore_batch.pool.store import PoolStore
    from lore_core.store import create_engine, mask_url

    async def go() -> PoolStatus:
        engine = create_engine(args.db)
        try:
            if engine.url.get_backend_name() == "sqlite" and _missing_file(engine.url.database):
                raise StoreError(
                    f"open {mask_url(engine.url)}: no such database file; create it with `lore db upgrade`",
                    retryable=False,
                )
            async with await PoolStore.open(engine, auto_migrate=False) as store:
                return await pool_status(store, now=datetime.now(UTC), stale_after=args.stale_after)
        finally:
            await engine.dispose()

    status = asyncio.run(go())
    if args.json:
        print(json.dumps(status.to_json(), indent=2))
    else:
        _render(status)
    return 0


def _missing_file(database: str | None) -> bool:
    """Whether a SQLite URL names a file that does not exist (connecting would create it, empty)."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return False
    return not Path(database).exists()


def _seconds(value: float | None) -> str:
    """A duration for people: ``42s``, ``3m05s``, ``2h07m``, ``1d03h``."""
    if value is None:
        return ""
    sign, value = ("-" if value < 0 else ""), abs(value)
    whole = int(value)
    if whole < 60:
        return f"{sign}{value:.0f}s"
    if whole < 3600:
        return f"{sign}{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{sign}{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{sign}{whole // 86400}d{whole % 86400 // 3600:02d}h"


def _next_poll(seconds: float | None) -> str:
    if seconds is None:
        return "not scheduled"
    return "due now" if seconds <= 0 else _seconds(seconds)


def _render(status: PoolStatus) -> None:
    from lore_batch.pool.status import ITEM_STATES

    console = Console()
    live = sum(1 for p in status.processes if p.state == "live")
    console.print(
        f"[bold]durable batch pool[/bold] at {status.now.isoformat(timespec='seconds')}: "
        f"{len(status.processes)} processes ({live} live, stale after {status.stale_after:g}s)"
    )
    if status.empty:
        console.print("no queued items or batches")
    else:
        items = Table(title="items by credential")
        items.add_column("credential")
        for state in ITEM_STATES:
            items.add_column(state, justify="right")
        items.add_column("oldest queued", justify="right")
        items.add_column("held by a live process")
        for cred in status.credentials:
            if cred.held:
                held = f"yes ({cred.live_holders})"
            else:
                held = WAITING if cred.waiting_for_credential else "no"
            items.add_row(
                cred.credential_fp,
                *(str(cred.counts[state]) for state in ITEM_STATES),
                _seconds(cred.oldest_queued_age),
                held,
            )
        console.print(items)
        waiting = [c.credential_fp for c in status.credentials if c.waiting_for_credential]
        if waiting:
            console.print(
                f"{len(waiting)} credential(s) not held by any live process: their items wait until a process "
                "registers the credential (queued ones fail after the pool's credential_wait)"
            )
        _render_batches(console, status)
    _render_processes(console, status)


def _render_batches(console: Console, status: PoolStatus) -> None:
    if not status.batches:
        console.print("no batches")
        return
    batches = Table(title="batches (unfinished, then the newest finished)")
    for column in ("batch", "credential", "status", "requests", "age", "polls", "next poll in"):
        batches.add_column(column, justify="right" if column in ("requests", "age", "polls") else "left")
    for batch in status.batches:
        batches.add_row(
            batch.batch_id or f"({batch.submission_id})",
            batch.credential_fp,
            batch.status,
            str(batch.request_count),
            _seconds(batch.age),
            str(batch.polls),
            _next_poll(batch.next_poll_in) if not batch.finished else "",
        )
    console.print(batches)


def _render_processes(console: Console, status: PoolStatus) -> None:
    if not status.processes:
        console.print("no pool processes registered")
    else:
        processes = Table(title="processes")
        for column in ("process", "host", "pid", "state", "credentials", "workers", "heartbeat"):
            processes.add_column(column, justify="right" if column in ("pid", "credentials") else "left")
        for process in status.processes:
            processes.add_row(
                process.id,
                process.host,
                str(process.pid),
                process.state,
                str(process.credentials_held),
                ", ".join(process.workers),
                f"{_seconds(process.heartbeat_age)} ago",
            )
        console.print(processes)
    if status.leases:
        leases = Table(title="leases (SQLite leadership)")
        for column in ("key", "holder", "expires in"):
            leases.add_column(column)
        for lease in status.leases:
            leases.add_row(
                lease.key, lease.holder, "expired" if lease.expired else _seconds(lease.expires_in)
            )
        console.print(leases)
