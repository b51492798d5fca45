"""Per-call cost of ``lore_core.context.assemble`` at 1K / 10K / 50K messages, real tiktoken counter.

Layer 0 must cost the same at every size (O(1)); a gradient layer in steady state (pin and prefix cache kept
from the previous call, as the session does) must cost work proportional to its window, not to the history:
the 10K / 1K ratio is printed for each and should stay <= 2. The gradient runs use a 100K context window, so
that every layer's window is already full at 1K messages (stripped outputs make layer 2-3 windows long).

Run: ``.venv/bin/python bench/assemble.py [--sizes 1000 10000 50000]``. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine
from lore_core import count_tokens
from lore_core.config import LoreConfig
from lore_core.context import Assembly, AssemblyInput, History, assemble
from lore_core.store.records import DistillationRecord

GRADIENT_WINDOW = 100_000
WORDS = ("def", "class", "import", "return", "self", "value", "test", "error", "path", "file", "module")


def history(n_messages: int, seed: int = 0) -> list[dict[str, Any]]:
    """A coding session of whole cycles (question, tool call, result, answer) that ends on a question.

    Results are 5-40 lines; one read in four re-reads one of 20 files, so the dedup pre-pass has work to do.
    """
    rng = random.Random(seed)
    messages: list[dict[str, Any]] = []
    call = 0
    while len(messages) < n_messages - 1:
        messages.append({"role": "user", "content": " ".join(rng.choices(WORDS, k=rng.randint(5, 30)))})
        call += 1
        tool_id = f"toolu_{call:06d}"
        path = f"src/m{rng.randrange(20) if rng.random() < 0.25 else call}.py"
        body = "\n".join(" ".join(rng.choices(WORDS, k=12)) for _ in range(rng.randint(5, 40)))
        messages.append(
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Reading the file."},
                    {"type": "tool_use", "id": tool_id, "name": "read", "input": {"path": path}},
                ],
            }
        )
        messages.append(
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_id, "content": body}]}
        )
        messages.append({"role": "assistant", "content": "Done: " + " ".join(rng.choices(WORDS, k=20))})
    messages.append({"role": "user", "content": "next step"})
    return messages


def rows(count: int) -> list[DistillationRecord]:
    """``count`` gen-0 rows of about 300 tokens each."""
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        DistillationRecord(
            id=f"{i:08x}-0000-4000-8000-000000000000",
            session_id="bench",
            project="bench",
            generation=0,
            kind="observer",
            observations="\n".join(
                f"* yellow (10:{j:02d}) worked on src/m{i}.py step {j}" for j in range(30)
            ),
            source_ids=tuple(f"m{i}-{j}" for j in range(8)),
            source_tokens=4_000,
            token_count=300,
            r_compression=1.2,
            created_at=at,
        )
        for i in range(count)
    ]


def per_call(fn: Any, *, seconds: float = 0.3, repeat: int = 3) -> float:
    """The best (over ``repeat`` rounds) mean time of one ``fn()`` call, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        calls, start = 0, time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                break
        best = min(best, elapsed / calls)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 50_000])
    args = parser.parse_args()
    config = LoreConfig()
    snapshot = rows(12)
    count_tokens("warm up the encoding")
    print(f"machine: {machine()}")
    figures: dict[str, dict[int, float]] = {}
    for size in args.sizes:
        messages = history(size)
        start = time.perf_counter()
        built = History.build(messages)
        build_seconds = time.perf_counter() - start
        appended = [*messages, {"role": "assistant", "content": "ok"}, {"role": "user", "content": "more"}]
        incremental = per_call(lambda m=appended, b=built: History.build(m, previous=b), seconds=0.2)
        base = AssemblyInput(
            history=built,
            session_id="bench",
            fixed_tokens=5_000,
            overhead=15_000,
            calibrated=True,
            expected=100_000,
            context_window=200_000,
            max_output_tokens=None,
            min_layer=0,
            post_idle_compact=False,
            rows=snapshot,
            prefix_cache=None,
            raw_pin=None,
            consecutive_busts=0,
            config=config,
        )
        print(
            f"{size:>6} messages, {built.total:>10,} tokens: History.build {build_seconds * 1000:8.1f} ms, "
            f"+2 messages {incremental * 1000:6.2f} ms"
        )
        layer0 = _replace(base, expected=100_000)
        figures.setdefault("layer 0", {})[size] = per_call(lambda i=layer0: assemble(i))
        for layer in (1, 2, 3):
            gradient = _replace(base, context_window=GRADIENT_WINDOW, expected=built.total + 20_000)
            first = assemble(_replace(gradient, min_layer=layer))
            steady = _replace(
                gradient,
                min_layer=layer,
                prefix_cache=first.prefix_cache,
                raw_pin=first.raw_pin,
            )
            result: Assembly = assemble(steady)
            assert result.layer == layer, (layer, result.layer)
            figures.setdefault(f"layer {layer} (steady)", {})[size] = per_call(lambda i=steady: assemble(i))
            raw = len(result.messages) - 2
            print(f"        layer {layer}: {raw} raw messages, {result.total_tokens:,} tokens")
    print()
    print(f"{'per call':22s}" + "".join(f"{size:>12,}" for size in args.sizes) + "   10K/1K")
    for name, by_size in figures.items():
        line = f"{name:22s}" + "".join(f"{by_size[size] * 1000:>10.3f}ms" for size in args.sizes)
        if 1_000 in by_size and 10_000 in by_size:
            line += f"   {by_size[10_000] / by_size[1_000]:6.2f}"
        print(line)


def _replace(inp: AssemblyInput, **changes: Any) -> AssemblyInput:
    fields = {name: getattr(inp, name) for name in AssemblyInput.__dataclass_fields__}
    return AssemblyInput(**(fields | changes))


if __name__ == "__main__":
    main()
