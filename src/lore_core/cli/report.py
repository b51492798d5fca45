"""The tables ``lore demo`` and ``lore replay`` print, their ``--json`` form, ``--plot``, and the progress bar."""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Callable, Iterator
from decimal import Decimal

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lore_batch.replay.report import PolicyTotals, ReplayReport, report_to_json

__all__ = ["add_output_arguments", "emit", "progress"]

_NAMES = {"lore": "lore-memory", "full_history": "full history", "compaction_80": "compaction at 80%"}


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """``--plot FILE.png`` and ``--json``, shared by ``demo`` and ``replay``."""
    parser.add_argument("--plot", metavar="FILE.png", help="also draw tokens and cost per turn to a PNG file")
    parser.add_argument("--json", action="store_true", help="print a JSON report instead of tables")


@contextlib.contextmanager
def progress(console: Console, description: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on ``console``; yields the ``on_turn(done, total)`` callback that moves it."""
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    with bar:
        task = bar.add_task(description, total=None)

        def on_turn(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield on_turn


def emit(report: ReplayReport, *, args: argparse.Namespace, console: Console, title: str) -> int:
    """Print the report (tables, or JSON with ``--json``) and draw ``--plot``; return the exit code."""
    if args.plot:
        from lore_batch.replay.plot import write_plot

        write_plot(report, args.plot)
    if args.json:
        data = report_to_json(report)
        if args.plot:
            data["plot"] = str(args.plot)
        print(json.dumps(data, indent=2))
        return 0
    _tables(console, report, title=title)
    if args.plot:
        console.print(f"plot written to {args.plot}")
    return 0


def _usd(value: Decimal) -> str:
    return f"${value:,.4f}" if value < 1 else f"${value:,.2f}"


def _tokens(value: int) -> str:
    return f"{value / 1_000_000:,.2f}M" if value >= 1_000_000 else f"{value:,}"


def _tables(console: Console, report: ReplayReport, *, title: str) -> None:
    span = report.ended_at - report.started_at
    hours, rest = divmod(int(span.total_seconds()), 3600)
    console.print(
        f"[bold]{title}[/bold]: {report.human_turns} human turns, {len(report.turns)} model calls, "
        f"{report.messages} messages over {hours}h{rest // 60:02d}m; {report.model}, "
        f"{report.context_window:,}-token window, {report.backend}"
    )
    layers = ", ".join(f"layer {layer}: {count}" for layer, count in sorted(report.layers.items()))
    console.print(f"layers used (model calls): {layers}")

    policies: list[PolicyTotals] = [report.lore, *report.baselines]
    table = Table(title="the agent's calls: lore-memory against the baselines (simulated prompt caching)")
    table.add_column("")
    for policy in policies:
        table.add_column(_NAMES.get(policy.name, policy.name), justify="right")
    rows: list[tuple[str, Callable[[PolicyTotals], str]]] = [
        ("requests (incl. compactions)", lambda p: f"{p.requests:,}"),
        ("compactions", lambda p: "-" if p.name == "lore" else f"{p.compactions:,}"),
        ("tokens sent", lambda p: _tokens(p.tokens_sent)),
        ("  cache reads", lambda p: _tokens(p.cache_read_tokens)),
        ("  cache writes", lambda p: _tokens(p.cache_write_tokens)),
        ("  uncached", lambda p: _tokens(p.input_tokens)),
        ("largest request", lambda p: f"{p.max_request_tokens:,}"),
        ("agent calls cost", lambda p: _usd(p.cost_usd)),
    ]
    for label, cell in rows:
        table.add_row(label, *(cell(policy) for policy in policies))
    table.add_row("worker calls cost", _usd(report.workers.cost_usd), *("-" for _ in report.baselines))
    table.add_row(
        "[bold]total[/bold]",
        f"[bold]{_usd(report.lore_total_cost_usd)}[/bold]",
        *(f"[bold]{_usd(b.cost_usd)}[/bold]" for b in report.baselines),
    )
    ratios = [report.ratio(b.name) for b in report.baselines]
    table.add_row("lore-memory / baseline", "", *("-" if r is None else f"{r:.2f}x" for r in ratios))
    full = report.baselines[0].tokens_sent if report.baselines else 0
    if full:
        table.add_row("tokens sent / full history", f"{report.lore.tokens_sent / full:.2f}", "1.00", "")
    console.print(table)

    workers = Table(title="worker calls by route (request log; batch answers at batch prices)")
    for column in ("route", "calls", "cost", "at list price"):
        workers.add_column(column, justify="right" if column != "route" else "left")
    for route in report.workers.routes:
        workers.add_row(route.route, f"{route.calls:,}", _usd(route.cost_usd), _usd(route.sync_cost_usd))
    workers.add_row(
        "all", f"{report.workers.calls:,}", _usd(report.workers.cost_usd), _usd(report.workers.sync_cost_usd)
    )
    console.print(workers)
    by_worker = ", ".join(f"{name} {count}" for name, count in report.workers.by_worker.items()) or "none"
    console.print(
        f"workers: {by_worker}; {report.workers.batches_submitted} batches; batch savings "
        f"{_usd(report.workers.batch_savings_usd)} (request log total {_usd(report.workers.logged_cost_usd)})"
    )

    current = [row for row in report.distillations if not row.archived]
    scores = list(report.retention)
    source = sum(row.source_tokens for row in current if row.generation == 0)
    kept = sum(row.tokens for row in current)
    retention = (
        f"retention mean {sum(scores) / len(scores):.2f}, min {min(scores):.2f} over {len(scores)} rows"
        if scores
        else "no retention score yet"
    )
    generations = sorted({row.generation for row in current})
    console.print(
        f"distillations: {len(current)} current rows (generations {', '.join(map(str, generations)) or '-'}), "
        f"{len(report.distillations) - len(current)} archived; {retention}"
        + (f"; {_tokens(source)} source tokens in gen-0 rows, {_tokens(kept)} kept" if source else "")
    )
    if report.agent_usage is not None:
        usage = report.agent_usage
        console.print(
            f"the API ({report.backend}) reported for the agent's {usage.calls} calls: "
            f"{_tokens(usage.input_tokens)} uncached, {_tokens(usage.cache_read_tokens)} cache reads, "
            f"{_tokens(usage.cache_write_tokens)} cache writes, {_tokens(usage.output_tokens)} output tokens"
        )
