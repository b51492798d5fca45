"""Turning one request's params into a message, its usage and its bill."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from lore_batch.pricing import PricingCatalog
from lore_core.llm import Usage

from .ids import IdFactory
from .records import BillingRecord
from .responders import ResponderRegistry
from .usage import PromptCache, count_output_tokens, usage_json

__all__ = ["Completion", "MessageProcessor"]


@dataclass(frozen=True, slots=True)
class Completion:
    """A generated message (wire dict) and its usage."""

    message: dict[str, Any]
    usage: Usage


class MessageProcessor:
    """Runs responders, applies the prompt-cache model and prices the result."""

    __slots__ = ("_cache", "_catalog", "_ids", "responders")

    def __init__(
        self, *, responders: ResponderRegistry, cache: PromptCache, ids: IdFactory, catalog: PricingCatalog
    ) -> None:
        self.responders = responders
        self._cache = cache
        self._ids = ids
        self._catalog = catalog

    def complete(
        self,
        params: Mapping[str, Any],
        *,
        credential_fp: str,
        at: float,
        service_tier: Literal["standard", "batch"],
    ) -> Completion:
        """Answer valid ``params`` at emulator time ``at`` for the credential ``credential_fp``."""
        output = self.responders.resolve(params)(params)
        content = [dict(block) for block in output.content]
        usage = self._cache.usage(params, count_output_tokens(content), credential_fp=credential_fp, at=at)
        message = {
            "id": self._ids.message_id(),
            "type": "message",
            "role": "assistant",
            "model": params["model"],
            "content": content,
            "stop_reason": output.stop_reason,
            "stop_sequence": None,
            "usage": usage_json(usage, service_tier=service_tier),
        }
        return Completion(message=message, usage=usage)

    def bill(
        self,
        completion: Completion,
        *,
        route: Literal["sync", "batch"],
        credential_fp: str,
        at: float,
        batch_id: str | None = None,
        custom_id: str | None = None,
    ) -> BillingRecord:
        """The billing row: list price for ``sync``, the catalog's explicit batch columns for ``batch``."""
        model = str(completion.message["model"])
        row = self._catalog.price("anthropic", model, at=datetime.fromtimestamp(at, UTC))
        batch = route == "batch"
        priced = row is not None and (row.has_batch_prices or not batch)
        cost = row.cost(completion.usage, batch=batch) if row is not None and priced else Decimal(0)
        usage = completion.usage
        return BillingRecord(
            route=route,
            model=model,
            batch_id=batch_id,
            custom_id=custom_id,
            credential_fp=credential_fp,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_5m_tokens=usage.cache_write_5m_tokens,
            cache_write_1h_tokens=usage.cache_write_1h_tokens,
            cost_usd=cost,
            at=at,
        )
