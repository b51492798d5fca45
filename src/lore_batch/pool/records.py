"""Records of the durable pool, built from rows in exactly one place, and the codecs of stored outcomes.

A finished item's row holds either ``result`` (route ``batch``: the provider's ``Message`` as JSON; route
``fallback``: the :class:`~lore_core.llm.LLMResponse` fields) or ``error`` (a tagged JSON object). The codecs
turn them back into what the awaiting caller or a result handler gets: an ``LLMResponse`` or a typed error.
Nothing here stores a credential or logs text.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from anthropic.types import Message
from sqlalchemy.engine import RowMapping

from lore_batch.engine.items import PromptCall
from lore_batch.errors import BatchItemErrored, CredentialUnavailable, FallbackFailed
from lore_batch.sync_client import llm_response_from_message
from lore_batch.usage import usage_from_api
from lore_core.errors import LLMError
from lore_core.llm import LLMResponse, Usage

__all__ = [
    "HandledResult",
    "ResultHandler",
    "StoredBatch",
    "StoredItem",
    "call_from_json",
    "call_to_json",
    "decode_error",
    "decode_response",
    "error_json",
    "fallback_json",
    "jsonb_safe",
]

# Item states whose outcome is stored and not yet handed to a waiter or handler.
FINISHED: Final = ("done", "failed")
# Item states a leader still works on.
ACTIVE: Final = ("queued", "submitting", "in_batch", "rescued")


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredItem:
    """One ``lore_batch_items`` row."""

    id: str
    custom_id: str | None
    submission_id: str | None
    credential_fp: str
    workspace: str | None
    model: str
    worker: str | None
    session_id: str | None
    params: dict[str, Any]
    call: PromptCall
    params_bytes: int
    deadline: datetime
    state: str
    batch_id: str | None
    attempts: int
    owner_id: str
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    route: str | None
    rescued_by: str | None
    handler_attempts: int
    enqueued_at: datetime

    @classmethod
    def from_row(cls, row: RowMapping) -> StoredItem:
        """The record of a row of ``lore_batch_items``."""
        return cls(
            id=row["id"],
            custom_id=row["custom_id"],
            submission_id=row["submission_id"],
            credential_fp=row["credential_fp"],
            workspace=row["workspace"],
            model=row["model"],
            worker=row["worker"],
            session_id=row["session_id"],
            params=dict(row["params"]),
            call=call_from_json(row["call"]),
            params_bytes=row["params_bytes"],
            deadline=row["deadline"],
            state=row["state"],
            batch_id=row["batch_id"],
            attempts=row["attempts"],
            owner_id=row["owner_id"],
            result=row["result"],
            error=row["error"],
            route=row["route"],
            rescued_by=row["rescued_by"],
            handler_attempts=row["handler_attempts"],
            enqueued_at=row["enqueued_at"],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredBatch:
    """One ``lore_batch_batches`` row."""

    submission_id: str
    id: str | None
    credential_fp: str
    workspace: str | None
    process_id: str
    status: str
    request_count: int
    polls: int
    created_at: datetime
    next_poll_at: datetime | None
    cancel_requested_at: datetime | None

    @classmethod
    def from_row(cls, row: RowMapping) -> StoredBatch:
        """The record of a row of ``lore_batch_batches``."""
        return cls(
            submission_id=row["submission_id"],
            id=row["id"],
            credential_fp=row["credential_fp"],
            workspace=row["workspace"],
            process_id=row["process_id"],
            status=row["status"],
            request_count=row["request_count"],
            polls=row["polls"],
            created_at=row["created_at"],
            next_poll_at=row["next_poll_at"],
            cancel_requested_at=row["cancel_requested_at"],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class HandledResult:
    """What a result handler gets: the item, its original call, and its answer or its error.

    Exactly one of ``response`` and ``error`` is set.
    """

    item_id: str
    worker: str | None
    session_id: str | None
    call: PromptCall
    response: LLMResponse | None = None
    error: BaseException | None = None


ResultHandler = Callable[[HandledResult], Awaitable[None]]
"""``async fn(HandledResult)``, registered per worker label with ``BatchLLMClient.register_handler``."""


def call_to_json(call: PromptCall) -> dict[str, Any]:
    """The original call as a JSON object."""
    return dataclasses.asdict(call)


def call_from_json(value: Mapping[str, Any]) -> PromptCall:
    """The original call back from :func:`call_to_json`."""
    return PromptCall(
        system=value["system"],
        user=value["user"],
        model=value.get("model"),
        max_tokens=value.get("max_tokens"),
        temperature=value.get("temperature"),
        session_id=value.get("session_id"),
        worker=value.get("worker"),
    )


def fallback_json(response: LLMResponse) -> dict[str, Any]:
    """A fallback's answer as the ``result`` column holds it."""
    return {"text": response.text, "model": response.model, "usage": dataclasses.asdict(response.usage)}


def decode_response(route: str | None, result: Mapping[str, Any]) -> LLMResponse:
    """The ``LLMResponse`` of a stored result (route ``batch``: a ``Message``; ``fallback``: its fields)."""
    if route == "batch":
        message = Message.model_validate(result)
        return dataclasses.replace(
            llm_response_from_message(message, route="batch"),
            usage=usage_from_api(message.usage, default_write_ttl="1h"),
        )
    return LLMResponse(
        text=result["text"], usage=Usage(**result["usage"]), model=result["model"], route="fallback"
    )


def jsonb_safe(value: Any) -> Any:
    """``value`` with NUL characters in its strings replaced by U+FFFD: PostgreSQL's JSONB refuses ``\u0000``,
    and one such answer must not keep a whole chunk of results out of the store."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, dict):
        return {key: jsonb_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [jsonb_safe(item) for item in value]
    return value


def error_json(error: BaseException) -> dict[str, Any]:
    """A failure as the ``error`` column holds it: its kind and ids, never message text or secrets."""
    if isinstance(error, BatchItemErrored):
        return {
            "kind": "batch_item_errored",
            "custom_id": error.custom_id,
            "batch_id": error.batch_id,
            "error_type": error.error_type,
            "request_id": error.request_id,
        }
    if isinstance(error, CredentialUnavailable):
        return {
            "kind": "credential_unavailable",
            "credential_fp": error.credential_fp,
            "waited": error.waited,
        }
    status = error.status if isinstance(error, LLMError) else None
    return {"kind": "fallback_failed", "error_type": type(error).__name__, "status": status}


def decode_error(item_id: str, error: Mapping[str, Any]) -> BaseException:
    """The typed error of a stored failure (see :func:`error_json`)."""
    kind = error.get("kind")
    if kind == "batch_item_errored":
        return BatchItemErrored(
            error["custom_id"], error["batch_id"], error.get("error_type"), None, error.get("request_id")
        )
    if kind == "credential_unavailable":
        return CredentialUnavailable(item_id, error["credential_fp"], float(error["waited"]))
    return FallbackFailed(item_id, str(error.get("error_type") or "unknown"), error.get("status"))
