"""The batch state machine: create, cancel, delete, and lazy processing on the emulator clock.

Timeline of a batch with ``n`` items created at ``t0`` with ``batch_delay = d``:

* item ``k`` (a seeded rank ``0..n-1``) would finish at ``t0 + d * (k + 1) / n``;
* the batch stays ``in_progress`` (all counts ``processing``) until ``t0 + d``, or ``expires_at = t0 + 24 h``
  if sooner, then ends; results are computed at that moment (lazily: when anyone next looks);
* a cancel at ``c`` shows ``canceling`` and ends at ``min(c + cancel_delay, t0 + d)``: items that would have
  finished by ``c`` are processed (and billed), the rest are ``canceled``;
* items that would finish after ``expires_at`` are ``expired``;
* ``end_all`` ends every unfinished batch now with every (non-canceled) item processed;
* 29 days after it ended a batch is archived: ``archived_at`` is set and its results are gone.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .faults import OutcomeRates
from .ids import IdFactory
from .payloads import error_body
from .processing import MessageProcessor
from .records import BatchSnapshot, BillingRecord, ProcessingStatus, RequestCounts, ResultType
from .validation import batch_item_problem

__all__ = ["ARCHIVE_AFTER_SECONDS", "EXPIRE_AFTER_SECONDS", "Batch", "BatchItem", "BatchStore"]

logger = logging.getLogger(__name__)

EXPIRE_AFTER_SECONDS = 24 * 3600.0
ARCHIVE_AFTER_SECONDS = 29 * 24 * 3600.0


@dataclass(slots=True, kw_only=True)
class BatchItem:
    """One request of a batch, and its result once the batch has ended."""

    custom_id: str
    params: dict[str, Any]
    finish_at: float
    result_type: ResultType | None = None
    result: dict[str, Any] | None = None


@dataclass(slots=True, kw_only=True)
class Batch:
    """Mutable state of one batch (only the store changes it)."""

    id: str
    seq: int
    credential_fp: str
    workspace: str | None
    created_at: float
    expires_at: float
    due_at: float
    items: list[BatchItem]
    rates: OutcomeRates
    cancel_initiated_at: float | None = None
    ended_at: float | None = None
    archived_at: float | None = None
    result_order: list[int] = field(default_factory=list)

    @property
    def status(self) -> ProcessingStatus:
        """``in_progress``, ``canceling`` or ``ended``."""
        if self.ended_at is not None:
            return "ended"
        return "in_progress" if self.cancel_initiated_at is None else "canceling"

    def counts(self) -> RequestCounts:
        """``request_counts``: everything ``processing`` until the end."""
        if self.ended_at is None:
            return RequestCounts(processing=len(self.items))
        tally = {"succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        for item in self.items:
            if item.result_type is not None:
                tally[item.result_type] += 1
        return RequestCounts(**tally)

    def result_lines(self) -> Iterator[dict[str, Any]]:
        """The result lines, in the batch's seeded order."""
        for index in self.result_order:
            item = self.items[index]
            yield {"custom_id": item.custom_id, "result": item.result}

    def snapshot(self) -> BatchSnapshot:
        """A frozen view for assertions and for rendering."""
        outcomes = MappingProxyType(
            {i.custom_id: i.result_type for i in self.items if i.result_type is not None}
        )
        return BatchSnapshot(
            id=self.id,
            processing_status=self.status,
            request_counts=self.counts(),
            created_at=self.created_at,
            expires_at=self.expires_at,
            ended_at=self.ended_at,
            cancel_initiated_at=self.cancel_initiated_at,
            archived_at=self.archived_at,
            credential_fp=self.credential_fp,
            workspace=self.workspace,
            custom_ids=tuple(i.custom_id for i in self.items),
            outcomes=outcomes,
        )


class BatchStore:
    """All batches, keyed by id; processing happens in :meth:`tick` and :meth:`end_all`."""

    __slots__ = ("_batches", "_billing", "_ids", "_processor", "_seed", "_seq")

    def __init__(
        self, *, processor: MessageProcessor, ids: IdFactory, billing: list[BillingRecord], seed: int
    ) -> None:
        self._processor = processor
        self._ids = ids
        self._billing = billing
        self._seed = seed
        self._batches: dict[str, Batch] = {}
        self._seq = 0

    def _rng(self, batch_id: str, purpose: str) -> random.Random:
        return random.Random(f"batch:{self._seed}:{batch_id}:{purpose}")

    def create(
        self,
        requests: list[tuple[str, dict[str, Any]]],
        *,
        credential_fp: str,
        workspace: str | None,
        now: float,
        delay: float,
        rates: OutcomeRates,
    ) -> Batch:
        """Store a new ``in_progress`` batch (requests already validated for shape)."""
        batch_id = self._ids.batch_id()
        ranks = list(range(len(requests)))
        self._rng(batch_id, "finish").shuffle(ranks)
        n = len(requests)
        items = [
            BatchItem(custom_id=cid, params=params, finish_at=now + delay * (rank + 1) / n)
            for (cid, params), rank in zip(requests, ranks, strict=True)
        ]
        expires_at = now + EXPIRE_AFTER_SECONDS
        self._seq += 1
        batch = Batch(
            id=batch_id,
            seq=self._seq,
            credential_fp=credential_fp,
            workspace=workspace,
            created_at=now,
            expires_at=expires_at,
            due_at=min(now + delay, expires_at),
            items=items,
            rates=rates,
        )
        self._batches[batch_id] = batch
        logger.debug("batch %s created with %d requests", batch_id, n)
        return batch

    def get(self, batch_id: str, *, credential_fp: str, workspace: str | None) -> Batch | None:
        """The batch, if it exists and belongs to this credential and workspace."""
        batch = self._batches.get(batch_id)
        if batch is None or batch.credential_fp != credential_fp or batch.workspace != workspace:
            return None
        return batch

    def visible(self, *, credential_fp: str, workspace: str | None) -> list[Batch]:
        """This owner's batches, newest first."""
        mine = [
            b for b in self._batches.values() if b.credential_fp == credential_fp and b.workspace == workspace
        ]
        return sorted(mine, key=lambda b: b.seq, reverse=True)

    def all(self) -> list[Batch]:
        """Every batch, oldest first."""
        return sorted(self._batches.values(), key=lambda b: b.seq)

    def cancel(self, batch: Batch, *, now: float, cancel_delay: float) -> None:
        """Start canceling an ``in_progress`` batch; other states are left as they are."""
        if batch.status != "in_progress":
            return
        batch.cancel_initiated_at = now
        batch.due_at = min(now + cancel_delay, batch.due_at)

    def delete(self, batch: Batch) -> None:
        """Forget an ended batch."""
        del self._batches[batch.id]

    def tick(self, now: float) -> None:
        """End every batch due by ``now`` (in due order) and archive old results."""
        due = [b for b in self._batches.values() if b.ended_at is None and b.due_at <= now]
        due.sort(key=lambda b: (b.due_at, b.seq))
        for batch in due:
            self._finish(batch, at=batch.due_at, forced=False)
        for batch in self._batches.values():
            if batch.ended_at is not None and batch.archived_at is None:
                archive_at = batch.ended_at + ARCHIVE_AFTER_SECONDS
                if archive_at <= now:
                    batch.archived_at = archive_at

    def end_all(self, now: float) -> None:
        """End every unfinished batch at ``now``: items are processed unless canceled."""
        self.tick(now)
        for batch in self.all():
            if batch.ended_at is None:
                self._finish(batch, at=now, forced=True)

    def _finish(self, batch: Batch, *, at: float, forced: bool) -> None:
        rng = self._rng(batch.id, "outcomes")
        order = sorted(range(len(batch.items)), key=lambda i: (batch.items[i].finish_at, i))
        for index in order:
            item = batch.items[index]
            fault = batch.rates.draw(rng)
            item.result_type, item.result = self._outcome(batch, item, fault, at=at, forced=forced)
        batch.result_order = list(range(len(batch.items)))
        self._rng(batch.id, "order").shuffle(batch.result_order)
        batch.ended_at = at
        logger.debug("batch %s ended: %s", batch.id, batch.counts())

    def _outcome(
        self, batch: Batch, item: BatchItem, fault: str | None, *, at: float, forced: bool
    ) -> tuple[ResultType, dict[str, Any]]:
        cancel_at = batch.cancel_initiated_at
        if cancel_at is not None and item.finish_at > cancel_at:
            return "canceled", {"type": "canceled"}
        if (not forced and item.finish_at > batch.expires_at) or fault == "expired":
            return "expired", {"type": "expired"}
        if fault == "canceled":
            return "canceled", {"type": "canceled"}
        if fault == "errored":
            return "errored", self._errored(batch.rates.error_type, "injected fault")
        problem = batch_item_problem(item.params)
        if problem is not None:
            return "errored", self._errored("invalid_request_error", problem)
        done_at = min(item.finish_at, at)
        completion = self._processor.complete(
            item.params, credential_fp=batch.credential_fp, at=done_at, service_tier="batch"
        )
        self._billing.append(
            self._processor.bill(
                completion,
                route="batch",
                credential_fp=batch.credential_fp,
                at=done_at,
                batch_id=batch.id,
                custom_id=item.custom_id,
            )
        )
        return "succeeded", {"type": "succeeded", "message": completion.message}

    def _errored(self, error_type: str, message: str) -> dict[str, Any]:
        error = error_body(error_type, message, self._ids.request_id())
        return {"type": "errored", "error": error}
