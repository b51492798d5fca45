"""Per-turn ``LoreSession.transform`` cost at growing history sizes, steady state and right after a new
distillation, plus peak memory. Each size runs in its own process (clean peak RSS).

Run: ``.venv/bin/python bench/transform.py [--sizes 100,1000,10000,50000] [--turns 30]``. Prints figures and
the 10K/1K steady-state ratio; asserts nothing. The workers never run here: the LLM client answers at once and
background jobs are drained outside the timed region.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine
from lore_core import Lore, LoreConfig
from lore_core.clock import ManualClock
from lore_core.llm import LLMResponse, Usage
from lore_core.store.records import DistillationRecord
from messages import synthetic_history

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
ROW_MESSAGES = 400  # messages folded into each pre-made distillation row
TAIL = 200  # messages left undistilled at the end of the pre-made history


class InstantLLM:
    """Answers every worker call at once with a small valid observation block (the bench times transform)."""

    background_slots = None

    async def prompt(self, system: str, user: str, **kwargs: Any) -> LLMResponse:
        text = "<observations>\nDate: Nov 23, 2026\n* yellow (09:00) work continued\n</observations>"
        return LLMResponse(text=text, usage=Usage(input_tokens=10, output_tokens=10), model="bench")


async def run_size(size: int, turns: int) -> dict[str, float]:
    clock = ManualClock(start=START.timestamp())
    config = LoreConfig(max_segment_tokens=10**9, curator_enabled=False, validate_enabled=False)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        async with Lore.open(url, llm=InstantLLM(), config=config, clock=clock, watch_idle=False) as lore:
            session = lore.session("bench", model="claude-sonnet-4-6")
            history = synthetic_history(size)
            await session.transform(history, system="You are a coding agent.")  # cold: stores everything
            await distill_prefix(lore, size)
            result = await session.transform(history, system="You are a coding agent.")
            await session.record_usage({"input_tokens": result.total_tokens, "output_tokens": 50})
            await lore.scheduler.run_until_idle()

            steady: list[float] = []
            layers: set[int] = set()
            for turn in range(turns):
                history = [*history, {"role": "assistant", "content": f"ok {turn}"}]
                history.append({"role": "user", "content": f"next step {turn}"})
                clock.advance(20)
                started = time.perf_counter()
                result = await session.transform(history, system="You are a coding agent.")
                steady.append(time.perf_counter() - started)
                layers.add(result.layer)
                await session.record_usage({"input_tokens": result.total_tokens + 400, "output_tokens": 50})
                await lore.scheduler.run_until_idle()

            after: list[float] = []
            for turn in range(5):
                await distill_tail(lore, size)
                history = [*history, {"role": "assistant", "content": f"done {turn}"}]
                history.append({"role": "user", "content": f"after distillation {turn}"})
                clock.advance(20)
                started = time.perf_counter()
                result = await session.transform(history, system="You are a coding agent.")
                after.append(time.perf_counter() - started)
                await session.record_usage({"input_tokens": result.total_tokens + 400, "output_tokens": 50})
                await lore.scheduler.run_until_idle()
    return {
        "size": size,
        "steady_ms": statistics.median(steady) * 1000,
        "steady_p90_ms": sorted(steady)[int(len(steady) * 0.9) - 1] * 1000,
        "after_distill_ms": statistics.median(after) * 1000,
        "layers": sorted(layers),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


async def distill_prefix(lore: Lore, size: int) -> None:
    """Distillation rows over everything but the last ``TAIL`` messages, as the workers would have made."""
    messages = await lore.store.list_messages("bench", undistilled_only=True, with_blocks=False)
    cut = max(0, len(messages) - TAIL)
    for start in range(0, cut, ROW_MESSAGES):
        await insert_row(lore, messages[start : min(cut, start + ROW_MESSAGES)])


async def distill_tail(lore: Lore, size: int) -> None:
    messages = await lore.store.list_messages("bench", undistilled_only=True, with_blocks=False)
    if len(messages) > 4:
        await insert_row(lore, messages[:4])


async def insert_row(lore: Lore, messages: list[Any]) -> None:
    source = sum(m.tokens for m in messages)
    row = DistillationRecord(
        id=str(uuid.uuid4()),
        session_id="bench",
        project="default",
        generation=0,
        kind="observer",
        observations="Date: Nov 23, 2026\n"
        + "\n".join(f"* yellow (09:00) step {m.position}" for m in messages[:40]),
        source_ids=tuple(m.id for m in messages),
        source_tokens=source,
        token_count=min(source, 400),
        r_compression=1.5,
        created_at=START,
    )
    await lore.store.insert_distillation_and_mark(row)
    lore.scheduler.context.bump("bench")  # what the distiller does after a write


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100,1000,10000,50000")
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(asyncio.run(run_size(args.one, args.turns))))
        return
    print(f"machine: {machine()}")
    print(
        f"{'messages':>9} {'steady ms':>10} {'p90 ms':>8} {'after distill ms':>17} {'layers':>8} {'peak RSS MB':>12}"
    )
    figures: dict[int, dict[str, Any]] = {}
    for size in (int(s) for s in args.sizes.split(",")):
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(size), "--turns", str(args.turns)],
            check=True,
            capture_output=True,
            text=True,
        )
        row = json.loads(out.stdout.strip().splitlines()[-1])
        figures[size] = row
        print(
            f"{size:>9} {row['steady_ms']:>10.2f} {row['steady_p90_ms']:>8.2f} {row['after_distill_ms']:>17.2f}"
            f" {','.join(map(str, row['layers'])):>8} {row['peak_rss_mb']:>12.0f}"
        )
    if 1000 in figures and 10000 in figures:
        ratio = figures[10000]["steady_ms"] / figures[1000]["steady_ms"]
        print(f"steady-state ratio 10K / 1K messages: {ratio:.2f}")


if __name__ == "__main__":
    main()
