"""Wire JSON the emulator sends: error bodies, batch objects, timestamps."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .records import BatchSnapshot

__all__ = ["batch_json", "error_body", "results_url", "rfc3339"]


def rfc3339(epoch: float | None) -> str | None:
    """``2024-08-20T18:37:24.100435Z`` for an epoch time; ``None`` stays ``None``."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def error_body(error_type: str, message: str, request_id: str | None) -> dict[str, Any]:
    """``{"type": "error", "error": {"type", "message"}, "request_id"}``."""
    return {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}


def results_url(base_url: str, batch_id: str) -> str:
    """The absolute results URL, built from the base URL the request came in on (ends with ``/``)."""
    return f"{base_url.rstrip('/')}/v1/messages/batches/{batch_id}/results"


def batch_json(batch: BatchSnapshot, *, base_url: str) -> dict[str, Any]:
    """A ``message_batch`` object; ``results_url`` only once the batch has ended."""
    ended = batch.processing_status == "ended"
    return {
        "id": batch.id,
        "type": "message_batch",
        "processing_status": batch.processing_status,
        "request_counts": batch.request_counts.to_json(),
        "ended_at": rfc3339(batch.ended_at),
        "created_at": rfc3339(batch.created_at),
        "expires_at": rfc3339(batch.expires_at),
        "archived_at": rfc3339(batch.archived_at),
        "cancel_initiated_at": rfc3339(batch.cancel_initiated_at),
        "results_url": results_url(base_url, batch.id) if ended else None,
    }
