"""``lore demo``: the main job, offline on the built-in emulator."""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import asdict
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "demo",
        help="run an offline round trip on the built-in Anthropic emulator",
        description=(
            "Runs a synchronous call and a 3-request Message Batch through the real anthropic SDK against "
            "the "
            "built-in emulator (no network, simulated time) and prints what happened and what it cost."
        ),
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for the emulator (result order, outputs)")
    parser.add_argument("--json", action="store_true", help="print a JSON report instead of tables")
    parser.set_defaults(handler=_run)


def _decimal_default(value: object) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(type(value).__name__)


def _run(args: argparse.Namespace) -> int:
    from lore_batch.demo import run_roundtrip_demo
    from lore_batch.demo_workers import run_worker_demo

    console = Console(stderr=bool(args.json))
    if args.json:
        report = asyncio.run(run_roundtrip_demo(seed=args.seed))
        workers = asyncio.run(run_worker_demo(seed=args.seed))
        data = asdict(report)
        data["workers"] = asdict(workers)
        print(json.dumps(data, default=_decimal_default, indent=2))
        return 0

    console.print("[bold]lore demo[/bold]: offline round trip on the built-in Anthropic emulator")
    with console.status("working"):
        report = asyncio.run(run_roundtrip_demo(seed=args.seed, on_step=lambda s: console.print(f"  • {s}")))

    table = Table(title=f"batch {report.batch_id}: {report.batch_status}")
    table.add_column("custom_id")
    table.add_column("result")
    table.add_column("input tok", justify="right")
    table.add_column("output tok", justify="right")
    table.add_column("text")
    for line in report.lines:
        table.add_row(
            line.custom_id, line.result_type, str(line.input_tokens), str(line.output_tokens), line.text[:60]
        )
    console.print(table)

    costs = Table(title="what it cost (emulator billing, shipped price catalog)")
    costs.add_column("route")
    costs.add_column("USD", justify="right")
    costs.add_row("synchronous call", f"{report.sync_cost_usd:.6f}")
    costs.add_row("batch (3 requests)", f"{report.batch_cost_usd:.6f}")
    costs.add_row("same batch at sync prices", f"{report.batch_cost_at_sync_prices_usd:.6f}")
    console.print(costs)
    console.print(
        f"The batch was polled {report.polls} times over {report.simulated_seconds:.0f} s of simulated time; "
        f"the emulator logged {report.requests_logged} requests. Sync reply: {report.sync_text[:60]!r}"
    )

    console.print("\n[bold]the engine's workers[/bold] on a scripted coding session")
    with console.status("working"):
        workers = asyncio.run(run_worker_demo(seed=args.seed, on_step=lambda s: console.print(f"  • {s}")))
    rows = Table(title="distillations")
    for column in ("gen", "kind", "sources", "source tok", "tok", "retention"):
        rows.add_column(column, justify="right")
    for row in workers.rows:
        retention = "" if row.retention is None else f"{row.retention:.2f}"
        rows.add_row(
            str(row.generation),
            row.kind,
            str(row.sources),
            str(row.source_tokens),
            str(row.tokens),
            retention,
        )
    console.print(rows)
    calls = ", ".join(f"{worker} {count}" for worker, count in workers.calls_by_worker.items())
    console.print(
        f"{workers.messages} messages stored, {workers.undistilled} left undistilled; worker calls: {calls}; "
        f"knowledge: {'; '.join(workers.knowledge) or 'none'}"
    )
    return 0
