"""An in-memory emulator of the Anthropic API (Messages and Message Batches), served as an ASGI app.

In process, ``emu.client()`` is a real ``anthropic.AsyncAnthropic`` over ``httpx2.ASGITransport``; over a
socket, ``async with emu.serve() as base_url`` runs uvicorn on 127.0.0.1, and :func:`run` serves until
interrupted.
Contract: ``docs/internal/emulator-api.md``.
"""

from __future__ import annotations

from .clock import Clock, ManualClock
from .emulator import AnthropicEmulator, run
from .faults import Endpoint, FaultPlan
from .records import BatchSnapshot, BillingRecord, RequestCounts, RequestRecord
from .responders import Matcher, Responder, ResponderOutput, echo_responder
from .responses import ConnectionDropped
from .validation import is_known_model

__all__ = [
    "AnthropicEmulator",
    "BatchSnapshot",
    "BillingRecord",
    "Clock",
    "ConnectionDropped",
    "Endpoint",
    "FaultPlan",
    "ManualClock",
    "Matcher",
    "RequestCounts",
    "RequestRecord",
    "Responder",
    "ResponderOutput",
    "echo_responder",
    "is_known_model",
    "run",
]
