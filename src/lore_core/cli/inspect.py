"""``lore inspect SESSION``: counts, distillations by generation, knowledge and worker errors."""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import asdict
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from lore_core.inspection import SessionReport

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "inspect",
        help="show what the store holds for one session",
        description="Counts, distillations by generation with retention scores, knowledge entries and the "
        "last worker errors of one session.",
    )
    parser.add_argument("session", help="the session id")
    parser.add_argument("--db", default=None, help="database URL (default: LORE_DB_URL or the data dir)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.set_defaults(handler=_run)


def _json_default(value: object) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _run(args: argparse.Namespace) -> int:
    from lore_core.inspection import inspect_session
    from lore_core.store import SqlSessionStore

    async def go() -> SessionReport:
        async with await SqlSessionStore.open(args.db) as store:
            return await inspect_session(store, args.session)

    report = asyncio.run(go())
    if args.json:
        data = asdict(report)
        data["by_generation"] = {
            str(gen): {"current": live, "archived": archived}
            for gen, (live, archived) in report.by_generation().items()
        }
        print(json.dumps(data, default=_json_default, indent=2))
        return 0
    _render(report)
    return 0


def _render(report: SessionReport) -> None:
    console = Console()
    console.print(
        f"[bold]{report.session_id}[/bold] (project {report.project}, model {report.model}): "
        f"{report.messages} messages, {report.undistilled} undistilled ({report.undistilled_tokens} tokens), "
        f"{report.worker_calls} worker runs"
    )
    rows = Table(title="distillations")
    for column in ("seq", "gen", "kind", "state", "sources", "src tok", "tok", "retention", "rev", "route"):
        rows.add_column(column, justify="right" if column not in ("kind", "state", "route") else "left")
    for row in report.distillations:
        score = "" if row.retention_score is None else f"{row.retention_score:.2f}"
        if row.retention_initial is not None and row.retention_initial != row.retention_score:
            score = f"{row.retention_initial:.2f}→{score}"
        rows.add_row(
            str(row.seq),
            str(row.generation),
            row.kind,
            "archived" if row.archived else "current",
            str(row.sources),
            str(row.source_tokens),
            str(row.tokens),
            score,
            str(row.revision),
            row.route or "",
        )
    console.print(rows)
    generations = ", ".join(
        f"gen {gen}: {live} current, {archived} archived"
        for gen, (live, archived) in report.by_generation().items()
    )
    console.print(generations or "no distillations yet")
    knowledge = Table(title="knowledge")
    for column in ("scope", "category", "title", "confidence"):
        knowledge.add_column(column)
    for entry in report.knowledge:
        knowledge.add_row(entry.scope, entry.category, entry.title, f"{entry.confidence:.2f}")
    console.print(knowledge)
    if report.worker_errors:
        errors = Table(title="last worker errors")
        for column in ("when", "worker", "status", "error", "detail"):
            errors.add_column(column, overflow="fold")
        for run in report.worker_errors:
            errors.add_row(
                run.started_at.isoformat(timespec="seconds"),
                run.worker,
                run.status,
                run.error_type or "",
                run.error_detail or "",
            )
        console.print(errors)
    else:
        console.print("no worker errors recorded")
