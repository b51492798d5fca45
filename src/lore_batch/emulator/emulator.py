"""The public face of the emulator: :class:`AnthropicEmulator`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from types import MappingProxyType
from typing import TYPE_CHECKING

from starlette.applications import Starlette

from .app import build_app
from .clock import Clock
from .core import EmulatorCore
from .faults import FaultPlan
from .records import BatchSnapshot, BillingRecord, RequestRecord
from .responders import Matcher, Responder
from .server import serve_app, serve_forever

if TYPE_CHECKING:
    from anthropic import AsyncAnthropic

__all__ = ["EMULATOR_BASE_URL", "AnthropicEmulator", "run"]

EMULATOR_BASE_URL = "http://emulator.local"
"""Base URL of in-process clients (the host only ends up in ``results_url``)."""


class AnthropicEmulator:
    """An in-memory Anthropic API (Messages, token counting, Message Batches) served as an ASGI app.

    ``api_keys=None`` accepts any credential; a collection accepts only those values plus OAuth tokens.
    ``oauth_tokens`` lists OAuth token values (default: any value starting ``sk-ant-oat``); they work on
    ``/v1/messages`` and get 403 on batch paths. ``batch_delay`` is how long a batch stays ``in_progress``;
    ``clock`` returns epoch seconds (``None``: real time); ``seed`` fixes ids, orders and fault draws;
    ``responder`` replaces the default echo; ``batch_rpm`` limits batch-endpoint requests per minute per
    credential.

    ::

        emu = AnthropicEmulator(clock=ManualClock(), batch_delay=60)
        async with emu.client() as client:
            batch = await client.messages.batches.create(requests=[...])
            emu.advance(60)
            async for line in await client.messages.batches.results(batch.id):
                ...
    """

    def __init__(
        self,
        *,
        api_keys: Iterable[str] | None = None,
        oauth_tokens: Iterable[str] | None = None,
        batch_delay: float = 0.0,
        clock: Clock | None = None,
        seed: int = 0,
        responder: Responder | None = None,
        batch_rpm: int | None = None,
        worker_responders: bool = True,
    ) -> None:
        self._core = EmulatorCore(
            api_keys=api_keys,
            oauth_tokens=oauth_tokens,
            batch_delay=batch_delay,
            clock=clock,
            seed=seed,
            responder=responder,
            batch_rpm=batch_rpm,
        )
        if worker_responders:
            # Imported here: the worker responders pull in the engine's prompt parsers.
            from lore_batch.emulator.workers import WORKER_RESPONDERS

            for match, worker_responder in WORKER_RESPONDERS:
                self._core.responders.add_builtin(match, worker_responder)
        self.app: Starlette = build_app(self._core)
        """The ASGI app."""

    # -- clients and serving ---------------------------------------------------------------------------------

    def client(
        self,
        api_key: str | None = "sk-ant-test",
        *,
        auth_token: str | None = None,
        max_retries: int = 0,
        workspace_id: str | None = None,
    ) -> AsyncAnthropic:
        """A real ``AsyncAnthropic`` talking to this emulator in process (``httpx2.ASGITransport``).

        ``auth_token`` (an OAuth token) replaces ``api_key`` when given. ``workspace_id`` is sent as
        ``anthropic-workspace-id`` on every call. Close the client (``async with``) when done.
        """
        # Imported here: the SDK takes over a second to import and serving (`lore emulator`) never needs it.
        import httpx2
        from anthropic import AsyncAnthropic

        http_client = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=self.app))
        headers = {"anthropic-workspace-id": workspace_id} if workspace_id else None
        if auth_token is not None:
            return AsyncAnthropic(
                auth_token=auth_token,
                base_url=EMULATOR_BASE_URL,
                max_retries=max_retries,
                http_client=http_client,
                default_headers=headers,
            )
        return AsyncAnthropic(
            api_key=api_key,
            base_url=EMULATOR_BASE_URL,
            max_retries=max_retries,
            http_client=http_client,
            default_headers=headers,
        )

    @asynccontextmanager
    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
        """Serve over a real socket with uvicorn in the running loop; yields ``"http://127.0.0.1:N"``.

        Raises:
            ConfigError: the address cannot be bound.
        """
        async with serve_app(self.app, host=host, port=port) as base_url:
            yield base_url

    # -- time ------------------------------------------------------------------------------------------------

    def now(self) -> float:
        """The emulator's current time (epoch seconds)."""
        return self._core.clock.now()

    def advance(self, seconds: float) -> None:
        """Move the emulator's time forward (with or without an injected clock).

        Raises:
            ConfigError: ``seconds`` is negative.
        """
        self._core.clock.advance(seconds)
        self._core.tick()

    def end_all(self) -> None:
        """Every unfinished batch finishes processing now (canceling ones finish canceling)."""
        self._core.store.end_all(self._core.clock.now())

    # -- behaviour -------------------------------------------------------------------------------------------

    @property
    def faults(self) -> FaultPlan:
        """The fault script (see :class:`FaultPlan`)."""
        return self._core.faults

    def add_responder(self, match: Matcher, responder: Responder) -> None:
        """Answer params where ``match(params)`` with ``responder``; tried in order, before the built-in
        worker responders and the default."""
        self._core.responders.add(match, responder)

    @property
    def batch_delay(self) -> float:
        """Seconds a new batch stays ``in_progress``."""
        return self._core.settings.batch_delay

    @batch_delay.setter
    def batch_delay(self, value: float) -> None:
        self._core.settings.batch_delay = value

    @property
    def cancel_delay(self) -> float:
        """Seconds a canceled batch stays ``canceling`` (at most until it would have ended); default 0."""
        return self._core.settings.cancel_delay

    @cancel_delay.setter
    def cancel_delay(self, value: float) -> None:
        self._core.settings.cancel_delay = value

    @property
    def batch_rpm(self) -> int | None:
        """Batch-endpoint requests per minute per credential (``None``: unlimited)."""
        return self._core.settings.batch_rpm

    @batch_rpm.setter
    def batch_rpm(self, value: int | None) -> None:
        self._core.settings.batch_rpm = value

    @property
    def max_batch_bytes(self) -> int:
        """Largest batch-create body accepted (413 above); 256 MiB like the real service."""
        return self._core.settings.max_batch_bytes

    @max_batch_bytes.setter
    def max_batch_bytes(self, value: int) -> None:
        self._core.settings.max_batch_bytes = value

    @property
    def max_message_bytes(self) -> int:
        """Largest ``/v1/messages`` or ``count_tokens`` body accepted (413 above); 32 MiB."""
        return self._core.settings.max_message_bytes

    @max_message_bytes.setter
    def max_message_bytes(self, value: int) -> None:
        self._core.settings.max_message_bytes = value

    # -- what happened ---------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request so far, oldest first (a copy)."""
        return list(self._core.requests)

    @property
    def billing(self) -> list[BillingRecord]:
        """Every billed item so far (batches due by now are processed first; a copy)."""
        self._core.tick()
        return list(self._core.billing)

    @property
    def batches(self) -> Mapping[str, BatchSnapshot]:
        """Snapshots of every batch not deleted, by id, oldest first (brought up to date with the clock)."""
        self._core.tick()
        return MappingProxyType({batch.id: batch.snapshot() for batch in self._core.store.all()})

    def __repr__(self) -> str:
        core = self._core
        return f"AnthropicEmulator(batches={len(core.store.all())}, requests={len(core.requests)})"


def run(
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    emulator: AnthropicEmulator | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve ``emulator`` (default: a fresh one) on ``host:port`` until SIGINT/SIGTERM; blocking.

    The entry point of ``lore emulator --port N``. ``on_ready(base_url)`` is called once the socket accepts
    connections (``port=0`` picks a free port).

    Raises:
        ConfigError: the address cannot be bound.
    """
    app = (emulator if emulator is not None else AnthropicEmulator()).app
    serve_forever(app, host=host, port=port, on_ready=on_ready)
