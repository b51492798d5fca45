"""Reading and applying a batch's results (BATCH.md 5.2, 5.4).

``decoder = await client.messages.batches.results(batch_id)`` then ``async for``: each line is applied as it
arrives, joined to its item through a dict by custom_id, and application is idempotent (the first line per
custom_id wins). A download that fails is retried (3 attempts, after 5 s and 20 s); after a JSON error the
retry reads the SDK's streaming-response form line by line and skips what it cannot use. After a full pass,
items without a line are *missing*; when results are gone (404 or archived) every unsettled item is.

Outcomes, per line of an item still waiting under this custom_id:

=============================================================  ================================================
``succeeded``                                                  delivered (route ``batch``), logged at batch prices
``errored`` invalid_request / not_found / too_large / billing  ``BatchItemErrored``; no retry, no fallback
``errored`` authentication_error / permission_error            disable the credential and session; fallback
``errored`` anything else                                      resubmit (attempts, deadline), then fallback
``expired``; missing line                                      resubmit (attempts, deadline), then fallback
``canceled`` (not by us)                                       fallback
=============================================================  ================================================

A succeeded line for an item no longer waiting on it (rescued, abandoned, or an older attempt) was paid for:
it is logged as ``batch_superseded`` and not delivered.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import anthropic
import httpx2
from anthropic.types import Message
from anthropic.types.messages import MessageBatchIndividualResponse

from lore_batch.costlog import LogStatus
from lore_batch.errors import BatchItemErrored

from .channels import DOWNLOAD_TOKENS, describe_api_error

if TYPE_CHECKING:
    from .core import Engine
    from .poller import InFlightBatch

__all__ = [
    "AUTH_ERRORS",
    "FINAL_ERRORS",
    "RESULT_TYPES",
    "ResultLine",
    "ResultReader",
    "parse_line",
    "stream_results",
]

logger = logging.getLogger(__name__)

DOWNLOAD_ATTEMPTS: Final = 3
DOWNLOAD_WAITS: Final = (5.0, 20.0)
# Errored types a sync call would fail the same way: the caller gets BatchItemErrored.
FINAL_ERRORS: Final = frozenset(
    {"invalid_request_error", "not_found_error", "request_too_large", "billing_error"}
)
# The result types a line may carry; any other line is skipped.
RESULT_TYPES: Final = frozenset({"succeeded", "errored", "canceled", "expired"})
# Errored types that mean the credential may not batch.
AUTH_ERRORS: Final = frozenset({"authentication_error", "permission_error"})


@dataclass(frozen=True, slots=True, kw_only=True)
class ResultLine:
    """One result line, reduced to what the engine uses."""

    custom_id: str
    type: str
    message: Message | None = None
    error_type: str | None = None
    error_message: str | None = None
    request_id: str | None = None

    @classmethod
    def from_sdk(cls, line: MessageBatchIndividualResponse) -> ResultLine:
        """From the SDK's decoded line; ``ValueError`` for a line without a custom_id or with an unknown
        ``result.type`` (the SDK's decoder does not validate)."""
        custom_id = getattr(line, "custom_id", None)
        result: Any = getattr(line, "result", None)
        kind = getattr(result, "type", None)
        if not isinstance(custom_id, str) or not custom_id:
            raise ValueError("result line without a custom_id")
        if kind not in RESULT_TYPES:
            raise ValueError("result line with an unknown result type")
        if kind == "succeeded":
            message = getattr(result, "message", None)
            if message is None:
                raise ValueError("succeeded result line without a message")
            return cls(custom_id=custom_id, type="succeeded", message=message)
        if kind == "errored":
            envelope = getattr(result, "error", None)
            error = getattr(envelope, "error", None)
            return cls(
                custom_id=custom_id,
                type="errored",
                error_type=str(getattr(error, "type", None) or "unknown"),
                error_message=getattr(error, "message", None),
                request_id=getattr(envelope, "request_id", None),
            )
        return cls(custom_id=custom_id, type=str(kind))


def parse_line(raw: str) -> ResultLine | None:
    """A raw JSONL line as a :class:`ResultLine`; ``None`` if it is unparsable, lacks a custom_id, or has an
    unknown ``result.type``."""
    if not raw.strip():
        return None
    try:
        return ResultLine.from_sdk(MessageBatchIndividualResponse.model_validate(json.loads(raw)))
    except (ValueError, TypeError, AttributeError):
        return None


async def stream_results(
    client: anthropic.AsyncAnthropic, batch_id: str, workspace: str | None, *, tolerant: bool
) -> AsyncIterator[ResultLine]:
    """The result lines of ``batch_id`` as they arrive.

    Strict (``tolerant=False``): the SDK's decoder (``await results(id)``, then ``async for``); a JSON error or
    an unusable line raises ``ValueError``. Tolerant: the SDK's streaming-response form read line by line,
    skipping (and logging) unparsable lines, lines without a custom_id and unknown result types.
    """
    workspace_id: Any = workspace or anthropic.omit
    if not tolerant:
        decoder = await client.messages.batches.results(batch_id, workspace_id=workspace_id)
        async for sdk_line in decoder:
            yield ResultLine.from_sdk(sdk_line)
        return
    async with client.messages.batches.with_streaming_response.results(
        batch_id, workspace_id=workspace_id
    ) as response:
        async for raw in response.iter_lines():
            line = parse_line(raw)
            if line is None:
                logger.warning("results of batch %s: skipped an unusable line", batch_id)
                continue
            yield line


class ResultReader:
    """Downloads results and applies them to the engine's items."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def download(self, batch: InFlightBatch, *, archived: bool = False) -> None:
        """Read every line of an ended ``batch``, then treat items without a line as missing."""
        if archived:
            self.all_missing(batch, reason="archived")
            return
        tolerant = False
        for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
            try:
                await batch.channel.bucket.acquire(DOWNLOAD_TOKENS)
                if tolerant:
                    await self._read_tolerant(batch)
                else:
                    await self._read(batch)
            except anthropic.NotFoundError:
                logger.warning("results of batch %s are gone (404)", batch.id)
                break
            except ValueError as exc:  # a JSON error or an unusable line: read line by line next time
                logger.warning(
                    "results of batch %s: unparsable line (%s); retrying tolerantly",
                    batch.id,
                    type(exc).__name__,
                )
                tolerant = True
            except (anthropic.APIError, httpx2.HTTPError) as exc:
                logger.warning("results of batch %s: download failed: %s", batch.id, describe_api_error(exc))
            except Exception:
                logger.exception("results of batch %s: download failed unexpectedly", batch.id)
            else:
                break
            if attempt < DOWNLOAD_ATTEMPTS:
                await self.engine.clock.sleep(DOWNLOAD_WAITS[attempt - 1])
        self.all_missing(batch, reason="missing")

    async def _read(self, batch: InFlightBatch) -> None:
        async for line in stream_results(
            batch.channel.client, batch.id, batch.group.workspace, tolerant=False
        ):
            await self.apply(batch, line)

    async def _read_tolerant(self, batch: InFlightBatch) -> None:
        async for line in stream_results(
            batch.channel.client, batch.id, batch.group.workspace, tolerant=True
        ):
            await self.apply(batch, line)

    async def apply(self, batch: InFlightBatch, line: ResultLine) -> None:
        """Apply one line (idempotent: a custom_id already applied is skipped)."""
        if line.custom_id in batch.applied:
            return
        batch.applied.add(line.custom_id)
        engine = self.engine
        item = batch.items.get(line.custom_id)
        if item is None:
            logger.warning("batch %s: result for unknown custom_id %s ignored", batch.id, line.custom_id)
            return
        if batch.current(line.custom_id) is None:
            if line.type == "succeeded" and line.message is not None:
                logger.info("batch %s: late result %s logged as batch_superseded", batch.id, line.custom_id)
                await engine.ledger.record_item(
                    item, route="batch_superseded", status="ok", message=line.message, batch_id=batch.id,
                    custom_id=line.custom_id,
                )  # fmt: skip
            return
        if line.type == "succeeded" and line.message is not None:
            await engine.deliver_batch(item, batch.id, line.message)
            return
        error = BatchItemErrored(
            line.custom_id, batch.id, line.error_type or line.type, line.error_message, line.request_id
        )
        status: LogStatus = (
            "errored" if line.type == "errored" else "expired" if line.type == "expired" else "canceled"
        )
        await engine.ledger.record_item(
            item, route="batch", status=status, message=None, batch_id=batch.id, custom_id=line.custom_id
        )
        logger.info(
            "batch %s: item %s %s (%s, request_id=%s)",
            batch.id,
            line.custom_id,
            line.type,
            line.error_type or "-",
            line.request_id,
        )
        if line.type == "errored" and line.error_type in FINAL_ERRORS:
            engine.fail(item, error)
        elif line.type == "errored" and line.error_type in AUTH_ERRORS:
            engine.disable([item], status_code=None, reason=line.error_type or "refused")
            engine.fallback(item, error)
        elif line.type == "canceled":
            engine.fallback(item, error)
        else:
            engine.retry_or_fallback(item, error)

    def all_missing(self, batch: InFlightBatch, *, reason: str) -> None:
        """Every item still waiting on ``batch`` without a line is missing: resubmit rules apply."""
        for item in batch.waiting():
            custom_id = item.custom_id or item.id
            if custom_id in batch.applied:
                continue
            logger.info("batch %s: item %s %s", batch.id, custom_id, reason)
            self.engine.retry_or_fallback(item, BatchItemErrored(custom_id, batch.id, reason))
