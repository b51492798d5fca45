"""Every benchmark in one command: ``.venv/bin/python bench/run_all.py [--full]``.

Runs, one after the other, each in a process of its own, printing its figures as it goes:

1. transform scaling (``bench/transform.py``),
2. batch pool throughput, in memory (``bench/batch_pool.py``) and durable on SQLite and PostgreSQL
   (``bench/durable_pool.py``; its PostgreSQL part needs the server at ``LORE_TEST_POSTGRES_URL``),
3. the fleet comparison (``bench/fleet.py``), when the script and its own environment (a Python that can import
   ``llmfleet``: ``LORE_FLEET_PYTHON``, or ``/tmp/fleetbench/bin/python``) are there; otherwise how to run it,
4. the replay cost ratio on the shared real session and the wall time of ``lore demo`` (``bench/replay.py``).

Default sizes take a few minutes; ``--full`` uses the sizes recorded in ``docs/benchmarks.md`` (much longer).
Asserts nothing; a step that fails is reported and the others still run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
FLEET_PYTHONS = (os.environ.get("LORE_FLEET_PYTHON", ""), "/tmp/fleetbench/bin/python")
POSTGRES = os.environ.get("LORE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/lore_test")


def step(title: str, command: list[str], *, python: str = sys.executable) -> bool:
    print(f"\n=== {title} ===\n$ {' '.join(command)}", flush=True)
    start = time.perf_counter()
    done = subprocess.run([python, *command], cwd=BENCH.parent, check=False)
    print(
        f"({time.perf_counter() - start:.0f} s{'' if done.returncode == 0 else f', exit {done.returncode}'})"
    )
    return done.returncode == 0


def fleet_python() -> str | None:
    """A Python that can import llmfleet (never the project's own: llmfleet is not our dependency)."""
    for candidate in FLEET_PYTHONS:
        if not candidate or not Path(candidate).exists():
            continue
        probe = subprocess.run(
            [candidate, "-c", "import llmfleet, lore_batch"], capture_output=True, check=False
        )
        if probe.returncode == 0:
            return candidate
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--full", action="store_true", help="the sizes of docs/benchmarks.md (long)")
    args = parser.parse_args()
    failed: list[str] = []
    sizes = "100,1000,10000,50000" if args.full else "100,1000,10000"
    steps = [
        (
            "transform scaling",
            ["bench/transform.py", "--sizes", sizes, "--turns", "30" if args.full else "20"],
        ),
        (
            "batch pool throughput (memory)",
            ["bench/batch_pool.py", "--calls", "100000" if args.full else "10000"],
        ),
        (
            "batch pool throughput (durable)",
            ["bench/durable_pool.py", "--calls", "10000" if args.full else "2000", "--postgres", POSTGRES],
        ),
    ]
    for title, command in steps:
        if not step(title, command):
            failed.append(title)

    fleet = BENCH / "fleet.py"
    if not fleet.exists():
        print("\n=== fleet comparison ===\nbench/fleet.py is not in this checkout: skipped")
    elif (python := fleet_python()) is None:
        print(
            "\n=== fleet comparison ===\nskipped: it needs llmfleet, which is not a dependency of lore-memory. Run it "
            "in a venv of its own:\n"
            "    python3 -m venv /tmp/fleetbench\n"
            "    /tmp/fleetbench/bin/pip install -e . -r bench/requirements-fleet.txt\n"
            "    /tmp/fleetbench/bin/python bench/fleet.py\n"
            "(or point LORE_FLEET_PYTHON at such an interpreter and run this script again)"
        )
    elif not step("fleet comparison", ["bench/fleet.py"], python=python):
        failed.append("fleet comparison")

    if not step("replay cost ratio and demo time", ["bench/replay.py"]):
        failed.append("replay")
    print(f"\n{'all benchmarks ran' if not failed else 'failed: ' + ', '.join(failed)}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
