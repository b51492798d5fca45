"""emu.billing: one row per billed item, sync at list price, batch at the catalog's batch columns (50 %)."""

from __future__ import annotations

from decimal import Decimal

from anthropic import AsyncAnthropic

from lore_batch.emulator import AnthropicEmulator, BillingRecord, ManualClock
from lore_batch.pricing import PricingCatalog

from .helpers import MODEL, batch_requests, params

MTOK = Decimal(1_000_000)


async def test_sync_is_billed_at_list_price(emu: AnthropicEmulator, client: AsyncAnthropic) -> None:
    message = await client.messages.create(**params("price me"))
    (row,) = emu.billing
    assert (row.route, row.model, row.batch_id, row.custom_id) == ("sync", MODEL, None, None)
    assert row.credential_fp == emu.requests[0].credential_fp
    assert (row.input_tokens, row.output_tokens) == (message.usage.input_tokens, message.usage.output_tokens)
    # claude-sonnet-4-6: 3 USD in, 15 USD out per million tokens
    assert row.cost_usd == (Decimal(row.input_tokens) * 3 + Decimal(row.output_tokens) * 15) / MTOK


async def test_batch_items_cost_exactly_half(emu: AnthropicEmulator, client: AsyncAnthropic) -> None:
    system = [{"type": "text", "text": "be brief " * 40, "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    await client.messages.create(**params("same", system=system))
    batch = await client.messages.batches.create(
        requests=[{"custom_id": "one", "params": params("same", system=system)}]
    )
    emu.end_all()
    sync_row, batch_row = emu.billing
    assert (batch_row.route, batch_row.batch_id, batch_row.custom_id) == ("batch", batch.id, "one")
    assert batch_row.cache_read_tokens > 0  # the sync call warmed the prefix for this credential
    row = PricingCatalog.default().price("anthropic", MODEL)
    assert row is not None
    assert batch_row.cost_usd == row.cost(_usage(batch_row), batch=True)
    assert batch_row.cost_usd * 2 == row.cost(_usage(batch_row), batch=False)
    assert sync_row.cache_write_1h_tokens == batch_row.cache_read_tokens


def _usage(row: BillingRecord) -> dict[str, object]:
    return {
        "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens,
        "cache_read_input_tokens": row.cache_read_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": row.cache_write_5m_tokens,
            "ephemeral_1h_input_tokens": row.cache_write_1h_tokens,
        },
    }


async def test_errored_canceled_and_expired_items_are_not_billed(clock: ManualClock) -> None:
    emu = AnthropicEmulator(clock=clock, seed=5)
    emu.faults.item_outcomes(errored=0.3, expired=0.3, canceled=0.3)
    async with emu.client() as client:
        batch = await client.messages.batches.create(requests=batch_requests(30))
        emu.end_all()
    outcomes = emu.batches[batch.id].outcomes
    succeeded = {cid for cid, kind in outcomes.items() if kind == "succeeded"}
    assert 0 < len(succeeded) < 30
    assert {row.custom_id for row in emu.billing} == succeeded


async def test_an_unpriced_known_model_costs_zero(emu: AnthropicEmulator, client: AsyncAnthropic) -> None:
    await client.messages.create(**params(model="claude-haiku-4-0"))
    assert emu.billing[0].cost_usd == 0
