"""The Starlette app: routing and the pipeline every call goes through.

Pipeline, in order: a scripted failure for the endpoint answers at once; a scripted drop before processing
cuts the connection; then ``anthropic-version`` (400 without), the credential (401 when missing or not
accepted), OAuth tokens on batch paths (403), the batch RPM limit (429 with ``retry-after``), and the handler.
Every call, answered or dropped, is appended to the request log, and every answer carries ``request-id``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .auth import Credential, extract_credential
from .core import EmulatorCore
from .endpoints import Call, CallInfo, Endpoints
from .faults import BATCH_ENDPOINTS, Endpoint
from .records import RequestRecord
from .responses import ApiError, DroppedResponse, error_response

__all__ = ["build_app"]

Handler = Callable[[Request, Call], Awaitable[Response]]
_BATCH = "/v1/messages/batches"
_BATCH_ID = _BATCH + "/{batch_id}"


class _Pipeline:
    __slots__ = ("_core",)

    def __init__(self, core: EmulatorCore) -> None:
        self._core = core

    def route(self, path: str, method: str, endpoint: Endpoint, handler: Handler) -> Route:
        """A Starlette route running ``handler`` through the pipeline."""

        async def run(request: Request) -> Response:
            return await self.handle(request, endpoint, handler)

        return Route(path, run, methods=[method], name=endpoint)

    async def handle(self, request: Request, endpoint: Endpoint, handler: Handler) -> Response:
        """Faults, checks, the handler, the request log and the ``request-id`` header, in that order."""
        core = self._core
        now = core.tick()
        credential = extract_credential(request.headers)
        request_id = core.ids.request_id()
        info = CallInfo()
        drop: bool | None = None
        failure = core.faults.take_failure(endpoint)
        if failure is not None:
            response = error_response(
                failure.status,
                failure.error_type,
                "injected fault",
                request_id=request_id,
                retry_after=failure.retry_after,
            )
        else:
            drop = core.faults.take_drop(endpoint)
            if drop is False:
                self._log(request, endpoint, 0, credential, now, request_id, info, dropped=True)
                return DroppedResponse(None)
            response = await self._answer(request, endpoint, handler, credential, now, request_id, info)
        response.headers["request-id"] = request_id
        self._log(
            request, endpoint, response.status_code, credential, now, request_id, info, dropped=bool(drop)
        )
        return DroppedResponse(response) if drop else response

    async def _answer(
        self,
        request: Request,
        endpoint: Endpoint,
        handler: Handler,
        credential: Credential | None,
        now: float,
        request_id: str,
        info: CallInfo,
    ) -> Response:
        try:
            fingerprint = self._admit(request, endpoint, credential, now)
            call = Call(
                endpoint=endpoint,
                credential_fp=fingerprint,
                workspace=_workspace(request),
                now=now,
                base_url=str(request.base_url),
                info=info,
            )
            return await handler(request, call)
        except ApiError as err:
            return error_response(
                err.status, err.error_type, err.message, request_id=request_id, retry_after=err.retry_after
            )

    def _admit(self, request: Request, endpoint: Endpoint, credential: Credential | None, now: float) -> str:
        core = self._core
        if not request.headers.get("anthropic-version"):
            raise ApiError(400, "invalid_request_error", "anthropic-version: header is required")
        if credential is None:
            raise ApiError(401, "authentication_error", "x-api-key header is required")
        if not core.auth.accepts(credential.value):
            raise ApiError(401, "authentication_error", "invalid x-api-key")
        if endpoint in BATCH_ENDPOINTS:
            if core.auth.is_oauth(credential.value):
                raise ApiError(403, "permission_error", "OAuth tokens cannot use the Message Batches API")
            wait = core.limiter.admit(credential.fingerprint, limit=core.settings.batch_rpm, now=now)
            if wait is not None:
                raise ApiError(
                    429, "rate_limit_error", "batch requests per minute limit exceeded", retry_after=wait
                )
        return credential.fingerprint

    def _log(
        self,
        request: Request,
        endpoint: str,
        status: int,
        credential: Credential | None,
        now: float,
        request_id: str,
        info: CallInfo,
        *,
        dropped: bool,
    ) -> None:
        self._core.requests.append(
            RequestRecord(
                method=request.method,
                path=request.url.path,
                endpoint=endpoint,
                status=status,
                credential_fp=None if credential is None else credential.fingerprint,
                scheme=None if credential is None else credential.scheme,
                workspace=_workspace(request),
                at=now,
                request_id=request_id,
                batch_request_count=info.batch_request_count,
                custom_ids=info.custom_ids,
                batch_id=info.batch_id,
                dropped=dropped,
            )
        )

    async def unrouted(self, request: Request, exc: Exception) -> Response:
        """404/405 for paths and methods the API does not have, as Anthropic error bodies (and logged)."""
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        now = self._core.clock.now()
        request_id = self._core.ids.request_id()
        message = (
            "method not allowed" if status == 405 else f"no route for {request.method} {request.url.path}"
        )
        error_type: Literal["not_found_error", "invalid_request_error"] = (
            "not_found_error" if status == 404 else "invalid_request_error"
        )
        response = error_response(status, error_type, message, request_id=request_id)
        response.headers["request-id"] = request_id
        credential = extract_credential(request.headers)
        self._log(request, "unknown", status, credential, now, request_id, CallInfo(), dropped=False)
        return response


def _workspace(request: Request) -> str | None:
    return request.headers.get("anthropic-workspace-id") or None


def build_app(core: EmulatorCore) -> Starlette:
    """The emulator's ASGI app over ``core``."""
    pipeline = _Pipeline(core)
    api = Endpoints(core)
    routes = [
        pipeline.route("/v1/messages", "POST", "messages", api.messages),
        pipeline.route("/v1/messages/count_tokens", "POST", "count_tokens", api.count_tokens),
        pipeline.route(_BATCH, "POST", "batch_create", api.batch_create),
        pipeline.route(_BATCH, "GET", "batch_list", api.batch_list),
        pipeline.route(_BATCH_ID, "GET", "batch_retrieve", api.batch_retrieve),
        pipeline.route(_BATCH_ID, "DELETE", "batch_delete", api.batch_delete),
        pipeline.route(_BATCH_ID + "/cancel", "POST", "batch_cancel", api.batch_cancel),
        pipeline.route(_BATCH_ID + "/results", "GET", "batch_results", api.batch_results),
    ]
    return Starlette(routes=routes, exception_handlers={404: pipeline.unrouted, 405: pipeline.unrouted})
