"""Fixtures for the synchronous client: the emulator, a manual clock, and a transport hook for the few faults
(timeouts, calls held open) the emulator cannot produce."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import anthropic
import httpx2
import pytest

from lore_batch.clock import ManualClock
from lore_batch.emulator import AnthropicEmulator, RequestRecord, ResponderOutput, echo_responder
from lore_batch.limits import RetryPolicy
from lore_batch.sync_client import AnthropicLLMClient

API_KEY = "sk-ant-api03-TESTKEY-do-not-leak-0123456789"
BASE_URL = "http://emulator.local"


class Capture:
    """An emulator responder that records every request's params and answers like the echo responder."""

    def __init__(self, answer: Callable[[Mapping[str, Any]], ResponderOutput] = echo_responder) -> None:
        self.params: list[dict[str, Any]] = []
        self._answer = answer

    def __call__(self, params: Mapping[str, Any]) -> ResponderOutput:
        self.params.append(dict(params))
        return self._answer(params)

    @property
    def last(self) -> dict[str, Any]:
        return self.params[-1]


class HookTransport(httpx2.AsyncBaseTransport):
    """Wraps the emulator's ASGI transport: raises scripted exceptions, or holds chosen requests open.

    Used only for what the emulator cannot do itself: client-side timeouts and requests kept in flight.
    """

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self.inner = inner
        self.raise_next: list[Exception] = []
        self.hold: Callable[[str], bool] = lambda _user: False
        self.gate = asyncio.Event()
        self.held = 0
        self.in_flight = 0
        self.peak = 0
        self.arrivals: list[str] = []
        self._arrived = asyncio.Event()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if self.raise_next:
            raise self.raise_next.pop(0)
        user = _user_text(request)
        self.arrivals.append(user)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            if self.hold(user):
                self.held += 1
                self._arrived.set()
                await self.gate.wait()
            return await self.inner.handle_async_request(request)
        finally:
            self.in_flight -= 1

    async def wait_held(self, count: int) -> None:
        """Return once ``count`` requests are held (event driven)."""
        while self.held < count:
            self._arrived.clear()
            await self._arrived.wait()

    async def aclose(self) -> None:
        await self.inner.aclose()


def _user_text(request: httpx2.Request) -> str:
    try:
        body = json.loads(request.content)
        return str(body["messages"][0]["content"])
    except (ValueError, KeyError, IndexError, TypeError):
        return ""


@pytest.fixture
def capture() -> Capture:
    return Capture()


@pytest.fixture
def emu(capture: Capture) -> AnthropicEmulator:
    return AnthropicEmulator(responder=capture)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(auto_advance=True)


@pytest.fixture
async def sdk(emu: AnthropicEmulator) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with emu.client(api_key=API_KEY) as client:
        yield client


@pytest.fixture
async def hooked(emu: AnthropicEmulator) -> AsyncIterator[tuple[anthropic.AsyncAnthropic, HookTransport]]:
    transport = HookTransport(httpx2.ASGITransport(app=emu.app))
    client = anthropic.AsyncAnthropic(
        api_key=API_KEY, base_url=BASE_URL, max_retries=0, http_client=httpx2.AsyncClient(transport=transport)
    )
    async with client:
        yield client, transport


@pytest.fixture
def make_llm(sdk: anthropic.AsyncAnthropic, clock: ManualClock) -> Callable[..., AnthropicLLMClient]:
    def make(**kwargs: Any) -> AnthropicLLMClient:
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("retry", RetryPolicy(jitter=0.0))
        return AnthropicLLMClient(kwargs.pop("client", sdk), **kwargs)

    return make


def message_calls(emu: AnthropicEmulator) -> list[RequestRecord]:
    """The ``/v1/messages`` requests the emulator saw, oldest first."""
    return [r for r in emu.requests if r.endpoint == "messages"]
