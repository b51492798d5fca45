"""Everything the emulator knows, wired together; the HTTP layer and the public facade share one core."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from lore_batch.pricing import PricingCatalog

from .auth import AuthPolicy
from .clock import Clock, EmulatorClock
from .faults import FaultPlan
from .ids import IdFactory
from .processing import MessageProcessor
from .ratelimit import RateLimiter
from .records import BillingRecord, RequestRecord
from .responders import Responder, ResponderRegistry
from .state import BatchStore
from .usage import PromptCache
from .validation import MAX_BATCH_BYTES, MAX_MESSAGE_BYTES

__all__ = ["EmulatorCore", "EmulatorSettings"]


@dataclass(slots=True, kw_only=True)
class EmulatorSettings:
    """Knobs a test may change at any time (the facade exposes each as an attribute)."""

    batch_delay: float = 0.0
    cancel_delay: float = 0.0
    batch_rpm: int | None = None
    max_batch_bytes: int = MAX_BATCH_BYTES
    max_message_bytes: int = MAX_MESSAGE_BYTES


class EmulatorCore:
    """State and collaborators of one emulator."""

    __slots__ = (
        "auth",
        "billing",
        "clock",
        "faults",
        "ids",
        "limiter",
        "processor",
        "requests",
        "responders",
        "settings",
        "store",
    )

    def __init__(
        self,
        *,
        api_keys: Iterable[str] | None,
        oauth_tokens: Iterable[str] | None,
        batch_delay: float,
        clock: Clock | None,
        seed: int,
        responder: Responder | None,
        batch_rpm: int | None,
    ) -> None:
        self.settings = EmulatorSettings(batch_delay=batch_delay, batch_rpm=batch_rpm)
        self.clock = EmulatorClock(clock)
        self.ids = IdFactory(seed)
        self.auth = AuthPolicy(api_keys=api_keys, oauth_tokens=oauth_tokens)
        self.faults = FaultPlan(seed)
        self.limiter = RateLimiter()
        self.responders = ResponderRegistry(responder)
        self.requests: list[RequestRecord] = []
        self.billing: list[BillingRecord] = []
        self.processor = MessageProcessor(
            responders=self.responders, cache=PromptCache(), ids=self.ids, catalog=PricingCatalog.default()
        )
        self.store = BatchStore(processor=self.processor, ids=self.ids, billing=self.billing, seed=seed)

    def tick(self) -> float:
        """Bring every batch up to date with the clock; return the current emulator time."""
        now = self.clock.now()
        self.store.tick(now)
        return now
