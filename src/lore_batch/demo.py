"""The offline round trip behind ``lore demo``.

One synchronous call and one Message Batch, both through the real ``anthropic`` SDK against the built-in
emulator, with the emulator's billing to compare the two routes.

Simulated time: the emulator runs on a :class:`~lore_batch.clock.ManualClock`, so a batch that "takes"
minutes to process costs no wall-clock time; the poll loop advances the clock by its own backoff
between polls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from lore_batch.emulator import AnthropicEmulator, BillingRecord, ManualClock
from lore_batch.pricing import PricingCatalog
from lore_core.llm import Usage

__all__ = ["DemoBatchLine", "DemoReport", "run_roundtrip_demo"]

DEMO_MODEL = "claude-sonnet-4-6"
# A one-request batch has been seen to take 90-120 s on the real service; simulate that order of magnitude.
SIMULATED_BATCH_SECONDS = 95.0
# The same first poll delay and doubling backoff (capped at 60 s) the batch engine uses.
POLL_SCHEDULE = (5.0, 10.0, 20.0, 40.0, 60.0)
DEMO_PROMPTS = (
    "Summarise: the test suite failed on test_store.py with IntegrityError.",
    "List the files touched while fixing the migration.",
    "Name one risk of retrying a batch create without an adoption check.",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoBatchLine:
    """One result line of the demo batch."""

    custom_id: str
    result_type: str
    text: str
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoReport:
    """What the round trip did, in numbers."""

    model: str
    sync_text: str
    batch_id: str
    batch_status: str
    polls: int
    simulated_seconds: float
    lines: tuple[DemoBatchLine, ...]
    sync_cost_usd: Decimal
    batch_cost_usd: Decimal
    batch_cost_at_sync_prices_usd: Decimal
    requests_logged: int


async def run_roundtrip_demo(*, seed: int = 0, on_step: Callable[[str], None] | None = None) -> DemoReport:
    """Run one sync message and one 3-request batch on an in-process emulator and report what happened.

    Raises whatever the SDK raises if the emulator misbehaves (it should not).

    Example::

        report = await run_roundtrip_demo(seed=1)
        assert len(report.lines) == 3
    """

    def step(text: str) -> None:
        if on_step is not None:
            on_step(text)

    clock = ManualClock()
    emu = AnthropicEmulator(batch_delay=SIMULATED_BATCH_SECONDS, clock=clock, seed=seed)
    client = emu.client(api_key="sk-ant-demo-key")
    try:
        step("POST /v1/messages (synchronous, list price)")
        message = await client.messages.create(
            model=DEMO_MODEL,
            max_tokens=256,
            messages=[{"role": "user", "content": "Say hello to lore-memory."}],
        )
        sync_text = "".join(block.text for block in message.content if block.type == "text")

        step("POST /v1/messages/batches (3 requests, 50% off every token)")
        batch = await client.messages.batches.create(
            requests=[
                {
                    "custom_id": f"demo-{index}",
                    "params": {
                        "model": DEMO_MODEL,
                        "max_tokens": 256,
                        "system": [
                            {
                                "type": "text",
                                "text": "You are a terse engineering assistant.",
                                "cache_control": {"type": "ephemeral", "ttl": "1h"},
                            }
                        ],
                        "messages": [{"role": "user", "content": prompt}],
                    },
                }
                for index, prompt in enumerate(DEMO_PROMPTS)
            ]
        )
        polls = 0
        waited = 0.0
        while batch.processing_status != "ended":
            delay = POLL_SCHEDULE[min(polls, len(POLL_SCHEDULE) - 1)]
            clock.advance(delay)
            waited += delay
            polls += 1
            batch = await client.messages.batches.retrieve(batch.id)
            step(f"poll {polls}: {batch.processing_status} after {waited:.0f} s (simulated)")

        step("GET results (JSONL, streamed by the SDK's decoder)")
        lines: list[DemoBatchLine] = []
        async for line in await client.messages.batches.results(batch.id):
            result = line.result
            if result.type == "succeeded":
                text = "".join(b.text for b in result.message.content if b.type == "text")
                usage = result.message.usage
                lines.append(
                    DemoBatchLine(
                        custom_id=line.custom_id,
                        result_type=result.type,
                        text=text,
                        input_tokens=usage.input_tokens
                        + (usage.cache_read_input_tokens or 0)
                        + (usage.cache_creation_input_tokens or 0),
                        output_tokens=usage.output_tokens,
                    )
                )
            else:
                lines.append(
                    DemoBatchLine(
                        custom_id=line.custom_id,
                        result_type=result.type,
                        text="",
                        input_tokens=0,
                        output_tokens=0,
                    )
                )
        lines.sort(key=lambda item: item.custom_id)
    finally:
        await client.close()

    sync_cost = sum((row.cost_usd for row in emu.billing if row.route == "sync"), Decimal(0))
    batch_rows = [row for row in emu.billing if row.route == "batch"]
    batch_cost = sum((row.cost_usd for row in batch_rows), Decimal(0))
    catalog = PricingCatalog.default()
    return DemoReport(
        model=DEMO_MODEL,
        sync_text=sync_text,
        batch_id=batch.id,
        batch_status=batch.processing_status,
        polls=polls,
        simulated_seconds=waited,
        lines=tuple(lines),
        sync_cost_usd=sync_cost,
        batch_cost_usd=batch_cost,
        batch_cost_at_sync_prices_usd=sum((_at_sync_prices(catalog, row) for row in batch_rows), Decimal(0)),
        requests_logged=len(emu.requests),
    )


def _at_sync_prices(catalog: PricingCatalog, row: BillingRecord) -> Decimal:
    """What the same tokens would have cost on the synchronous Messages API."""
    price = catalog.price("anthropic", row.model)
    if price is None:
        return Decimal(0)
    usage = Usage(
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        cache_read_tokens=row.cache_read_tokens,
        cache_write_5m_tokens=row.cache_write_5m_tokens,
        cache_write_1h_tokens=row.cache_write_1h_tokens,
    )
    return price.cost(usage, batch=False)
