"""HTTP responses of the emulator, including the broken ones its faults need."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from lore_core.errors import LoreError

from .payloads import error_body

__all__ = [
    "ApiError",
    "ConnectionDropped",
    "DroppedResponse",
    "TruncatedResponse",
    "error_response",
    "json_response",
]


class ApiError(Exception):
    """Raised by a handler to answer with an Anthropic error body (internal to the HTTP layer)."""

    def __init__(
        self, status: int, error_type: str, message: str, *, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.retry_after = retry_after


class ConnectionDropped(LoreError):
    """Raised inside the ASGI app, after the status line went out, to cut the connection.

    In process, ``httpx2.ASGITransport`` re-raises it to the client (the SDK reports ``APIConnectionError``);
    under uvicorn the connection closes before the body (``httpx2.RemoteProtocolError`` on the client).
    """

    retryable = True


def json_response(payload: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Compact JSON with ``content-type: application/json``."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return Response(body, status_code=status, headers=headers, media_type="application/json")


def error_response(
    status: int, error_type: str, message: str, *, request_id: str, retry_after: float | None = None
) -> Response:
    """An Anthropic error answer, with ``retry-after`` when given."""
    headers = {} if retry_after is None else {"retry-after": _seconds(retry_after)}
    return json_response(error_body(error_type, message, request_id), status=status, headers=headers)


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


class DroppedResponse(Response):
    """Sends the status line and headers of ``inner`` (or a bare 200), then drops the connection."""

    def __init__(self, inner: Response | None) -> None:
        super().__init__(
            b"x" if inner is None else inner.body, status_code=200 if inner is None else inner.status_code
        )
        if inner is not None:
            self.raw_headers = list(inner.raw_headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        raise ConnectionDropped("connection dropped by the fault plan")


class TruncatedResponse(Response):
    """Announces the whole body, sends the first ``cut`` bytes, then drops the connection."""

    def __init__(self, body: bytes, *, cut: int, media_type: str, headers: dict[str, str]) -> None:
        super().__init__(body, headers=headers, media_type=media_type)
        self._cut = cut

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": bytes(self.body[: self._cut]), "more_body": True})
        raise ConnectionDropped("results download truncated by the fault plan")
