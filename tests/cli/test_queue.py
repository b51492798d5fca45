"""``lore queue``: the durable pool's tables read back as JSON and as tables, on SQLite and PostgreSQL.

Rows are inserted straight into the four ``lore_batch_*`` tables, timed against the real clock (the CLI reads
``datetime.now``), with ages far from every threshold so the test never races it.
"""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from lore_batch.pool.status import pool_status
from lore_batch.pool.store import PoolStore
from lore_core.cli import main
from lore_core.store import create_engine, upgrade
from lore_core.store.models import BatchItem, BatchLease, BatchProcess, BatchRecord

FP_HELD = "a1b2c3d4e5f60718"
FP_WAITING = "0f1e2d3c4b5a6978"  # sorts first; only a stale and a stopped process name it
# Planted in every item's request: it must never reach the output (the command reads no request text).
PLANTED = "sk-ant-api03-planted-secret-never-printed"

ITEMS = {
    FP_HELD: {"queued": 3, "in_batch": 2, "done": 1, "delivered": 4},
    FP_WAITING: {"queued": 2, "failed": 1},
}
LIVE, STALE, STOPPED = "host-a:101:live0001", "host-b:202:stale002", "host-c:303:stop0003"


def _item(item_id: str, fp: str, state: str, enqueued_at: datetime) -> dict[str, Any]:
    return {
        "id": item_id,
        "credential_fp": fp,
        "provider": "anthropic",
        "model": "claude-sonnet-4-6",
        "facade": "client",
        "worker": "distill",
        "params": {"model": "claude-sonnet-4-6", "metadata": {"note": PLANTED}},
        "call": {"note": PLANTED},
        "params_bytes": 100,
        "deadline": enqueued_at + timedelta(hours=24),
        "state": state,
        "owner_id": LIVE,
        "enqueued_at": enqueued_at,
        "updated_at": enqueued_at,
    }


def _batch(submission_id: str, status: str, created_at: datetime, **values: Any) -> dict[str, Any]:
    return {
        "submission_id": submission_id,
        "provider": "anthropic",
        "credential_fp": FP_HELD,
        "process_id": "host-a:1:aaaaaaaa",
        "status": status,
        "request_count": 2,
        "created_at": created_at,
        # executemany needs one set of keys in every row
        "id": None,
        "polls": 0,
        "next_poll_at": None,
        "ended_at": None,
        **values,
    }


async def fill_pool(url: str, now: datetime) -> None:
    """Items for two credentials, three batches, three processes and a lease, timed against ``now``."""
    items = []
    for fp, states in ITEMS.items():
        for state, n in states.items():
            for index in range(n):
                # the oldest queued item of FP_HELD is 120 s old, of FP_WAITING 900 s old
                age = (900 if fp == FP_WAITING else 120) - index if state == "queued" else 30
                items.append(_item(f"{fp[:4]}-{state}-{index}", fp, state, now - timedelta(seconds=age)))
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(insert(BatchItem), items)
            await connection.execute(
                insert(BatchRecord),
                [
                    _batch("sub-open", "in_progress", now - timedelta(seconds=300), id="msgbatch_01open",
                           polls=3, next_poll_at=now + timedelta(seconds=600)),
                    _batch("sub-new", "creating", now - timedelta(seconds=10), request_count=1),
                    _batch("sub-done", "ended", now - timedelta(hours=2), id="msgbatch_01done", polls=7,
                           ended_at=now - timedelta(hours=1)),
                ],
            )  # fmt: skip
            await connection.execute(
                insert(BatchProcess),
                [
                    {"id": LIVE, "host": "host-a", "pid": 101, "credential_fps": [FP_HELD],
                     "workers": ["curate", "distill"], "started_at": now - timedelta(hours=1),
                     "heartbeat_at": now - timedelta(seconds=5), "stopped_at": None},
                    {"id": STALE, "host": "host-b", "pid": 202, "credential_fps": [FP_WAITING, FP_HELD],
                     "workers": [], "started_at": now - timedelta(hours=1),
                     "heartbeat_at": now - timedelta(seconds=600), "stopped_at": None},
                    {"id": STOPPED, "host": "host-c", "pid": 303, "credential_fps": [FP_WAITING],
                     "workers": ["distill"], "started_at": now - timedelta(hours=1),
                     "heartbeat_at": now - timedelta(seconds=100), "stopped_at": now - timedelta(seconds=100)},
                ],
            )  # fmt: skip
            await connection.execute(
                insert(BatchLease),
                [{"key": f"fp:{FP_HELD}", "holder": LIVE, "expires_at": now + timedelta(seconds=900)}],
            )
    finally:
        await engine.dispose()


@pytest.fixture
async def pool_url(migrated_url: str) -> str:
    await fill_pool(migrated_url, datetime.now(UTC))
    return migrated_url


def _json(url: str, capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    assert main(["queue", "--db", url, "--json", *extra]) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def _counts(states: dict[str, int]) -> dict[str, int]:
    every = ("queued", "submitting", "in_batch", "rescued", "done", "failed", "delivered", "handler_failed")
    return {state: states.get(state, 0) for state in every}


def test_queue_json_counts_items_and_flags_the_unheld_credential(
    pool_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _json(pool_url, capsys)
    assert data["empty"] is False
    assert data["stale_after_s"] == 60.0
    assert data["totals"] == _counts({"queued": 5, "in_batch": 2, "done": 1, "delivered": 4, "failed": 1})
    waiting, held = data["credentials"]
    assert waiting["credential_fp"] == FP_WAITING
    assert waiting["counts"] == _counts(ITEMS[FP_WAITING])
    assert (waiting["active"], waiting["total"]) == (2, 3)
    assert (waiting["held"], waiting["live_holders"], waiting["waiting_for_credential"]) == (False, 0, True)
    assert 890 <= waiting["oldest_queued_age_s"] <= 1000
    assert held["credential_fp"] == FP_HELD
    assert held["counts"] == _counts(ITEMS[FP_HELD])
    assert (held["active"], held["total"]) == (5, 10)
    assert (held["held"], held["live_holders"], held["waiting_for_credential"]) == (True, 1, False)
    assert 110 <= held["oldest_queued_age_s"] <= 220


def test_queue_json_lists_batches_processes_and_leases(
    pool_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _json(pool_url, capsys)
    batches = data["batches"]
    assert [(b["submission_id"], b["batch_id"], b["status"], b["finished"]) for b in batches] == [
        ("sub-open", "msgbatch_01open", "in_progress", False),
        ("sub-new", None, "creating", False),
        ("sub-done", "msgbatch_01done", "ended", True),
    ]
    assert [(b["request_count"], b["polls"]) for b in batches] == [(2, 3), (1, 0), (2, 7)]
    assert 500 <= batches[0]["next_poll_in_s"] <= 600
    assert batches[1]["next_poll_in_s"] is None
    assert 300 <= batches[0]["age_s"] <= 400
    assert batches[2]["ended_at"].endswith("Z")
    processes = {p["id"]: p for p in data["processes"]}
    assert {pid: p["state"] for pid, p in processes.items()} == {
        LIVE: "live",
        STALE: "stale",
        STOPPED: "stopped",
    }
    assert [p["id"] for p in data["processes"]] == [LIVE, STOPPED, STALE]  # newest heartbeat first
    assert (processes[LIVE]["credentials_held"], processes[LIVE]["workers"]) == (1, ["curate", "distill"])
    assert processes[STALE]["credentials_held"] == 2
    assert processes[STOPPED]["stopped_at"].endswith("Z")
    assert processes[LIVE]["pid"] == 101
    assert processes[LIVE]["host"] == "host-a"
    (lease,) = data["leases"]
    assert (lease["key"], lease["holder"], lease["expired"]) == (f"fp:{FP_HELD}", LIVE, False)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", data["now"])


def test_queue_output_has_no_column_that_could_hold_a_secret(
    pool_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _json(pool_url, capsys)
    assert set(data) == {
        "now",
        "stale_after_s",
        "empty",
        "totals",
        "credentials",
        "batches",
        "processes",
        "leases",
    }
    assert set(data["credentials"][0]) == {
        "credential_fp", "counts", "active", "total", "oldest_queued_at", "oldest_queued_age_s",
        "live_holders", "held", "waiting_for_credential",
    }  # fmt: skip
    assert set(data["batches"][0]) == {
        "submission_id", "batch_id", "provider", "credential_fp", "status", "finished", "request_count",
        "polls", "created_at", "age_s", "ended_at", "next_poll_at", "next_poll_in_s",
    }  # fmt: skip
    assert set(data["processes"][0]) == {
        "id", "host", "pid", "state", "credentials_held", "workers", "heartbeat_at", "heartbeat_age_s",
        "stopped_at",
    }  # fmt: skip
    assert set(data["leases"][0]) == {"key", "holder", "expires_at", "expires_in_s", "expired"}
    fingerprints = {c["credential_fp"] for c in data["credentials"]} | {
        b["credential_fp"] for b in data["batches"]
    }
    assert all(re.fullmatch(r"[0-9a-f]{16}", fp) for fp in fingerprints)
    monkeypatch.setenv("COLUMNS", "250")
    assert main(["queue", "--db", pool_url]) == 0
    captured = capsys.readouterr()
    assert PLANTED not in json.dumps(data)
    assert PLANTED not in captured.out + captured.err


def _row(out: str, needle: str) -> str:
    (line,) = [line for line in out.splitlines() if needle in line]
    return line


def test_queue_prints_tables_with_the_waiting_credential_spelled_out(
    pool_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # rich wraps at 80 columns when output is not a terminal
    assert main(["queue", "--db", pool_url]) == 0
    out = capsys.readouterr().out
    for title in ("items by credential", "batches", "processes", "leases"):
        assert title in out
    assert "held by a live process" in out
    waiting = _row(out, FP_WAITING)
    assert "no — waiting for its credential" in waiting
    assert re.search(r"│\s+2\s+│\s+0\s+│\s+0\s+│\s+0\s+│\s+0\s+│\s+1\s+│\s+0\s+│\s+0\s+│\s+1[45]m", waiting)
    assert FP_HELD in _row(out, "yes (1)")
    assert "1 credential(s) not held by any live process" in out
    assert "msgbatch_01open" in _row(out, "in_progress")
    assert "(sub-new)" in _row(out, "creating")
    assert re.search(r"│ live\s+│\s+1 │ curate, distill\s+│ \d+s ago", _row(out, f"{LIVE} │ host-a"))
    assert "│ stale " in _row(out, f"{STALE} │")
    assert "│ stopped " in _row(out, f"{STOPPED} │")
    assert re.search(rf"fp:{FP_HELD}\s+│ {LIVE} │ 1[45]m", out)
    assert "no queued items or batches" not in out


def test_a_longer_stale_after_makes_the_stale_holder_live(
    pool_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _json(pool_url, capsys, "--stale-after", "3600")
    states = {p["id"]: p["state"] for p in data["processes"]}
    assert states == {LIVE: "live", STALE: "live", STOPPED: "stopped"}
    waiting = data["credentials"][0]
    assert (waiting["credential_fp"], waiting["held"], waiting["waiting_for_credential"]) == (
        FP_WAITING,
        True,
        False,
    )
    assert data["credentials"][1]["live_holders"] == 2


async def test_pool_status_measures_ages_from_the_given_now(migrated_url: str) -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    await fill_pool(migrated_url, now)
    async with PoolStore(migrated_url) as store:
        status = await pool_status(store, now=now + timedelta(seconds=60), stale_after=30)
        with pytest.raises(ValueError, match="naive"):
            await pool_status(store, now=datetime(2026, 12, 1, 12, 0))
    waiting, held = status.credentials
    assert (waiting.oldest_queued_age, held.oldest_queued_age) == (960.0, 180.0)
    assert [(p.id, p.state, p.heartbeat_age) for p in status.processes] == [
        (LIVE, "stale", 65.0),
        (STOPPED, "stopped", 160.0),
        (STALE, "stale", 660.0),
    ]
    assert not held.held
    assert held.waiting_for_credential
    assert [(b.submission_id, b.age, b.next_poll_in) for b in status.batches] == [
        ("sub-open", 360.0, 540.0),
        ("sub-new", 70.0, None),
        ("sub-done", 7260.0, None),
    ]
    assert status.leases[0].expires_in == 840.0
    assert status.to_json()["now"] == "2026-12-01T12:01:00Z"


async def test_only_the_newest_twenty_finished_batches_are_listed(migrated_url: str) -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    rows = [_batch(f"sub-{n:02d}", "ended", now - timedelta(minutes=n)) for n in range(25)]
    rows.append(_batch("sub-old-open", "in_progress", now - timedelta(days=3)))
    engine = create_engine(migrated_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(insert(BatchRecord), rows)
    finally:
        await engine.dispose()
    async with PoolStore(migrated_url) as store:
        status = await pool_status(store, now=now)
    assert [b.submission_id for b in status.batches] == ["sub-old-open"] + [f"sub-{n:02d}" for n in range(20)]


def test_an_empty_pool_says_so(
    migrated_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["queue", "--db", migrated_url]) == 0
    out = capsys.readouterr().out
    assert "no queued items or batches" in out
    assert "no pool processes registered" in out
    data = _json(migrated_url, capsys)
    assert data["empty"] is True
    assert (data["credentials"], data["batches"], data["processes"], data["leases"]) == ([], [], [], [])


def test_a_missing_sqlite_file_fails_naming_db_upgrade_and_is_not_created(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["queue", "--db", sqlite_url]) == 1
    err = capsys.readouterr().err
    assert "no such database file" in err
    assert "lore db upgrade" in err
    assert not Path(sqlite_url.removeprefix("sqlite+aiosqlite:///")).exists()


def test_an_unmigrated_sqlite_file_fails_naming_db_upgrade(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = Path(sqlite_url.removeprefix("sqlite+aiosqlite:///"))
    sqlite3.connect(path).close()  # an empty database file: no tables, no revision
    assert main(["queue", "--db", sqlite_url, "--json"]) == 1
    captured = capsys.readouterr()
    assert "database schema is at nothing" in captured.err
    assert "lore db upgrade" in captured.err
    assert captured.out == ""


@pytest.fixture
async def old_schema_url(store_url: str) -> str:
    await upgrade(store_url, "0003")  # the revision before the pool tables
    return store_url


def test_an_out_of_date_schema_fails_naming_db_upgrade(
    old_schema_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["queue", "--db", old_schema_url]) == 1
    err = capsys.readouterr().err
    assert "database schema is at 0003" in err
    assert "lore db upgrade" in err


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://lore@db/lore", "unsupported database URL"),
        ("::not a url::", "invalid database URL"),
        ("postgresql+asyncpg://lore:hunter2@db", "names no database"),
    ],
)
def test_a_bad_url_fails_with_exit_code_1(url: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["queue", "--db", url]) == 1
    err = capsys.readouterr().err
    assert message in err
    assert "hunter2" not in err


@pytest.mark.parametrize("value", ["0", "-5", "soon"])
def test_a_bad_stale_after_is_a_usage_error(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["queue", "--stale-after", value]) == 2
    assert "--stale-after" in capsys.readouterr().err


def test_without_db_the_url_comes_from_lore_db_url(
    pool_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LORE_DB_URL", pool_url)
    assert main(["queue", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["queued"] == 5
