"""Regressions found by the session-level property tests (each failed before its fix)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from lore_batch import AnthropicLLMClient
from lore_batch.emulator import AnthropicEmulator
from lore_core import ContextOverflowError, Lore, LoreConfig
from lore_core.clock import ManualClock
from lore_core.knowledge import LAYER_NOTE
from lore_core.tokens import estimate_system

from .conftest import START

MODEL = "claude-sonnet-4-6"
NOTE = {"type": "text", "text": LAYER_NOTE}


@asynccontextmanager
async def plain_lore(url: str, config: LoreConfig) -> AsyncIterator[Lore]:
    clock = ManualClock(start=START.timestamp(), auto_advance=True)
    emulator = AnthropicEmulator(clock=clock)
    async with emulator.client() as client:
        llm = AnthropicLLMClient(client, clock=clock)
        async with Lore.open(url, llm=llm, config=config, clock=clock, watch_idle=False) as lore:
            yield lore


async def test_layer0_after_a_cut_terminal_turn_stays_within_the_window(sqlite_url: str) -> None:
    # Before the fix the calibrated estimate counted the last window at the size it was SENT: after a layer-4
    # turn that cut a tool output, the next call passed the uncut history at layer 0 (2,234 > 1,700 tokens).
    config = LoreConfig(first_turn_overhead_tokens=300, knowledge_enabled=False)
    async with plain_lore(sqlite_url, config) as lore:
        session = lore.session("s", model=MODEL, context_window=2_700, max_output_tokens=1_000)
        output = "\n".join(f"src/db/models.py:{n}: value_{n} = compute({n}, 'x')" for n in range(120))
        messages: list[dict[str, Any]] = [
            {"role": "user", "content": "read the models"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": "read", "input": {"path": "models.py"}}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": output}]},
        ]
        first = await session.transform(messages)
        assert first.layer == 4  # the current turn's output is cut to fit
        await session.record_usage({"input_tokens": first.total_tokens + 100})
        messages += [{"role": "assistant", "content": "Done."}, {"role": "user", "content": "thanks"}]
        second = await session.transform(messages)
        view = session.inspect()
        assert view is not None
        assert second.total_tokens + estimate_system([NOTE]) + view.overhead <= 2_700 - 1_000


async def test_a_new_system_prompt_at_a_recycled_address_is_estimated_afresh(sqlite_url: str) -> None:
    # Before the fix est(system) was memoised by id() of objects the session did not keep alive: a new
    # system prompt at a freed address kept the first prompt's estimate.
    config = LoreConfig(first_turn_overhead_tokens=500, knowledge_enabled=False)
    async with plain_lore(sqlite_url, config) as lore:
        session = lore.session("s", model=MODEL, context_window=10_000, max_output_tokens=1_000)
        messages = [{"role": "user", "content": "hi"}]
        stale = []
        for turn in range(12):  # the host builds its system blocks afresh every turn, as hosts do
            system = [{"type": "text", "text": "Context: " + "module_a calls module_b. " * (1 + 40 * turn)}]
            try:
                result = await session.transform(messages, system=system)
            except ContextOverflowError:
                result = None
            needed = estimate_system(system) + estimate_system([NOTE]) + 500
            if result is not None and result.usable != max(0, 9_000 - needed):
                stale.append((turn, result.layer, result.usable, 9_000 - needed))
            del system
        assert stale == []
