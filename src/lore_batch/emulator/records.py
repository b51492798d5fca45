"""What the emulator records for assertions: requests, billed items and batch snapshots.

Records carry credential fingerprints, never credentials.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

__all__ = [
    "BatchSnapshot",
    "BillingRecord",
    "ProcessingStatus",
    "RequestCounts",
    "RequestRecord",
    "ResultType",
]

ProcessingStatus = Literal["in_progress", "canceling", "ended"]
ResultType = Literal["succeeded", "errored", "canceled", "expired"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestRecord:
    """One HTTP request the emulator answered (or dropped).

    ``endpoint`` is one of the fault-plan endpoint names, or ``"unknown"`` for an unrouted path. ``status`` is
    the status the emulator produced; with ``dropped=True`` the client never received it (``0`` when the
    connection was dropped before processing). ``batch_request_count`` and ``custom_ids`` are set for a batch
    create whose body could be parsed; ``batch_id`` for every call naming or creating a batch.
    """

    method: str
    path: str
    endpoint: str
    status: int
    credential_fp: str | None
    scheme: str | None
    workspace: str | None
    at: float
    request_id: str
    batch_request_count: int | None = None
    custom_ids: tuple[str, ...] = ()
    batch_id: str | None = None
    dropped: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class BillingRecord:
    """One billed item: a successful ``/v1/messages`` call (``route="sync"``) or a succeeded batch item.

    ``cost_usd`` comes from the shipped price catalog (batch items at the batch columns); it is ``0`` for a
    model the catalog does not price.
    """

    route: Literal["sync", "batch"]
    model: str
    batch_id: str | None
    custom_id: str | None
    credential_fp: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_5m_tokens: int
    cache_write_1h_tokens: int
    cost_usd: Decimal
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestCounts:
    """A batch's ``request_counts``: all ``processing`` until the batch ends."""

    processing: int = 0
    succeeded: int = 0
    errored: int = 0
    canceled: int = 0
    expired: int = 0

    def to_json(self) -> dict[str, int]:
        """The wire form."""
        return {
            "processing": self.processing,
            "succeeded": self.succeeded,
            "errored": self.errored,
            "canceled": self.canceled,
            "expired": self.expired,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchSnapshot:
    """A read-only view of one batch at the moment it was taken. Times are epoch seconds.

    ``outcomes`` maps each custom_id to its result type once the batch has ended (empty before).
    """

    id: str
    processing_status: ProcessingStatus
    request_counts: RequestCounts
    created_at: float
    expires_at: float
    ended_at: float | None
    cancel_initiated_at: float | None
    archived_at: float | None
    credential_fp: str
    workspace: str | None
    custom_ids: tuple[str, ...]
    outcomes: Mapping[str, ResultType] = field(default_factory=dict)
