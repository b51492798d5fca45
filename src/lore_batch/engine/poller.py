"""The one poll loop over every in-flight batch, which also wakes at rescue times (BATCH.md 5.2, 5.3).

The first poll is 5 s after the create; each later gap doubles (5, 10, 20, 40, 60, ...) up to the poll cap,
with ``±jitter`` drawn from the engine's rng. Every poll spends one token from the batch credential's bucket;
a Retry-After pauses that credential's bucket only (at most 300 s). Only ``processing_status`` is read. A
poll error keeps the batch and backs off; 404 means the batch is lost and its unsettled items are missing;
401/403 keeps polling at the cap until the items' rescue times. Polls of one batch never overlap, and each
runs in its own task.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import anthropic
from anthropic.types.messages import MessageBatch

from lore_batch.limits import parse_retry_after

from .channels import Channel, describe_api_error
from .items import GroupKey, Item
from .waits import sleep_or_wake

if TYPE_CHECKING:
    from .core import Engine

__all__ = ["FIRST_POLL_GAP", "InFlightBatch", "Poller", "poll_gap"]

logger = logging.getLogger(__name__)

# Seconds from a create to its first poll; later gaps double up to the poll cap.
FIRST_POLL_GAP: Final = 5.0
# The longest pause a poll's Retry-After imposes on its credential.
MAX_POLL_RETRY_AFTER: Final = 300.0


def poll_gap(polls: int, *, cap: float, jitter: float, rng: random.Random) -> float:
    """Seconds before the poll that follows ``polls`` earlier polls: 5 s doubling up to ``cap``, ``±jitter``.

    Example::

        [poll_gap(n, cap=60.0, jitter=0.0, rng=random.Random()) for n in range(6)]  # [5, 10, 20, 40, 60, 60]
    """
    base = min(FIRST_POLL_GAP * 2.0 ** min(polls, 30), cap)
    if jitter:
        base *= 1.0 + jitter * (2.0 * rng.random() - 1.0)
    return base


@dataclass(slots=True, eq=False, kw_only=True)
class InFlightBatch:
    """A submitted batch and the items it was created with (by the custom_id they had then)."""

    id: str
    channel: Channel
    group: GroupKey
    items: dict[str, Item]
    created_at: float
    next_poll_at: float
    polls: int = 0
    polling: bool = False
    cancel_wanted: bool = False
    cancel_sent: bool = False
    applied: set[str] = field(default_factory=set)

    def current(self, custom_id: str) -> Item | None:
        """The item this line belongs to, if it still waits on this batch under this custom_id."""
        item = self.items.get(custom_id)
        if item is None or item.custom_id != custom_id or item.batch_id != self.id:
            return None
        return item if item.state == "in_batch" and not item.future.done() else None

    def waiting(self) -> list[Item]:
        """Items whose callers still wait on this batch."""
        return [item for cid, item in self.items.items() if self.current(cid) is not None]

    def __repr__(self) -> str:
        return (
            f"InFlightBatch(id={self.id!r}, credential_fp={self.group.credential_fp!r}, "
            f"requests={len(self.items)}, polls={self.polls}, cancel_wanted={self.cancel_wanted})"
        )


class Poller:
    """In-flight batches and the loop that polls them and fires rescues."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.batches: dict[str, InFlightBatch] = {}
        self.wake = asyncio.Event()

    def gap(self, polls: int) -> float:
        """Seconds before the poll that follows ``polls`` earlier polls, jittered."""
        settings = self.engine.settings
        return poll_gap(polls, cap=settings.poll_cap, jitter=settings.jitter, rng=self.engine.rng)

    def track(self, created: MessageBatch, channel: Channel, group: GroupKey, items: list[Item]) -> None:
        """Start polling a batch just created (or adopted) for ``items``."""
        engine = self.engine
        now = engine.clock.monotonic()
        batch = InFlightBatch(
            id=created.id,
            channel=channel,
            group=group,
            items={item.custom_id: item for item in items if item.custom_id is not None},
            created_at=now,
            next_poll_at=now + self.gap(0),
        )
        for item in items:
            item.batch_id = created.id
            if item.state == "submitting":
                item.state = "in_batch"
        self.batches[batch.id] = batch
        engine.known_batches.add(batch.id)
        engine.counters.batches_submitted += 1
        logger.info(
            "batch %s created: credential=%s requests=%d", batch.id, group.credential_fp, len(batch.items)
        )
        if engine.on_created is not None:
            try:
                engine.on_created(created, len(batch.items))
            except Exception:
                logger.exception("on_batch_submitted callback failed for batch %s", batch.id)
        engine.check_waiters(batch)
        self.wake.set()

    def forget(self, batch: InFlightBatch) -> None:
        """Stop tracking ``batch``."""
        if self.batches.pop(batch.id, None) is not None:
            self.engine.changed.set()
            self.engine.flusher.unblock()

    async def run(self) -> None:
        """The loop: fire due rescues, start due polls, sleep until the next of either (or a wake)."""
        engine = self.engine
        clock = engine.clock
        while True:
            self.wake.clear()
            now = clock.monotonic()
            next_at = engine.rescue_due(now)
            for batch in list(self.batches.values()):
                if batch.polling:
                    continue
                if batch.next_poll_at <= now:
                    batch.polling = True
                    engine.spawn(self._poll(batch), name="lore_batch.poll")
                elif next_at is None or batch.next_poll_at < next_at:
                    next_at = batch.next_poll_at
            await sleep_or_wake(clock, None if next_at is None else next_at - now, self.wake)

    def poll_soon(self) -> None:
        """Poll every in-flight batch at the loop's next turn (used at close)."""
        now = self.engine.clock.monotonic()
        for batch in self.batches.values():
            batch.next_poll_at = min(batch.next_poll_at, now)
        self.wake.set()

    async def _poll(self, batch: InFlightBatch) -> None:
        channel = batch.channel
        try:
            if batch.cancel_wanted and not batch.cancel_sent:
                await self.cancel_upstream(batch)
            await channel.bucket.acquire(1)
            status = await channel.client.messages.batches.retrieve(
                batch.id, workspace_id=batch.group.workspace or anthropic.omit
            )
        except (anthropic.APIStatusError, anthropic.APIConnectionError) as exc:
            self._failed(batch, exc)
        except Exception:
            logger.exception("poll of batch %s failed unexpectedly; keeping it", batch.id)
            self._reschedule(batch)
        else:
            if status.processing_status == "ended":
                if not batch.cancel_sent:  # a cancelled batch's age says nothing about turnaround
                    self.engine.turnarounds.append(self.engine.clock.monotonic() - batch.created_at)
                    self.engine.flusher.wake.set()  # queued deadlines are judged against it
                await self.engine.results.download(batch, archived=status.archived_at is not None)
                self.forget(batch)
            else:
                self._reschedule(batch)
        finally:
            batch.polling = False
            self.wake.set()

    def _reschedule(self, batch: InFlightBatch, *, gap: float | None = None) -> None:
        batch.polls += 1
        if gap is None:
            # While closing, poll at the first gap so a batch that ends inside the grace is still read.
            gap = FIRST_POLL_GAP if self.engine.closing else self.gap(batch.polls)
        batch.next_poll_at = self.engine.clock.monotonic() + gap

    def _failed(self, batch: InFlightBatch, exc: anthropic.APIError) -> None:
        status = exc.status_code if isinstance(exc, anthropic.APIStatusError) else None
        logger.info("poll of batch %s failed: %s", batch.id, describe_api_error(exc))
        if status == 404:
            logger.warning("batch %s is lost (404); its unsettled items are missing", batch.id)
            self.engine.results.all_missing(batch, reason="lost")
            self.forget(batch)
            return
        if isinstance(exc, anthropic.APIStatusError) and status == 429:
            asked = parse_retry_after(exc.response.headers, now=self.engine.clock.now())
            if asked:
                batch.channel.bucket.pause(min(asked, MAX_POLL_RETRY_AFTER))
        if status in (401, 403):
            self._reschedule(batch, gap=self.engine.settings.poll_cap)
            return
        self._reschedule(batch)

    async def cancel_upstream(self, batch: InFlightBatch) -> None:
        """Ask the provider to cancel ``batch`` (once); results already made will still be read."""
        if batch.cancel_sent:
            return
        batch.cancel_wanted = batch.cancel_sent = True
        channel = batch.channel
        try:
            await channel.bucket.acquire(1)
            await channel.client.messages.batches.cancel(
                batch.id, workspace_id=batch.group.workspace or anthropic.omit
            )
        except anthropic.APIError as exc:
            batch.cancel_sent = False  # the next poll tries again
            logger.warning("cancel of batch %s failed: %s", batch.id, describe_api_error(exc))
        else:
            logger.info("batch %s cancelled upstream: no waiter left", batch.id)
