"""Per-turn helper costs on a long synthetic coding history: validation, ids, flattening, estimation.

Run: ``.venv/bin/python bench/messages.py [--messages N]``. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import best_of, machine
from lore_core import check_context, count_tokens
from lore_core.flatten import flatten_messages
from lore_core.messages import message_ids
from lore_core.tokens import MessageTokenCache, estimate_messages


def synthetic_history(n_messages: int, seed: int = 0) -> list[dict[str, Any]]:
    """A coding session of whole cycles (request, tool call, tool result, answer) ending on a user message."""
    rng = random.Random(seed)
    words = [
        "def",
        "class",
        "import",
        "return",
        "self",
        "value",
        "test",
        "error",
        "path",
        "file",
        "module",
        "store",
        "batch",
        "token",
    ]
    messages: list[dict[str, Any]] = []
    call = 0
    while len(messages) < n_messages - 1:
        messages.append({"role": "user", "content": " ".join(rng.choices(words, k=rng.randint(5, 40)))})
        call += 1
        tool_id = f"toolu_{call:06d}"
        body = "\n".join(" ".join(rng.choices(words, k=12)) for _ in range(rng.randint(5, 120)))
        messages.append(
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Reading the file."},
                    {"type": "tool_use", "id": tool_id, "name": "read", "input": {"path": f"src/m{call}.py"}},
                ],
            }
        )
        messages.append(
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_id, "content": body}]}
        )
        messages.append({"role": "assistant", "content": "Done: " + " ".join(rng.choices(words, k=20))})
    messages.append({"role": "user", "content": "next step"})
    return messages


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()
    history = synthetic_history(args.messages)
    count_tokens("warm up the encoding")
    ids = message_ids(history)

    cache = MessageTokenCache(maxsize=len(history) + 10)
    for message_id, message in zip(ids, history, strict=True):
        cache.estimate(message_id, message)

    def cached_estimate() -> None:
        for message_id, message in zip(ids, history, strict=True):
            cache.estimate(message_id, message)

    figures = {
        "check_context": best_of(lambda: check_context(history)),
        "message_ids": best_of(lambda: message_ids(history)),
        "flatten_messages": best_of(lambda: flatten_messages(history)),
        "estimate_messages (cold)": best_of(lambda: estimate_messages(history), repeat=2),
        "estimate via MessageTokenCache (warm)": best_of(cached_estimate),
    }
    size_mb = sum(len(str(m["content"])) for m in history) / 1e6
    print(f"machine: {machine()}")
    print(f"history: {len(history)} messages, {size_mb:.1f} MB of content")
    for name, seconds in figures.items():
        print(f"{name:40s} {seconds * 1000:9.2f} ms")
    cold = figures["estimate_messages (cold)"]
    warm = figures["estimate via MessageTokenCache (warm)"]
    print(f"warm cache / cold estimate: {warm / cold:.4f}")


if __name__ == "__main__":
    main()
