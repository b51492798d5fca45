"""The eight API endpoints. Each runs after the pipeline in :mod:`.app` has authenticated the call."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .core import EmulatorCore
from .faults import Endpoint
from .payloads import batch_json
from .responses import ApiError, TruncatedResponse, json_response
from .state import Batch
from .usage import count_prompt_tokens
from .validation import batch_requests_problem, count_tokens_problem, message_problem

__all__ = ["Call", "CallInfo", "Endpoints"]

_RESULTS_MEDIA_TYPE = "application/x-jsonl"
_LIST_LIMIT_DEFAULT = 20
_LIST_LIMIT_MAX = 1000


@dataclass(slots=True)
class CallInfo:
    """What a handler learned that belongs in the request log."""

    batch_id: str | None = None
    batch_request_count: int | None = None
    custom_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Call:
    """One authenticated call: who made it, when, and where it came in."""

    endpoint: Endpoint
    credential_fp: str
    workspace: str | None
    now: float
    base_url: str
    info: CallInfo


def _bad_request(message: str) -> ApiError:
    return ApiError(400, "invalid_request_error", message)


async def read_json(request: Request, *, cap: int) -> Any:
    """The JSON body, refusing more than ``cap`` bytes (checked on Content-Length, then while reading).

    Raises:
        ApiError: 413 ``request_too_large`` over the cap, 400 for a body that is not JSON.
    """
    too_large = ApiError(413, "request_too_large", f"request body exceeds the {cap}-byte limit")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise too_large
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except ValueError as exc:
        raise _bad_request("request body is not valid JSON") from exc


class Endpoints:
    """Handlers bound to one emulator core."""

    __slots__ = ("_core",)

    def __init__(self, core: EmulatorCore) -> None:
        self._core = core

    def _owned(self, request: Request, call: Call) -> Batch:
        batch_id = str(request.path_params["batch_id"])
        call.info.batch_id = batch_id
        batch = self._core.store.get(batch_id, credential_fp=call.credential_fp, workspace=call.workspace)
        if batch is None:
            raise ApiError(404, "not_found_error", f"message batch {batch_id!r} not found")
        return batch

    def _render(self, batch: Batch, call: Call) -> Response:
        return json_response(batch_json(batch.snapshot(), base_url=call.base_url))

    async def messages(self, request: Request, call: Call) -> Response:
        """``POST /v1/messages``, non-streaming only (``stream: true`` is a 400)."""
        params = await read_json(request, cap=self._core.settings.max_message_bytes)
        problem = message_problem(params)
        if problem is not None:
            raise _bad_request(problem)
        processor = self._core.processor
        completion = processor.complete(
            params, credential_fp=call.credential_fp, at=call.now, service_tier="standard"
        )
        self._core.billing.append(
            processor.bill(completion, route="sync", credential_fp=call.credential_fp, at=call.now)
        )
        return json_response(completion.message)

    async def count_tokens(self, request: Request, call: Call) -> Response:
        """``POST /v1/messages/count_tokens``: ``{"input_tokens": n}`` (see :mod:`.usage`)."""
        params = await read_json(request, cap=self._core.settings.max_message_bytes)
        problem = count_tokens_problem(params)
        if problem is not None:
            raise _bad_request(problem)
        return json_response({"input_tokens": count_prompt_tokens(params)})

    async def batch_create(self, request: Request, call: Call) -> Response:
        """``POST /v1/messages/batches``: shape, count and custom_id checks now; params at the end."""
        body = await read_json(request, cap=self._core.settings.max_batch_bytes)
        requests = body.get("requests") if isinstance(body, Mapping) else None
        if isinstance(requests, list):
            call.info.batch_request_count = len(requests)
            call.info.custom_ids = tuple(
                item["custom_id"]
                for item in requests
                if isinstance(item, Mapping) and isinstance(item.get("custom_id"), str)
            )
        problem = batch_requests_problem(requests)
        if problem is not None or not isinstance(requests, list):
            raise _bad_request(problem or "requests: field required")
        settings = self._core.settings
        batch = self._core.store.create(
            [(item["custom_id"], dict(item["params"])) for item in requests],
            credential_fp=call.credential_fp,
            workspace=call.workspace,
            now=call.now,
            delay=settings.batch_delay,
            rates=self._core.faults.outcome_rates,
        )
        call.info.batch_id = batch.id
        return self._render(batch, call)

    async def batch_retrieve(self, request: Request, call: Call) -> Response:
        """``GET /v1/messages/batches/{id}`` (with the ``early_counts`` fault, counts that run ahead)."""
        batch = self._owned(request, call)
        body = batch_json(batch.snapshot(), base_url=call.base_url)
        if body["processing_status"] == "in_progress" and self._core.faults.take_early_counts():
            counts = body["request_counts"]
            counts["succeeded"], counts["processing"] = counts["processing"] + counts["succeeded"], 0
        return json_response(body)

    async def batch_list(self, request: Request, call: Call) -> Response:
        """``GET /v1/messages/batches``: newest first; cursors ``after_id``/``before_id``; ``limit``."""
        query = request.query_params
        raw_limit = query.get("limit", str(_LIST_LIMIT_DEFAULT))
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= _LIST_LIMIT_MAX:
            raise _bad_request(f"limit: must be an integer from 1 to {_LIST_LIMIT_MAX}")
        limit = int(raw_limit)
        after_id, before_id = query.get("after_id"), query.get("before_id")
        if after_id and before_id:
            raise _bad_request("after_id and before_id cannot be combined")
        batches = self._core.store.visible(credential_fp=call.credential_fp, workspace=call.workspace)
        ids = [batch.id for batch in batches]
        cursor = after_id or before_id
        if cursor and cursor not in ids:
            raise _bad_request(f"invalid cursor {cursor!r}")
        if after_id:
            start = ids.index(after_id) + 1
            page, has_more = batches[start : start + limit], start + limit < len(batches)
        elif before_id:
            end = ids.index(before_id)
            page, has_more = batches[max(0, end - limit) : end], end - limit > 0
        else:
            page, has_more = batches[:limit], limit < len(batches)
        return json_response(
            {
                "data": [batch_json(b.snapshot(), base_url=call.base_url) for b in page],
                "has_more": has_more,
                "first_id": page[0].id if page else None,
                "last_id": page[-1].id if page else None,
            }
        )

    async def batch_cancel(self, request: Request, call: Call) -> Response:
        """``POST /v1/messages/batches/{id}/cancel``: ``in_progress`` → ``canceling``; otherwise unchanged."""
        batch = self._owned(request, call)
        self._core.store.cancel(batch, now=call.now, cancel_delay=self._core.settings.cancel_delay)
        return self._render(batch, call)

    async def batch_results(self, request: Request, call: Call) -> Response:
        """``GET /v1/messages/batches/{id}/results``: JSONL, 400 until ended, 404 once archived."""
        batch = self._owned(request, call)
        if batch.ended_at is None:
            raise _bad_request(f"message batch {batch.id!r} has not ended; results are not available yet")
        if batch.archived_at is not None:
            raise ApiError(
                404, "not_found_error", f"results of message batch {batch.id!r} have been archived"
            )
        faults = self._core.faults
        lines = [json.dumps(line, separators=(",", ":"), ensure_ascii=False) for line in batch.result_lines()]
        plan = faults.take_download_faults()
        body = "".join(line + "\n" for line in plan.apply(lines, faults.rng)).encode()
        if plan.truncate:
            return TruncatedResponse(body, cut=len(body) // 2, media_type=_RESULTS_MEDIA_TYPE, headers={})
        return Response(body, media_type=_RESULTS_MEDIA_TYPE)

    async def batch_delete(self, request: Request, call: Call) -> Response:
        """``DELETE /v1/messages/batches/{id}``: only once ended (400 before)."""
        batch = self._owned(request, call)
        if batch.ended_at is None:
            raise _bad_request(
                f"message batch {batch.id!r} is still processing; cancel it and wait for it to end"
            )
        self._core.store.delete(batch)
        return json_response({"id": batch.id, "type": "message_batch_deleted"})
