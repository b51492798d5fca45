"""``lore inspect SESSION`` on a real SQLite file after the workers ran."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lore_batch import AnthropicLLMClient, RetryPolicy
from lore_batch.emulator import AnthropicEmulator
from lore_core.cli import main
from lore_core.clock import ManualClock
from lore_core.config import LoreConfig
from lore_core.ingest import MessageLog
from lore_core.store import SqlSessionStore
from lore_core.workers import WorkerContext, WorkerScheduler

from ..engine.test_failures import coding_turns

START = datetime(2026, 2, 25, 22, 0, tzinfo=UTC)


@pytest.fixture
async def worked_db(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'inspect.db'}"
    clock = ManualClock(start=START.timestamp(), auto_advance=True)
    emulator = AnthropicEmulator(clock=clock)
    async with await SqlSessionStore.open(url) as store, emulator.client() as client:
        context = WorkerContext(
            store=store,
            llm=AnthropicLLMClient(client, clock=clock, retry=RetryPolicy(background_attempts=1)),
            config=LoreConfig(),
            clock=clock,
        )
        scheduler = WorkerScheduler(context)
        await store.ensure_session("chat-7", "proj", "claude-sonnet-4-6", START)
        await MessageLog(store).record("chat-7", coding_turns(4), now=START)
        await store.save_state("chat-7", turns_since_curation=4)
        emulator.faults.fail_next("messages", 500, count=1)  # one failed worker call to show
        await scheduler.idle_work("chat-7")
        await scheduler.idle_work("chat-7")
        await scheduler.run_until_idle()
    return url


def test_inspect_json_reports_counts_rows_knowledge_and_errors(
    worked_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["inspect", "chat-7", "--db", worked_db, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["session_id"] == "chat-7"
    assert report["messages"] == 16
    assert report["undistilled"] == 0
    assert report["by_generation"]["0"]["current"] >= 1
    assert all(row["retention_score"] is not None for row in report["distillations"])
    assert report["knowledge"], "the curator created entries"
    assert [(e["worker"], e["error_type"]) for e in report["worker_errors"]] == [
        ("distill", "LLMUnavailableError")
    ]
    assert report["worker_calls"] >= 3


def test_inspect_prints_tables(
    worked_db: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps at 80 columns when output is not a terminal
    assert main(["inspect", "chat-7", "--db", worked_db]) == 0
    out = capsys.readouterr().out
    assert "distillations" in out
    assert "knowledge" in out
    assert "LLMUnavailableError" in out


def test_inspect_of_an_unknown_session_fails_clearly(
    worked_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["inspect", "nope", "--db", worked_db]) == 1
    assert "unknown session 'nope'" in capsys.readouterr().err
