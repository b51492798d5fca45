"""Tokens and cost per turn, lore-memory against the baselines, as a PNG (matplotlib's Agg backend: no display)."""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lore_batch.replay.report import ReplayReport
from lore_core.errors import ConfigError

__all__ = ["write_plot"]

_LABELS = {"lore": "lore-memory", "full_history": "full history", "compaction_80": "compaction at 80%"}
_COLOURS = {"lore": "#1b7f3b", "full_history": "#b03a2e", "compaction_80": "#2e5fb0"}


def write_plot(report: ReplayReport, path: str | Path) -> Path:
    """Draw three panels (tokens sent per turn; simulated cost per turn; cumulative cost, lore-memory's with its
    workers' calls) and save them to ``path`` as PNG.

    Raises:
        ConfigError: the file cannot be written.

    Example::

        write_plot(report, "demo.png")
    """
    target = Path(path)
    figure = Figure(figsize=(11, 9), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    tokens_axes, cost_axes, total_axes = figure.subplots(3, 1, sharex=True)
    turns = list(range(1, len(report.turns) + 1))
    for policy in (*report.baselines, report.lore):
        label = _LABELS.get(policy.name, policy.name)
        colour = _COLOURS.get(policy.name)
        width = 1.6 if policy.name == "lore" else 1.0
        tokens_axes.plot(
            turns, [t / 1000 for t in policy.per_turn_tokens], label=label, color=colour, lw=width
        )
        cost_axes.plot(
            turns, [float(c) for c in policy.per_turn_cost_usd], label=label, color=colour, lw=width
        )
        running, cumulative = 0.0, []
        for cost in policy.per_turn_cost_usd:
            running += float(cost)
            cumulative.append(running)
        total_axes.plot(turns, cumulative, label=f"{label}: ${running:,.2f}", color=colour, lw=width)
        if policy.name == "lore" and report.workers.cost_usd:
            workers = float(report.workers.cost_usd)
            total_axes.plot(
                turns,
                [value + workers * (n / len(turns)) for n, value in enumerate(cumulative, start=1)],
                label=f"{label} + workers: ${running + workers:,.2f}",
                color=colour,
                lw=width,
                ls="--",
            )
    tokens_axes.axhline(report.context_window / 1000, color="grey", ls=":", lw=1, label="context window")
    tokens_axes.set_ylabel("input tokens per call (K)")
    tokens_axes.set_title(f"{report.source}: {len(report.turns)} model calls, {report.model}")
    tokens_axes.legend(loc="upper left", fontsize="small")
    cost_axes.set_ylabel("USD per call (prompt caching)")
    cost_axes.legend(loc="upper left", fontsize="small")
    total_axes.set_ylabel("cumulative USD")
    total_axes.set_xlabel("model call")
    total_axes.legend(loc="upper left", fontsize="small")
    for axes in (tokens_axes, cost_axes, total_axes):
        axes.grid(alpha=0.3)
    try:
        figure.savefig(target, format="png")
    except OSError as exc:
        raise ConfigError(f"cannot write the plot to {str(target)!r}") from exc
    return target
