"""``lore_batch.FleetDispatcher`` against llmfleet 0.1.0 on the same seeded workload, with the real ``anthropic``
SDK against the emulator served on 127.0.0.1 (one fresh emulator per run, same seed, real clock).

llmfleet is not a dependency of lore-memory: run this from the repository root in a venv of its own, never in
the project's ``.venv``::

    python3 -m venv /tmp/fleetbench
    /tmp/fleetbench/bin/pip install -e /work/main -r bench/requirements-fleet.txt
    /tmp/fleetbench/bin/python bench/fleet.py [--json]

The workload: ``--interactive`` calls with tight budgets (≤ 5 s) and ``--background`` calls with a 1 h budget,
shuffled and issued concurrently in ``--waves`` waves ``--wave-gap`` seconds apart (a wave does not wait for the
one before). Each library gets the same routing figures (sync up to 5 s, batch window 5 s, min size 10, max
size 100) and keeps its own poll schedule (llmfleet: fixed 2 s; ours: first poll after 5 s, then backoff).

How the workload maps to llmfleet (its README's intended use): ``async with llmfleet.FleetDispatcher(client,
policy=RoutingPolicy(...))`` and ``await fleet.submit(latency_budget_ms=budget, **params)``, the same call shape as
ours. Four runs:

* ``all-sync``: every call straight to ``client.messages.create`` (the cost baseline);
* ``lore``: ``lore_batch.FleetDispatcher``;
* ``llmfleet``: llmfleet as shipped, on the plain ``AsyncAnthropic`` client;
* ``llmfleet+shim``: llmfleet on a thin proxy of the same client whose ``messages.batches.results(id)`` returns an
  async iterable that awaits the SDK's coroutine. llmfleet calls ``results()`` without ``await`` and then iterates
  the coroutine, which fails on the async SDK after the batch has been created and billed; the shim is the least
  change that lets its batch route finish, so the run also shows what that route hands back.

A probe then submits one batch-budget call to each dispatcher without ``async with`` (``--no-probe`` skips it).

Prints figures; asserts nothing. ``--json`` prints them as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import random
import sys
import time
import warnings
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

sys.path.insert(0, str(Path(__file__).resolve().parent))

from anthropic import AsyncAnthropic
from anthropic.types import Message

from common import machine
from lore_batch import FleetDispatcher, RoutingPolicy
from lore_batch.emulator import AnthropicEmulator

SETUP = (
    "python3 -m venv /tmp/fleetbench && /tmp/fleetbench/bin/pip install -e /work/main "
    "-r bench/requirements-fleet.txt && /tmp/fleetbench/bin/python bench/fleet.py"
)

try:
    import llmfleet
except ModuleNotFoundError:
    sys.exit(
        "bench/fleet.py needs llmfleet 0.1.0, which is deliberately not a dependency of lore-memory and must "
        f"not go into the project's .venv. Run it in a venv of its own:\n    {SETUP}"
    )

LLMFLEET_VERSION = "0.1.0"
API_KEY = "sk-ant-bench"
INTERACTIVE_MODEL = "claude-haiku-4-5"
BACKGROUND_MODEL = "claude-sonnet-4-5"
INTERACTIVE_BUDGETS_MS = (500, 1_000, 2_000, 3_000, 5_000)
BACKGROUND_BUDGET_MS = 3_600_000
# The routing figures both dispatchers get.
SYNC_MAX_LATENCY_MS = 5_000
BATCH_WINDOW_MS = 5_000
BATCH_MIN_SIZE = 10
BATCH_MAX_SIZE = 100

# fmt: off
_WORDS = (
    "cache", "batch", "window", "queue", "agent", "budget", "latency", "route", "result", "message", "token",
    "model", "prompt", "summary", "review", "diff", "commit", "branch", "test", "failure", "retry", "deadline",
    "worker", "session", "history", "context", "distill", "index", "answer",
)
# fmt: on

Kind = Literal["interactive", "background"]


@dataclass(frozen=True, slots=True)
class Call:
    """One ``messages.create`` call of the workload."""

    index: int
    kind: Kind
    wave: int
    budget_ms: int
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one call got back: the result's type, or the exception (and whether it kept a cause)."""

    call: Call
    seconds: float
    result_type: str | None
    error: str | None
    error_has_cause: bool


def build_workload(seed: int, interactive: int, background: int, waves: int) -> list[Call]:
    """The seeded workload: short chat turns on Haiku, long summaries on Sonnet, shuffled over the waves."""
    rng = random.Random(seed)
    kinds: list[Kind] = ["interactive"] * interactive + ["background"] * background
    rng.shuffle(kinds)
    calls = []
    for index, kind in enumerate(kinds):
        if kind == "interactive":
            text = " ".join(rng.choices(_WORDS, k=rng.randint(20, 200)))
            params = {
                "model": INTERACTIVE_MODEL,
                "max_tokens": rng.choice((256, 512, 1024)),
                "system": "You are a coding assistant. Answer briefly.",
                "messages": [{"role": "user", "content": f"Question {index}: {text}"}],
            }
            budget = rng.choice(INTERACTIVE_BUDGETS_MS)
        else:
            text = " ".join(rng.choices(_WORDS, k=rng.randint(800, 3_000)))
            params = {
                "model": BACKGROUND_MODEL,
                "max_tokens": rng.choice((1024, 2048)),
                "system": "Summarise the document for a later reader.",
                "messages": [{"role": "user", "content": f"Document {index}: {text}"}],
            }
            budget = BACKGROUND_BUDGET_MS
        calls.append(Call(index, kind, index % waves, budget, params))
    return calls


async def drive(
    submit: Callable[[Call], Awaitable[object]], workload: list[Call], waves: int, gap: float
) -> tuple[list[Outcome], float]:
    """Start every wave's calls at once, waves ``gap`` seconds apart; return the outcomes and the wall time."""

    async def one(call: Call) -> Outcome:
        started = time.perf_counter()
        try:
            result = await submit(call)
        except Exception as exc:  # noqa: BLE001 - every failure is a figure of the bench
            return Outcome(
                call,
                time.perf_counter() - started,
                None,
                f"{type(exc).__name__}: {exc}",
                exc.__cause__ is not None,
            )
        return Outcome(call, time.perf_counter() - started, _type_name(result), None, False)

    started = time.perf_counter()
    tasks: list[asyncio.Task[Outcome]] = []
    for wave in range(waves):
        await asyncio.sleep(max(0.0, started + wave * gap - time.perf_counter()))
        tasks += [asyncio.create_task(one(call)) for call in workload if call.wave == wave]
    outcomes = await asyncio.gather(*tasks)
    return list(outcomes), time.perf_counter() - started


def _type_name(value: object) -> str:
    kind = type(value)
    return "anthropic.types.Message" if kind is Message else f"{kind.__module__}.{kind.__qualname__}"


class _AwaitedResults:
    """An async iterable over a batch's results that awaits the SDK's ``results()`` coroutine first."""

    def __init__(self, client: AsyncAnthropic, batch_id: str) -> None:
        self._client = client
        self._batch_id = batch_id

    async def __aiter__(self) -> AsyncIterator[Any]:
        async for line in await self._client.messages.batches.results(self._batch_id):
            yield line


def results_shim(client: AsyncAnthropic) -> SimpleNamespace:
    """The surface llmfleet uses, from ``client``, with ``batches.results`` usable without ``await``."""
    batches = client.messages.batches
    return SimpleNamespace(
        messages=SimpleNamespace(
            create=client.messages.create,
            batches=SimpleNamespace(
                create=batches.create,
                retrieve=batches.retrieve,
                results=lambda batch_id: _AwaitedResults(client, batch_id),
            ),
        )
    )


async def _timed(awaitable: Awaitable[object]) -> tuple[object, float]:
    started = time.perf_counter()
    result = await awaitable
    return result, time.perf_counter() - started


def _client(base_url: str) -> AsyncAnthropic:
    return AsyncAnthropic(api_key=API_KEY, base_url=base_url)


async def run_all_sync(base_url: str, workload: list[Call], args: argparse.Namespace) -> dict[str, Any]:
    async with _client(base_url) as client:
        outcomes, wall = await drive(
            lambda call: client.messages.create(**call.params), workload, args.waves, args.wave_gap
        )
    return {"outcomes": outcomes, "wall": wall, "close": 0.0, "stats": None, "warnings": []}


async def run_lore(base_url: str, workload: list[Call], args: argparse.Namespace) -> dict[str, Any]:
    policy = RoutingPolicy(
        sync_max_latency_ms=SYNC_MAX_LATENCY_MS,
        batch_window_ms=BATCH_WINDOW_MS,
        batch_min_size=BATCH_MIN_SIZE,
        batch_max_size=BATCH_MAX_SIZE,
        disabled=False,
    )
    async with _client(base_url) as client:
        fleet = FleetDispatcher(client, policy=policy)
        async with fleet:
            outcomes, wall = await drive(
                lambda call: fleet.submit(latency_budget_ms=call.budget_ms, **call.params),
                workload,
                args.waves,
                args.wave_gap,
            )
            closing = time.perf_counter()
        close = time.perf_counter() - closing
        stats = asdict(fleet.stats)
    return {"outcomes": outcomes, "wall": wall, "close": close, "stats": stats, "warnings": []}


async def run_llmfleet(
    base_url: str, workload: list[Call], args: argparse.Namespace, *, shim: bool
) -> dict[str, Any]:
    policy = llmfleet.RoutingPolicy(
        sync_max_latency_ms=SYNC_MAX_LATENCY_MS,
        batch_window_ms=BATCH_WINDOW_MS,
        batch_min_size=BATCH_MIN_SIZE,
        batch_max_size=BATCH_MAX_SIZE,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with _client(base_url) as client:
            fleet = llmfleet.FleetDispatcher(results_shim(client) if shim else client, policy=policy)
            async with fleet:  # required: the flusher starts only in __aenter__
                outcomes, wall = await drive(
                    lambda call: fleet.submit(latency_budget_ms=call.budget_ms, **call.params),
                    workload,
                    args.waves,
                    args.wave_gap,
                )
                closing = time.perf_counter()
            close = time.perf_counter() - closing
            stats = asdict(fleet.stats)
        gc.collect()
    seen = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    return {"outcomes": outcomes, "wall": wall, "close": close, "stats": stats, "warnings": seen}


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def figures(run: dict[str, Any], emu: AnthropicEmulator) -> dict[str, Any]:
    """The figures of one run, from its outcomes and its emulator's records."""
    outcomes: list[Outcome] = run["outcomes"]
    answered = [o for o in outcomes if o.error is None]
    interactive = [o.seconds * 1000 for o in outcomes if o.call.kind == "interactive" and o.error is None]
    background = [o.seconds for o in outcomes if o.call.kind == "background" and o.error is None]
    creates = [r for r in emu.requests if r.endpoint == "batch_create" and r.status == 200]
    cost = {"sync": Decimal(0), "batch": Decimal(0)}
    items = Counter[str]()
    for row in emu.billing:
        cost[row.route] += row.cost_usd
        items[row.route] += 1
    errors = Counter(o.error for o in outcomes if o.error is not None)
    return {
        "calls": len(outcomes),
        "answered": len(answered),
        "success_rate": len(answered) / len(outcomes),
        "result_types": dict(Counter(o.result_type for o in answered).most_common()),
        "errors": dict(errors.most_common()),
        "errors_with_cause": sum(o.error_has_cause for o in outcomes if o.error is not None),
        "interactive_answered": len(interactive),
        "interactive_p50_ms": percentile(interactive, 50),
        "interactive_p95_ms": percentile(interactive, 95),
        "background_answered": len(background),
        "background_p50_s": percentile(background, 50),
        "background_max_s": max(background, default=None),
        "wall_s": run["wall"],
        "close_s": run["close"],
        "batches_created": len(creates),
        "batch_sizes": [r.batch_request_count for r in creates],
        "max_batches_in_flight": max_in_flight(emu),
        "results_downloads": sum(1 for r in emu.requests if r.endpoint == "batch_results"),
        "billed_sync_items": items["sync"],
        "billed_batch_items": items["batch"],
        "billed_items_without_answer": max(0, items["sync"] + items["batch"] - len(answered)),
        "cost_sync_usd": float(cost["sync"]),
        "cost_batch_usd": float(cost["batch"]),
        "cost_total_usd": float(cost["sync"] + cost["batch"]),
        "dispatcher_stats": run["stats"],
        "warnings": run["warnings"],
    }


def max_in_flight(emu: AnthropicEmulator) -> int:
    """The most batches open at once, each from its create to the last request naming it (poll or download)."""
    spans: dict[str, list[float]] = {}
    for record in emu.requests:
        if record.batch_id is not None and record.status == 200:
            span = spans.setdefault(record.batch_id, [record.at, record.at])
            span[0], span[1] = min(span[0], record.at), max(span[1], record.at)
    edges = sorted([(start, 1) for start, _ in spans.values()] + [(end, -1) for _, end in spans.values()])
    most = current = 0
    for _, step in edges:
        current += step
        most = max(most, current)
    return most


async def probe_without_context(args: argparse.Namespace) -> dict[str, Any]:
    """One batch-budget call to each dispatcher that was never entered with ``async with``."""
    params = {
        "model": BACKGROUND_MODEL,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "probe"}],
    }
    results: dict[str, Any] = {}
    lore_emu = AnthropicEmulator(batch_delay=args.batch_delay, seed=args.seed)
    fleet_emu = AnthropicEmulator(batch_delay=args.batch_delay, seed=args.seed)
    async with (
        lore_emu.serve() as lore_url,
        fleet_emu.serve() as fleet_url,
        _client(lore_url) as lore_client,
        _client(fleet_url) as fleet_client,
    ):
        ours = FleetDispatcher(
            lore_client, policy=RoutingPolicy(batch_window_ms=500, batch_min_size=1, disabled=False)
        )
        theirs = llmfleet.FleetDispatcher(fleet_client, policy=llmfleet.RoutingPolicy(batch_window_ms=500))
        tasks = {
            "lore": asyncio.create_task(
                _timed(ours.submit(latency_budget_ms=BACKGROUND_BUDGET_MS, **params))
            ),
            "llmfleet": asyncio.create_task(
                _timed(theirs.submit(latency_budget_ms=BACKGROUND_BUDGET_MS, **params))
            ),
        }
        await asyncio.wait(tasks.values(), timeout=args.probe_timeout)
        emulators = {"lore": lore_emu, "llmfleet": fleet_emu}
        for name, task in tasks.items():
            answered = task.done() and not task.cancelled() and task.exception() is None
            result, seconds = task.result() if answered else (None, None)
            results[name] = {
                "answered": answered,
                "seconds": seconds,
                "result_type": _type_name(result) if answered else None,
                "batch_creates": sum(1 for r in emulators[name].requests if r.endpoint == "batch_create"),
            }
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        await ours.aclose()
        await theirs.close()
    return {"timeout_s": args.probe_timeout, **results}


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    workload = build_workload(args.seed, args.interactive, args.background, args.waves)
    runners: dict[str, Callable[[str], Awaitable[dict[str, Any]]]] = {
        "all-sync": lambda url: run_all_sync(url, workload, args),
        "lore": lambda url: run_lore(url, workload, args),
        "llmfleet": lambda url: run_llmfleet(url, workload, args, shim=False),
        "llmfleet+shim": lambda url: run_llmfleet(url, workload, args, shim=True),
    }
    libraries: dict[str, Any] = {}
    for name, runner in runners.items():
        emu = AnthropicEmulator(batch_delay=args.batch_delay, seed=args.seed)
        async with emu.serve() as base_url:
            run = await runner(base_url)
        libraries[name] = figures(run, emu)
    baseline = libraries["all-sync"]["cost_total_usd"]
    for entry in libraries.values():
        entry["cost_vs_all_sync"] = entry["cost_total_usd"] / baseline if baseline else None
    return {
        "machine": machine(),
        "date": datetime.now(UTC).date().isoformat(),
        "llmfleet_version": llmfleet.__version__,
        "workload": {
            "seed": args.seed,
            "interactive": args.interactive,
            "interactive_budgets_ms": list(INTERACTIVE_BUDGETS_MS),
            "background": args.background,
            "background_budget_ms": BACKGROUND_BUDGET_MS,
            "waves": args.waves,
            "wave_gap_s": args.wave_gap,
            "batch_delay_s": args.batch_delay,
            "policy": {
                "sync_max_latency_ms": SYNC_MAX_LATENCY_MS,
                "batch_window_ms": BATCH_WINDOW_MS,
                "batch_min_size": BATCH_MIN_SIZE,
                "batch_max_size": BATCH_MAX_SIZE,
            },
        },
        "libraries": libraries,
        "probe_without_async_with": await probe_without_context(args) if args.probe else None,
    }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _counts(counts: dict[str, int]) -> str:
    return "; ".join(f"{count} {name.rsplit('.', 1)[-1]}" for name, count in counts.items()) or "-"


def table(report: dict[str, Any]) -> str:
    """The figures as a Markdown table (one column per run) and notes."""
    libraries = report["libraries"]
    rows: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("answered / calls", lambda f: f"{f['answered']} / {f['calls']} ({f['success_rate']:.0%})"),
        ("anthropic.types.Message", lambda f: str(f["result_types"].get("anthropic.types.Message", 0))),
        (
            "other result types",
            lambda f: _counts({k: v for k, v in f["result_types"].items() if k != "anthropic.types.Message"}),
        ),
        ("errors raised", lambda f: _counts(f["errors"])),
        ("errors with a `__cause__`", lambda f: str(f["errors_with_cause"]) if f["errors"] else "-"),
        (
            "interactive p50 / p95 ms",
            lambda f: f"{_ms(f['interactive_p50_ms'])} / {_ms(f['interactive_p95_ms'])}",
        ),
        ("background p50 / max s", lambda f: f"{_s(f['background_p50_s'])} / {_s(f['background_max_s'])}"),
        ("wall s (close s)", lambda f: f"{f['wall_s']:.1f} ({f['close_s']:.2f})"),
        ("batches created (sizes)", lambda f: f"{f['batches_created']} {f['batch_sizes'] or ''}".strip()),
        ("most batches in flight at once", lambda f: str(f["max_batches_in_flight"])),
        ("results downloads", lambda f: str(f["results_downloads"])),
        ("billed items sync / batch", lambda f: f"{f['billed_sync_items']} / {f['billed_batch_items']}"),
        ("billed items without an answer", lambda f: str(f["billed_items_without_answer"])),
        ("cost sync / batch $", lambda f: f"{f['cost_sync_usd']:.4f} / {f['cost_batch_usd']:.4f}"),
        ("cost total $", lambda f: f"{f['cost_total_usd']:.4f}"),
        (
            "vs all-sync",
            lambda f: "-" if f["cost_vs_all_sync"] is None else f"{f['cost_vs_all_sync']:.1%}",
        ),
    ]
    names = list(libraries)
    lines = ["| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    lines += [f"| {label} | " + " | ".join(cell(libraries[n]) for n in names) + " |" for label, cell in rows]
    for name in names:
        for warning in libraries[name]["warnings"]:
            lines.append(f"{name} warning: {warning}")
    probe = report["probe_without_async_with"]
    if probe is not None:
        for name in ("lore", "llmfleet"):
            entry = probe[name]
            got = (
                f"answered in {entry['seconds']:.1f} s ({entry['result_type']})"
                if entry["answered"]
                else f"no answer after {probe['timeout_s']:.0f} s"
            )
            lines.append(
                f"without `async with`, {name}: one batch-budget call {got}, {entry['batch_creates']} batch creates"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seed", type=int, default=20261205)
    parser.add_argument("--interactive", type=int, default=40)
    parser.add_argument("--background", type=int, default=160)
    parser.add_argument("--waves", type=int, default=4)
    parser.add_argument("--wave-gap", type=float, default=1.0, help="seconds between waves")
    parser.add_argument(
        "--batch-delay", type=float, default=2.0, help="emulator seconds a batch stays in progress"
    )
    parser.add_argument("--probe-timeout", type=float, default=8.0)
    parser.add_argument("--no-probe", dest="probe", action="store_false")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if llmfleet.__version__ != LLMFLEET_VERSION:
        print(
            f"warning: llmfleet {llmfleet.__version__} installed; these notes are for {LLMFLEET_VERSION}",
            file=sys.stderr,
        )
    report = asyncio.run(bench(args))
    if args.json:
        print(json.dumps(report, indent=2))
        return
    workload = report["workload"]
    print(f"machine: {report['machine']}; {report['date']}; llmfleet {report['llmfleet_version']}")
    print(
        f"workload: seed {workload['seed']}, {workload['interactive']} interactive (budgets "
        f"{workload['interactive_budgets_ms']} ms) + {workload['background']} background (budget 1 h), "
        f"{workload['waves']} waves {workload['wave_gap_s']} s apart; emulator batch_delay "
        f"{workload['batch_delay_s']} s"
    )
    print(table(report))


if __name__ == "__main__":
    main()
