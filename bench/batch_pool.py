"""Many queued calls through ``BatchLLMClient`` on the in-process emulator: time per call and memory per
queued call. Each size runs in its own process (clean peak RSS).

Run: ``.venv/bin/python bench/batch_pool.py [--calls 100000]``. Prints figures; asserts nothing. The clock is
real and the emulator ends a batch at once, so the wall time includes the engine's first poll delay (5 s); the
CPU time per call is the pool's own cost: enqueue, grouping, the create request, polling, streaming and applying
the results, resolving every waiter, and the emulator's processing (it runs in the same process).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine
from lore_batch import AnthropicLLMClient, BatchLLMClient
from lore_batch.emulator import AnthropicEmulator


async def run(calls: int, trace: bool) -> dict[str, float]:
    emulator = AnthropicEmulator(batch_delay=0.0)
    async with emulator.client(api_key="sk-ant-bench") as sdk:
        inner = AnthropicLLMClient(sdk)
        pool = BatchLLMClient(
            inner, sdk, flush_interval=30.0, max_queue_size=calls, poll_interval=60.0, jitter=0.0
        )
        gc.collect()
        if trace:
            tracemalloc.start()
        started = time.perf_counter()
        cpu_started = time.process_time()
        tasks = [
            asyncio.create_task(
                pool.prompt("You are terse.", f"Summarise change {n}.", session_id=None, worker="distill")
            )
            for n in range(calls)
        ]
        queued_peak = 0.0
        while pool.stats().queued < calls and not all(t.done() for t in tasks[:1]):
            await asyncio.sleep(0)
            if pool.stats().total_queued >= calls:
                break
        if trace:
            queued_peak = tracemalloc.get_traced_memory()[0]
        responses = await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        peak = tracemalloc.get_traced_memory()[1] if trace else 0
        if trace:
            tracemalloc.stop()
        stats = pool.stats()
        await pool.aclose()
    routes = {r.route for r in responses}
    return {
        "calls": calls,
        "seconds": elapsed,
        "us_per_call": elapsed / calls * 1e6,
        "cpu_us_per_call": cpu / calls * 1e6,
        "batches": stats.batches_submitted,
        "batched": stats.total_batched,
        "routes": sorted(routes),
        "traced_bytes_per_queued_call": queued_peak / calls if trace else 0,
        "traced_peak_bytes_per_call": peak / calls if trace else 0,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "savings_usd": float(stats.batch_savings_usd),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(asyncio.run(run(args.one, args.trace))))
        return
    print(f"machine: {machine()}")
    for calls in sorted({min(args.calls, 10_000), args.calls}):
        timed = json.loads(_child(calls, trace=False))
        traced = json.loads(_child(calls, trace=True))
        print(
            f"{calls:>7} calls: {timed['seconds']:.1f} s wall, {timed['cpu_us_per_call']:.0f} us CPU per call, "
            f"{timed['batches']} batch(es), {timed['batched']} answered by batch, routes {timed['routes']}, "
            f"peak RSS {timed['peak_rss_mb']:.0f} MB; memory per queued call "
            f"{traced['traced_bytes_per_queued_call'] / 1024:.1f} KiB (peak over the run "
            f"{traced['traced_peak_bytes_per_call'] / 1024:.1f} KiB incl. the emulator); "
            f"simulated savings ${timed['savings_usd']:.2f}"
        )


def _child(calls: int, *, trace: bool) -> str:
    command = [sys.executable, __file__, "--one", str(calls)] + (["--trace"] if trace else [])
    out = subprocess.run(command, check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


if __name__ == "__main__":
    main()
