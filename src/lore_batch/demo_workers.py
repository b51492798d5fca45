"""The worker half of ``lore demo``: a short scripted coding session stored, distilled, curated and checked
for retention by the engine's workers, through the real SDK on the emulator, in a throwaway SQLite file."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lore_batch.clock import ManualClock
from lore_batch.emulator import AnthropicEmulator
from lore_batch.sync_client import AnthropicLLMClient
from lore_core.config import LoreConfig
from lore_core.ingest import MessageLog
from lore_core.store import SqlSessionStore
from lore_core.workers import WorkerContext, WorkerScheduler

__all__ = ["WorkerDemoReport", "WorkerDemoRow", "demo_session", "run_worker_demo"]

SESSION_ID = "demo-session"
PROJECT = "demo-project"
MODEL = "claude-sonnet-4-6"
START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
_FILES = (
    "src/app/store.py",
    "src/app/api.py",
    "tests/test_store.py",
    "tests/test_api.py",
    "migrations/env.py",
)


def demo_session(turns: int = 6) -> list[dict[str, Any]]:
    """A scripted coding session: requests, tool calls (reads, test runs with failures), answers."""
    messages: list[dict[str, Any]] = []
    for turn in range(turns):
        path = _FILES[turn % len(_FILES)]
        read_id, test_id = f"toolu_{turn:02d}_read", f"toolu_{turn:02d}_test"
        messages += [
            {"role": "user", "content": f"From now on keep {path} under 400 lines. Why does its test fail?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": f"Reading {path} first."},
                    {"type": "tool_use", "id": read_id, "name": "read", "input": {"path": path}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": read_id,
                        "content": "\n".join(f"{n}: def handler_{n}(session_id): ..." for n in range(1, 40)),
                    }
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": test_id, "name": "bash", "input": {"command": "pytest -x -q"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": test_id,
                        "content": f"FAILED tests/test_store.py::test_turn_{turn} - IntegrityError: UNIQUE "
                        f"constraint failed: messages.id\n1 failed, {20 + turn} passed in 1.{turn}2s",
                    }
                ],
            },
            {
                "role": "assistant",
                "content": f"The insert in {path} ignores the session id, so two sessions collide on "
                "messages.id. I keyed the table by (session_id, id) and the test passes in 310 ms.",
            },
        ]
    return messages


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerDemoRow:
    """One distillation row of the demo."""

    generation: int
    kind: str
    sources: int
    source_tokens: int
    tokens: int
    retention: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerDemoReport:
    """What the workers did with the demo session."""

    messages: int
    undistilled: int
    rows: tuple[WorkerDemoRow, ...]
    knowledge: tuple[str, ...]
    calls_by_worker: dict[str, int]


async def run_worker_demo(
    *, turns: int = 6, seed: int = 0, on_step: Callable[[str], None] | None = None
) -> WorkerDemoReport:
    """Store the demo session, run one idle-work pass (distill, curate, validate) and report it."""

    def step(text: str) -> None:
        if on_step is not None:
            on_step(text)

    clock = ManualClock(start=START.timestamp(), auto_advance=True)
    emulator = AnthropicEmulator(clock=clock, seed=seed)
    with tempfile.TemporaryDirectory(prefix="lore-demo-") as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'demo.db'}"
        async with await SqlSessionStore.open(url) as store, emulator.client(api_key="sk-ant-demo") as client:
            context = WorkerContext(
                store=store, llm=AnthropicLLMClient(client, clock=clock), config=LoreConfig(), clock=clock
            )
            scheduler = WorkerScheduler(context)
            messages = demo_session(turns)
            await store.ensure_session(SESSION_ID, PROJECT, MODEL, START)
            await MessageLog(store).record(SESSION_ID, messages, now=START + timedelta(minutes=5))
            await store.save_state(SESSION_ID, turns_since_curation=turns)
            step(f"stored {len(messages)} messages of a {turns}-turn coding session (SQLite, Alembic head)")
            await scheduler.idle_work(SESSION_ID)
            await scheduler.run_until_idle()
            step("idle work: forced distillation, retention checks, curation")
            rows = await store.list_distillations(SESSION_ID, include_archived=True)
            knowledge = await store.list_knowledge(PROJECT)
            runs = await store.list_worker_runs(session_id=SESSION_ID, limit=1000)
            calls: dict[str, int] = {}
            for run in runs:
                calls[run.worker] = calls.get(run.worker, 0) + 1
            return WorkerDemoReport(
                messages=await store.count_messages(SESSION_ID),
                undistilled=await store.count_messages(SESSION_ID, undistilled_only=True),
                rows=tuple(
                    WorkerDemoRow(
                        generation=row.generation,
                        kind=row.kind,
                        sources=len(row.source_ids),
                        source_tokens=row.source_tokens,
                        tokens=row.token_count,
                        retention=row.retention_score,
                    )
                    for row in rows
                ),
                knowledge=tuple(sorted(f"({entry.category}) {entry.title}" for entry in knowledge)),
                calls_by_worker=dict(sorted(calls.items())),
            )
