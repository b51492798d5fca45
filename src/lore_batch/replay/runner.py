"""Replaying a conversation through lore-memory, turn by turn, and pricing it against the two baselines.

Each assistant message of the transcript is one model call: the call sends every message before it. For each
call the session's ``transform`` builds what lore-memory would send, the prompt-cache simulator prices it (at
the call's recorded time), and ``record_usage`` reports the usage back (the API's own usage when the run asks
the backend's Messages API, the simulated usage otherwise). The engine's workers run on a
:class:`~lore_batch.BatchLLMClient`; offline, their work finishes between two turns, and the idle watcher's
ticks are replayed every 30 s of recorded time, so idle work happens where the recording went idle.

Time: the session runs on a :class:`~lore_batch.clock.ManualClock` moved to each recorded time; the workers'
calls run on the backend's clock (offline: a stepping clock moved from one deadline to the next, never behind
the session's). Offline, background jobs run one at a time in the order the engine started them, and new
rows get seeded ids (:mod:`~lore_batch.replay.offline`): the same transcript, options and seed give the same
figures.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from lore_batch.client import BatchLLMClient
from lore_batch.costlog import MemoryCostLog
from lore_batch.limits import RetryPolicy
from lore_batch.pricing import PriceRow, PricingCatalog
from lore_batch.replay.agent import AgentTotals, ask_agent
from lore_batch.replay.backend import Backend, emulator_backend
from lore_batch.replay.baselines import COMPACT_AT_80, FULL_HISTORY, Turn, run_baseline
from lore_batch.replay.offline import BackgroundWaiter, seeded_uuids, serialize_jobs
from lore_batch.replay.prompts import PromptSegments, system_blocks
from lore_batch.replay.report import DistillationRow, PolicyTotals, ReplayReport, TurnRecord, WorkerTotals
from lore_batch.replay.simulate import (
    PromptCacheSimulator,
    RequestCost,
    SimRequest,
    min_cacheable_tokens,
    simulate_requests,
)
from lore_batch.replay.workers import worker_totals
from lore_batch.sync_client import AnthropicLLMClient
from lore_core.clock import ManualClock
from lore_core.config import LoreConfig
from lore_core.errors import ConfigError
from lore_core.lore import Lore
from lore_core.messages import has_tool_use, message_kind
from lore_core.session import LoreSession
from lore_core.store.records import DistillationRecord
from lore_core.transcripts import Transcript

__all__ = ["DEFAULT_SYSTEM", "ReplayOptions", "TurnCallback", "replay_transcript"]

DEFAULT_SYSTEM: Final = (
    "You are a coding agent. Use the tools to read, search and edit files and to run commands; keep changes "
    "small and explain them."
)
_PROVIDER: Final = "anthropic"

TurnCallback = Callable[[int, int], None]
"""``on_turn(done, total)``: called after every replayed model call."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayOptions:
    """How to replay: the model and its window, what the agent sends besides the messages, and limits.

    ``context_window`` None means the model's (200K for Claude). ``max_output_tokens`` is the output reserve of
    lore-memory and the baselines alike. ``max_turns`` stops after that many model calls. ``call_agent`` sends
    every transformed request to the backend's Messages API (``agent_max_tokens`` tokens of answer, which the
    run ignores) and reports the API's usage to the session; otherwise the simulated usage is reported.
    ``config`` is the engine's; unless it sets them, its cache prices (which set the layer-0 cap) come from the
    price catalog.
    """

    model: str = "claude-sonnet-4-6"
    context_window: int | None = None
    max_output_tokens: int = 8_192
    system: str = DEFAULT_SYSTEM
    tools: tuple[Mapping[str, Any], ...] = ()
    max_turns: int | None = None
    seed: int = 0
    call_agent: bool = False
    agent_max_tokens: int = 32
    source: str = ""
    format: str = ""
    config: LoreConfig = field(default_factory=LoreConfig)


async def replay_transcript(
    transcript: Transcript,
    *,
    options: ReplayOptions | None = None,
    backend: Backend | None = None,
    on_turn: TurnCallback | None = None,
) -> ReplayReport:
    """Replay ``transcript`` through lore-memory (a throwaway SQLite store) and the two baselines.

    ``backend`` None: a fresh offline emulator, closed at the end (a given backend is left open).

    Raises:
        ConfigError: the model is not in the price catalog, or the transcript has no model call.
        LLMError: the agent's or the workers' calls failed beyond their retries.

    Example::

        report = await replay_transcript(load_transcript("session.jsonl").transcript)
        report.lore_total_cost_usd, report.baseline("full_history").cost_usd
    """
    opts = options or ReplayOptions()
    messages = [dict(item.message) for item in transcript.messages]
    times = [item.at for item in transcript.messages]
    ends = [index for index in range(1, len(messages)) if messages[index]["role"] == "assistant"]
    ends = ends[: opts.max_turns]
    if not ends:
        raise ConfigError("the transcript has no assistant message to replay")
    catalog = PricingCatalog.default()

    def prices(at: datetime) -> PriceRow:
        row = catalog.price(_PROVIDER, opts.model, at)
        if row is None:
            raise ConfigError(f"model {opts.model!r} is not in the price catalog")
        return row

    config = _with_prices(opts.config, prices(times[0]))
    segments = PromptSegments()
    segments.pin(messages)
    turns = [
        Turn(end=end, at=times[end - 1], output_tokens=segments.message(messages[end]).tokens) for end in ends
    ]
    own = backend is None
    used = backend or emulator_backend(seed=opts.seed, start=times[0].timestamp())
    run = _LoreRun(transcript, messages, turns, opts=opts, config=config, backend=used, segments=segments)
    ids = seeded_uuids(opts.seed) if used.wait_for_workers else contextlib.nullcontext()
    try:
        with ids:
            await run.execute(prices, on_turn)
    finally:
        if own:
            await used.aclose()
    assert run.workers is not None  # set once execute() returns
    minimum = min_cacheable_tokens(opts.model)
    baselines: list[PolicyTotals] = []
    for policy in (FULL_HISTORY, COMPACT_AT_80):
        baseline = run_baseline(
            policy,
            system=segments.fixed(opts.system, opts.tools),
            messages=[segments.message(message) for message in messages],
            turns=turns,
            context_window=run.context_window,
            output_reserve=opts.max_output_tokens,
        )
        costs = simulate_requests(baseline.requests, prices=prices, min_cacheable_tokens=minimum)
        baselines.append(_totals(policy.name, costs, baseline.turn_index, len(turns), baseline.is_compaction))
    last = turns[-1].end
    return ReplayReport(
        source=opts.source or transcript.label,
        format=opts.format or "transcript",
        backend=used.kind,
        session_id=transcript.session_id,
        model=opts.model,
        context_window=run.context_window,
        max_output_tokens=opts.max_output_tokens,
        messages=last + 1,
        human_turns=sum(1 for message in messages[: last + 1] if message_kind(message) == "human"),
        started_at=times[0],
        ended_at=times[last],
        layers=dict(sorted(run.layers.items())),
        turns=tuple(run.records),
        lore=_totals("lore", run.costs, range(len(turns)), len(turns), [False] * len(turns)),
        baselines=tuple(baselines),
        workers=run.workers,
        distillations=tuple(_row(row) for row in run.rows),
        agent_usage=run.agent.totals() if opts.call_agent else None,
    )


def _with_prices(config: LoreConfig, row: PriceRow) -> LoreConfig:
    """The engine's config with the model's cache prices (they set the layer-0 cap) unless already given."""
    read = config.cache_read_price_per_mtok
    write = config.cache_write_price_per_mtok
    return dataclasses.replace(
        config,
        cache_read_price_per_mtok=float(row.cache_read) if read is None else read,
        cache_write_price_per_mtok=float(row.cache_write_5m) if write is None else write,
    )


def _totals(
    name: str,
    costs: Sequence[RequestCost],
    turn_index: Sequence[int],
    turns: int,
    compaction: Sequence[bool],
) -> PolicyTotals:
    per_tokens = [0] * turns
    per_cost = [Decimal(0)] * turns
    for cost, turn, compacting in zip(costs, turn_index, compaction, strict=True):
        if not compacting:
            per_tokens[turn] = cost.prompt_tokens
        per_cost[turn] += cost.cost_usd
    return PolicyTotals(
        name=name,
        requests=len(costs),
        compactions=sum(compaction),
        tokens_sent=sum(cost.prompt_tokens for cost in costs),
        input_tokens=sum(cost.input_tokens for cost in costs),
        cache_read_tokens=sum(cost.cache_read_tokens for cost in costs),
        cache_write_tokens=sum(cost.cache_write_tokens for cost in costs),
        output_tokens=sum(cost.output_tokens for cost in costs),
        max_request_tokens=max((cost.prompt_tokens for cost in costs), default=0),
        cost_usd=sum((cost.cost_usd for cost in costs), Decimal(0)),
        per_turn_tokens=tuple(per_tokens),
        per_turn_cost_usd=tuple(per_cost),
    )


def _row(row: DistillationRecord) -> DistillationRow:
    return DistillationRow(
        generation=row.generation,
        kind=row.kind,
        sources=len(row.source_ids),
        source_tokens=row.source_tokens,
        tokens=row.token_count,
        retention=row.retention_score,
        archived=row.archived,
    )


class _LoreRun:
    """lore-memory's side of a replay: the engine on a throwaway store, its workers on a batch client."""

    def __init__(
        self,
        transcript: Transcript,
        messages: list[dict[str, Any]],
        turns: Sequence[Turn],
        *,
        opts: ReplayOptions,
        config: LoreConfig,
        backend: Backend,
        segments: PromptSegments,
    ) -> None:
        self.transcript = transcript
        self.messages = messages
        self.turns = turns
        self.opts = opts
        self.config = config
        self.backend = backend
        self.segments = segments
        self.fixed = segments.fixed(opts.system, opts.tools)
        self.clock = ManualClock(start=turns[0].at.timestamp() - 1.0, auto_advance=True)
        self.waiter = BackgroundWaiter(backend, self.clock)
        self.context_window = opts.context_window or 0
        self.records: list[TurnRecord] = []
        self.costs: list[RequestCost] = []
        self.layers: dict[int, int] = {}
        self.rows: list[DistillationRecord] = []
        self.agent = AgentTotals()
        self.workers: WorkerTotals | None = None

    async def execute(self, prices: Callable[[datetime], PriceRow], on_turn: TurnCallback | None) -> None:
        opts, backend = self.opts, self.backend
        inner = AnthropicLLMClient(
            backend.client, clock=backend.clock, default_model=opts.model, retry=RetryPolicy(jitter=0.0)
        )
        cost_log = MemoryCostLog()
        batch = BatchLLMClient(
            inner,
            backend.client,
            clock=backend.clock,
            cost_log=cost_log,
            disabled=False,
            jitter=0.0,
            rng=random.Random(opts.seed),
            give_up_after=3600.0 if backend.wait_for_workers else 600.0,
        )
        sim = PromptCacheSimulator(prices=prices, min_cacheable_tokens=min_cacheable_tokens(opts.model))
        with tempfile.TemporaryDirectory(prefix="lore-replay-") as tmp:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'replay.db'}"
            try:
                lore = await Lore.open(url, llm=batch, config=self.config, clock=self.clock, watch_idle=False)
                try:
                    await self._session(lore, sim, on_turn)
                finally:
                    await lore.close()
            finally:
                self.waiter.lore = None
                await self.waiter.wait(batch.aclose(timeout=600.0))
        self.workers = worker_totals(cost_log, stats=batch.stats(), catalog=PricingCatalog.default())

    async def _session(self, lore: Lore, sim: PromptCacheSimulator, on_turn: TurnCallback | None) -> None:
        opts, config, waiter = self.opts, self.config, self.waiter
        waiter.lore = lore
        if self.backend.wait_for_workers:
            serialize_jobs(lore)
        session = lore.session(
            self.transcript.session_id,
            model=opts.model,
            context_window=opts.context_window,
            max_output_tokens=opts.max_output_tokens,
            project="replay",
        )
        self.context_window = session.context_window
        for number, turn in enumerate(self.turns):
            await self._advance(lore, turn.at.timestamp())
            await self._turn(session, turn, number, sim)
            if self.backend.wait_for_workers:
                await waiter.wait(lore.scheduler.run_until_idle())
            self.segments.turn_done()
            if on_turn is not None:
                on_turn(number + 1, len(self.turns))
        # The recording ends: the session stays idle long enough for the idle work and its meta round.
        settle = config.idle_resume_seconds + 2 * config.idle_poll_seconds
        await self._advance(lore, self.turns[-1].at.timestamp() + settle)
        await waiter.wait(lore.scheduler.run_until_idle())
        self.rows = await lore.store.list_distillations(self.transcript.session_id, include_archived=True)

    async def _advance(self, lore: Lore, target: float) -> None:
        """Move the session's clock to ``target``, ticking the idle watcher every ``idle_poll_seconds``."""
        clock, waiter = self.clock, self.waiter
        step = lore.config.idle_poll_seconds
        while clock.now() + step <= target:
            clock.advance(step)
            waiter.sync()
            if await lore.watch_once() and self.backend.wait_for_workers:
                await waiter.wait(lore.scheduler.run_until_idle())
        clock.advance(max(0.0, target - clock.now()))
        waiter.sync()

    async def _turn(self, session: LoreSession, turn: Turn, number: int, sim: PromptCacheSimulator) -> None:
        opts, segments = self.opts, self.segments
        history = self.messages[: turn.end]
        result = await session.transform(
            history, system=system_blocks(opts.system), tools=list(opts.tools) or None
        )
        cost = sim.request(
            SimRequest(
                at=turn.at, segments=segments.request(result, opts.tools), output_tokens=turn.output_tokens
            )
        )
        usage: object = {
            "input_tokens": cost.input_tokens,
            "cache_read_input_tokens": cost.cache_read_tokens,
            "cache_creation_input_tokens": cost.cache_write_tokens,
            "output_tokens": cost.output_tokens,
        }
        if opts.call_agent:
            usage = await ask_agent(
                self.backend, result, model=opts.model, max_tokens=opts.agent_max_tokens, tools=opts.tools
            )
            self.agent.add(usage)
        output = self.messages[turn.end]
        await session.record_usage(usage, stop_reason="tool_use" if has_tool_use(output) else "end_turn")
        history_tokens = sum(segment.tokens for segment in self.fixed) + sum(
            segments.message(message).tokens for message in history
        )
        self.costs.append(cost)
        self.layers[result.layer] = self.layers.get(result.layer, 0) + 1
        self.records.append(
            TurnRecord(
                index=number,
                at=turn.at,
                layer=result.layer,
                history_tokens=history_tokens,
                tokens_sent=cost.prompt_tokens,
                cache_read_tokens=cost.cache_read_tokens,
                cache_write_tokens=cost.cache_write_tokens,
                output_tokens=cost.output_tokens,
                cost_usd=cost.cost_usd,
            )
        )
