"""The replay cost ratio on the shared real session, and the wall time of ``lore demo``.

``.venv/bin/python bench/replay.py``: replays ``../shared/data/session-cli-sentry-issue.json`` (or the file in
``LORE_SHARED_DATA``) whole through lore-memory, once per context window in ``--windows``, twice at the first to
check the figures repeat; then times ``lore demo`` (default options, a fresh process) ``--demo-runs`` times.
Prints figures; asserts nothing. Skips the replay with a message when the shared session is absent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine
from lore_batch.replay import ReplayOptions, replay_transcript, report_to_json
from lore_batch.replay.report import ReplayReport
from lore_core.transcript_formats import load_transcript

ROOT = Path(__file__).resolve().parents[1]
SHARED = (
    Path(os.environ.get("LORE_SHARED_DATA") or ROOT.parent / "shared" / "data")
    / "session-cli-sentry-issue.json"
)


@dataclass
class Run:
    window: int
    model: str
    report: ReplayReport
    seconds: float


async def replay(path: Path, *, window: int, model: str) -> Run:
    loaded = load_transcript(path)
    options = ReplayOptions(model=model, context_window=window, source=str(path), format=loaded.format)
    start = time.perf_counter()
    report = await replay_transcript(loaded.transcript, options=options)
    return Run(window=window, model=model, report=report, seconds=time.perf_counter() - start)


def show(runs: list[Run]) -> None:
    print(
        f"{'model':<18} {'window':>7} {'calls':>5} {'layers':<16} {'lore tok':>9} {'full tok':>9} {'80% tok':>9} "
        f"{'lore $':>8} {'workers $':>9} {'full $':>8} {'80% $':>8} {'/full':>6} {'/80%':>6} {'compactions':>11} "
        f"{'wall s':>6}"
    )
    for run in runs:
        r = run.report
        full, early = r.baselines
        layers = ",".join(f"{layer}:{count}" for layer, count in sorted(r.layers.items()))
        print(
            f"{run.model:<18} {run.window:>7} {len(r.turns):>5} {layers:<16} {r.lore.tokens_sent / 1e6:>8.2f}M "
            f"{full.tokens_sent / 1e6:>8.2f}M {early.tokens_sent / 1e6:>8.2f}M {r.lore_total_cost_usd:>8.2f} "
            f"{r.workers.cost_usd:>9.2f} {full.cost_usd:>8.2f} {early.cost_usd:>8.2f} "
            f"{r.ratio('full_history') or 0:>6.2f} {r.ratio('compaction_80') or 0:>6.2f} "
            f"{full.compactions:>5}/{early.compactions:<5} {run.seconds:>6.1f}"
        )


def time_demo(runs: int) -> list[float]:
    lore = Path(sys.executable).with_name("lore")
    command = [str(lore), "demo"] if lore.exists() else [sys.executable, "-m", "lore_core.cli", "demo"]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--windows", default="200000,100000,60000", help="context windows to replay with")
    parser.add_argument("--models", default="claude-sonnet-4-6,claude-opus-4-6", help="models to price")
    parser.add_argument("--demo-runs", type=int, default=3, help="timed runs of `lore demo` (0: none)")
    parser.add_argument("--json", action="store_true", help="also print each report's summary as JSON")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    if not SHARED.exists():
        print(f"replay skipped: the shared session is absent (expected {SHARED}; set LORE_SHARED_DATA)")
    else:
        windows = [int(w) for w in args.windows.split(",")]
        models = args.models.split(",")
        runs = [asyncio.run(replay(SHARED, window=w, model=m)) for m in models for w in windows]
        again = asyncio.run(replay(SHARED, window=windows[0], model=models[0]))
        print(f"replay of {SHARED.name}: lore-memory (agent calls + workers) against the two baselines")
        show(runs)
        same = report_to_json(again.report) == report_to_json(runs[0].report)
        print(
            f"second run at {models[0]} / {windows[0]}: {'identical figures' if same else 'FIGURES DIFFER'}"
        )
        if args.json:
            for run in runs:
                print(
                    json.dumps(
                        {
                            "model": run.model,
                            "window": run.window,
                            **report_to_json(run.report, per_turn=False)["summary"],
                        }
                    )
                )
    if args.demo_runs:
        times = time_demo(args.demo_runs)
        print(
            f"`lore demo` (default: 40 turns), {len(times)} runs in fresh processes: "
            f"{', '.join(f'{t:.1f}' for t in times)} s wall (best {min(times):.1f} s)"
        )


if __name__ == "__main__":
    main()
