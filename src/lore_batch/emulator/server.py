"""Serving the emulator over a socket with uvicorn: embedded in a running loop, or blocking for the CLI."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager

import uvicorn
from starlette.types import ASGIApp

from lore_core.errors import ConfigError

from .responses import ConnectionDropped

__all__ = ["serve_app", "serve_forever"]

logger = logging.getLogger(__name__)
_UVICORN_LOGGER = "uvicorn.error"
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves the host's signal handlers alone and stops as soon as it is told to."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._stop = asyncio.Event()

    def stop(self) -> None:
        """Ask the server to shut down (gracefully)."""
        self.should_exit = True
        self._stop.set()

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def main_loop(self) -> None:
        await self.on_tick(0)  # sets the Date header once
        await self._stop.wait()


class _StandaloneServer(uvicorn.Server):
    """A uvicorn server for a process of its own: SIGINT and SIGTERM stop it and ``run`` simply returns.

    (Stock uvicorn re-raises the captured signal after shutdown, which surfaces as a KeyboardInterrupt.)
    """

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        loop = asyncio.get_running_loop()
        for sig in _STOP_SIGNALS:
            loop.add_signal_handler(sig, self.handle_exit, sig, None)
        try:
            yield
        finally:
            for sig in _STOP_SIGNALS:
                loop.remove_signal_handler(sig)


class _HideScriptedDrops(logging.Filter):
    """Drops uvicorn's "Exception in ASGI application" records caused by a scripted connection drop."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, ConnectionDropped)


@contextmanager
def _quiet_scripted_drops() -> Iterator[None]:
    log = logging.getLogger(_UVICORN_LOGGER)
    hide = _HideScriptedDrops()
    log.addFilter(hide)
    try:
        yield
    finally:
        log.removeFilter(hide)


def _listen(host: str, port: int) -> socket.socket:
    # proto must be IPPROTO_TCP: asyncio sets TCP_NODELAY only on such sockets, and without it every response
    # (status line, then body) waits ~40 ms for a delayed ACK. socket.create_server leaves proto at 0.
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}") from exc
    return sock


def _base_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _config(app: ASGIApp, log_level: str) -> uvicorn.Config:
    return uvicorn.Config(
        app, lifespan="off", log_level=log_level, log_config=None, http="h11", access_log=False
    )


async def _started(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    while not server.started:
        if task.done():
            await task  # raises what stopped the server
            raise ConfigError("the emulator server stopped during startup")
        await asyncio.sleep(0.002)


@asynccontextmanager
async def serve_app(app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn as a task of the running loop; yield its base URL; stop it cleanly on exit.

    ``port=0`` picks a free port. Signal handlers are left alone (the host owns them).

    Raises:
        ConfigError: the address cannot be bound.
    """
    sock = _listen(host, port)
    server = _EmbeddedServer(_config(app, "warning"))
    with _quiet_scripted_drops():
        task = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            await _started(server, task)
            yield _base_url(sock)
        finally:
            server.stop()
            await task
            sock.close()


def serve_forever(
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    on_ready: Callable[[str], None] | None = None,
    log_level: str = "info",
) -> None:
    """Serve ``app`` until SIGINT/SIGTERM (blocking; runs its own event loop).

    ``on_ready(base_url)`` is called once the socket accepts connections.

    Raises:
        ConfigError: the address cannot be bound.
    """
    sock = _listen(host, port)

    async def main() -> None:
        server = _StandaloneServer(_config(app, log_level))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        await _started(server, task)
        base_url = _base_url(sock)
        logger.info("Anthropic emulator listening on %s", base_url)
        if on_ready is not None:
            on_ready(base_url)
        await task

    with _quiet_scripted_drops():
        asyncio.run(main())
