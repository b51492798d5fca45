"""What a replay (or ``lore demo``) measured: plain frozen records, and their JSON form."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

__all__ = [
    "AgentUsage",
    "DistillationRow",
    "PolicyTotals",
    "ReplayReport",
    "RouteTotals",
    "TurnRecord",
    "WorkerTotals",
    "report_to_json",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnRecord:
    """One model call of lore-memory's session: when, which layer, and what the transform sent."""

    index: int
    at: datetime
    layer: int
    history_tokens: int
    tokens_sent: int
    cache_read_tokens: int
    cache_write_tokens: int
    output_tokens: int
    cost_usd: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyTotals:
    """One way of sending the conversation, summed: lore-memory or a baseline.

    ``per_turn_tokens`` and ``per_turn_cost_usd`` have one value per turn: the input of the turn's own call, and
    the cost of every call of the turn (a baseline's compaction call counts in the turn it precedes; its tokens
    count in ``tokens_sent``).
    """

    name: str
    requests: int
    compactions: int
    tokens_sent: int
    input_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    output_tokens: int
    max_request_tokens: int
    cost_usd: Decimal
    per_turn_tokens: tuple[int, ...]
    per_turn_cost_usd: tuple[Decimal, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteTotals:
    """Worker calls answered on one route, and what they cost (and would have cost at list price)."""

    route: str
    calls: int
    cost_usd: Decimal
    sync_cost_usd: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerTotals:
    """The background calls of the engine's workers, from the batch client's request log.

    ``cost_usd`` is priced by the simulator (batch rates for batch answers); ``logged_cost_usd`` is the sum the
    request log itself recorded, for comparison. ``batch_savings_usd`` is list price minus what was paid.
    """

    routes: tuple[RouteTotals, ...]
    by_worker: Mapping[str, int]
    cost_usd: Decimal
    sync_cost_usd: Decimal
    batch_savings_usd: Decimal
    logged_cost_usd: Decimal
    batches_submitted: int

    @property
    def calls(self) -> int:
        """Every worker call, whatever its route."""
        return sum(route.calls for route in self.routes)


@dataclass(frozen=True, slots=True, kw_only=True)
class DistillationRow:
    """One distillation the workers wrote (archived rows included)."""

    generation: int
    kind: str
    sources: int
    source_tokens: int
    tokens: int
    retention: float | None
    archived: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentUsage:
    """What the API itself reported for the agent's calls (``lore demo`` only; the emulator's counts offline)."""

    calls: int
    input_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    output_tokens: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayReport:
    """Everything one run measured. ``baselines`` are ``full_history`` then ``compaction_80``."""

    source: str
    format: str
    backend: Literal["emulator", "anthropic"]
    session_id: str
    model: str
    context_window: int
    max_output_tokens: int
    messages: int
    human_turns: int
    started_at: datetime
    ended_at: datetime
    layers: Mapping[int, int]
    turns: tuple[TurnRecord, ...]
    lore: PolicyTotals
    baselines: tuple[PolicyTotals, ...]
    workers: WorkerTotals
    distillations: tuple[DistillationRow, ...]
    agent_usage: AgentUsage | None = None

    @property
    def lore_total_cost_usd(self) -> Decimal:
        """The agent's calls as lore-memory sent them plus every worker call."""
        return self.lore.cost_usd + self.workers.cost_usd

    def baseline(self, name: str) -> PolicyTotals:
        """The baseline called ``name`` (``full_history`` or ``compaction_80``).

        Raises:
            KeyError: no such baseline.
        """
        for totals in self.baselines:
            if totals.name == name:
                return totals
        raise KeyError(name)

    def ratio(self, name: str) -> float | None:
        """lore-memory's total cost (workers included) over a baseline's; None when the baseline cost 0."""
        other = self.baseline(name).cost_usd
        return float(self.lore_total_cost_usd / other) if other else None

    @property
    def retention(self) -> Sequence[float]:
        """The retention scores of the current (not archived) rows that have one."""
        return [row.retention for row in self.distillations if row.retention is not None and not row.archived]


def report_to_json(report: ReplayReport, *, per_turn: bool = True) -> dict[str, Any]:
    """The report as JSON-ready data: decimals as strings, times as ISO 8601, plus the derived figures."""
    data = _plain(report)
    assert isinstance(data, dict)
    data["layers"] = {str(layer): count for layer, count in sorted(report.layers.items())}
    scores = list(report.retention)
    data["summary"] = {
        "lore_cost_usd": str(report.lore.cost_usd),
        "worker_cost_usd": str(report.workers.cost_usd),
        "lore_total_cost_usd": str(report.lore_total_cost_usd),
        **{f"{b.name}_cost_usd": str(b.cost_usd) for b in report.baselines},
        **{f"ratio_vs_{b.name}": report.ratio(b.name) for b in report.baselines},
        "lore_tokens_sent": report.lore.tokens_sent,
        **{f"{b.name}_tokens_sent": b.tokens_sent for b in report.baselines},
        "worker_calls": report.workers.calls,
        "batch_savings_usd": str(report.workers.batch_savings_usd),
        "retention_mean": sum(scores) / len(scores) if scores else None,
        "retention_min": min(scores) if scores else None,
    }
    if not per_turn:
        data.pop("turns", None)
        for policy in (data["lore"], *data["baselines"]):
            policy.pop("per_turn_tokens", None)
            policy.pop("per_turn_cost_usd", None)
    return data


def _plain(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: _plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value
