"""The queue and the flusher: when a group leaves, and how its batches are created (BATCH.md 5.1, 5.2, 5.4).

A group's window opens when its first item enters it empty (its oldest ``enqueued_at``); the group is due
once that item has waited one window, or at once when it holds the flush-now size. A flush takes every item
present. One flusher task sleeps until the next due time or an enqueue; every create runs in its own task, so
any number of batches are in flight and a slow create never holds another group.

Create policy: ``max_retries=0`` copies, up to 3 attempts (waits 5 s, 20 s, or the Retry-After up to 120 s);
after an ambiguous failure (timeout, dropped connection) the credential's newest batches are listed and a
single untracked one made since the attempt began, with our request total, is adopted; 413 halves the batch;
401/403 disables the credential and its sessions; any other 4xx, or the last failed attempt, falls back.

In-flight cap: at most ``max_inflight_requests`` (100,000 *default*, the tier-1 processing-queue limit) of a
credential's requests are in batches being created or not yet ended. A due group takes only what fits; the
rest stays queued (its window does not wake the loop again) until a batch of that credential ends or a
create gives up, and its rescue times still apply.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator, Set
from typing import TYPE_CHECKING, Any, Final

import anthropic
from anthropic.types.messages import MessageBatch

from lore_batch.limits import RETRYABLE_STATUSES, parse_retry_after

from .channels import Channel, describe_api_error
from .grouping import split
from .items import GroupKey, Item, chain_cause
from .waits import sleep_or_wake

if TYPE_CHECKING:
    from .core import Engine

__all__ = ["Flusher", "Queue", "adoption_candidates"]

logger = logging.getLogger(__name__)

CREATE_ATTEMPTS: Final = 3
# Waits after the first and second failed create (BATCH.md 5.4).
CREATE_WAITS: Final = (5.0, 20.0)
# The longest Retry-After a create honours.
MAX_CREATE_RETRY_AFTER: Final = 120.0
# How many of the credential's newest batches the adoption check reads.
ADOPTION_LIST_LIMIT: Final = 20
# Seconds an early flush (for a deadline) leaves before the last moment a batch could still make it.
EARLY_FLUSH_SLACK: Final = 1.0
# Slack for providers that report created_at in whole seconds.
_CREATED_AT_SLACK: Final = 1.0


class Queue:
    """Queued items by group, each group in arrival order. Claims are synchronous: nothing is taken twice."""

    def __init__(self) -> None:
        self._groups: dict[GroupKey, dict[str, Item]] = {}

    def put(self, item: Item) -> None:
        """Queue ``item`` in its group."""
        item.state = "queued"
        item.batch_id = None
        self._groups.setdefault(item.group, {})[item.id] = item

    def remove(self, item: Item) -> bool:
        """Take ``item`` out of the queue; whether it was there."""
        group = self._groups.get(item.group)
        if group is None or group.pop(item.id, None) is None:
            return False
        if not group:
            del self._groups[item.group]
        return True

    def take(self, key: GroupKey, limit: int | None = None) -> list[Item]:
        """The oldest ``limit`` items of group ``key`` (all when ``None``), oldest ``enqueued_at`` first."""
        group = self._groups.get(key, {})
        taken = sorted(group.values(), key=lambda item: item.enqueued_at)
        if limit is not None and limit < len(taken):
            taken = taken[: max(limit, 0)]
            for item in taken:
                del group[item.id]
        else:
            self._groups.pop(key, None)
        return taken

    def groups(self) -> list[GroupKey]:
        """The groups that hold items."""
        return list(self._groups)

    def due(
        self,
        now: float,
        *,
        window: float,
        flush_now: int,
        turnaround: float = 0.0,
        skip: Set[str] = frozenset(),
    ) -> list[GroupKey]:
        """Groups whose oldest item has waited ``window`` seconds, that hold ``flush_now`` items, or holding an
        item that must leave now to make a ``turnaround`` before its rescue time; groups of the credential
        fingerprints in ``skip`` are left out."""
        return [
            key
            for key, group in self._groups.items()
            if key.credential_fp not in skip
            and (len(group) >= flush_now or _due_at(group, window, turnaround) <= now)
        ]

    def next_due(
        self, *, window: float, turnaround: float = 0.0, skip: Set[str] = frozenset()
    ) -> float | None:
        """When the next group (not of a fingerprint in ``skip``) falls due by time; ``None`` if none will."""
        return min(
            (
                _due_at(group, window, turnaround)
                for key, group in self._groups.items()
                if key.credential_fp not in skip
            ),
            default=None,
        )

    def __iter__(self) -> Iterator[Item]:
        for group in self._groups.values():
            yield from group.values()

    def __len__(self) -> int:
        return sum(len(group) for group in self._groups.values())

    def __repr__(self) -> str:
        return f"Queue(groups={len(self._groups)}, items={len(self)})"


def _opened_at(group: dict[str, Item]) -> float:
    return min(item.enqueued_at for item in group.values())


def _due_at(group: dict[str, Item], window: float, turnaround: float) -> float:
    """The window's end, or earlier when an item's deadline needs the batch to leave sooner (an early flush)."""
    by_window = _opened_at(group) + window
    by_deadline = min(item.rescue_at for item in group.values()) - turnaround - EARLY_FLUSH_SLACK
    return min(by_window, by_deadline)


def adoption_candidates(
    page: Iterable[MessageBatch], *, tracked: Set[str], since: float, count: int
) -> list[MessageBatch]:
    """The batches of a list page a create that began at ``since`` (epoch seconds) with ``count`` requests may
    have made: untracked, created since then (less a second of slack), holding exactly ``count`` requests."""
    return [
        batch
        for batch in page
        if batch.id not in tracked
        and batch.created_at.timestamp() >= since - _CREATED_AT_SLACK
        and _request_total(batch) == count
    ]


def _request_total(batch: MessageBatch) -> int:
    counts = batch.request_counts
    return counts.processing + counts.succeeded + counts.errored + counts.canceled + counts.expired


def _retryable(status: int) -> bool:
    return status in RETRYABLE_STATUSES or status >= 500


class Flusher:
    """Owns the queue, the flush loop and every create."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.queue = Queue()
        self.wake = asyncio.Event()
        self.creating: set[asyncio.Task[None]] = set()
        # Requests per credential fingerprint in creates that have not finished yet.
        self.submitting: dict[str, int] = {}
        # Credential fingerprints whose in-flight cap is full: their groups wait for room.
        self.blocked: set[str] = set()

    async def run(self) -> None:
        """The flush loop: flush due groups, then sleep until the next due time or an enqueue."""
        settings, clock = self.engine.settings, self.engine.clock
        while True:
            self.wake.clear()
            now = clock.monotonic()
            turnaround = self.engine.turnaround()
            for key in self.queue.due(
                now,
                window=settings.window,
                flush_now=settings.flush_now,
                turnaround=turnaround,
                skip=self.blocked,
            ):
                self._submit_group(key)
            next_due = self.queue.next_due(window=settings.window, turnaround=turnaround, skip=self.blocked)
            await sleep_or_wake(clock, None if next_due is None else next_due - now, self.wake)

    def flush_all(self) -> list[asyncio.Task[None]]:
        """Submit every queued item that fits under the in-flight cap now; returns the create tasks started."""
        tasks: list[asyncio.Task[None]] = []
        for key in self.queue.groups():
            tasks.extend(self._submit_group(key))
        return tasks

    def room(self, credential_fp: str) -> int:
        """How many more requests of ``credential_fp`` may enter batches now (the in-flight cap)."""
        inflight = sum(
            len(batch.items)
            for batch in self.engine.poller.batches.values()
            if batch.group.credential_fp == credential_fp
        )
        used = inflight + self.submitting.get(credential_fp, 0)
        return self.engine.settings.max_inflight_requests - used

    def unblock(self) -> None:
        """Room may have appeared (a batch ended, a create finished): look at every group again."""
        if self.blocked:
            self.blocked.clear()
            self.wake.set()

    def _submit_group(self, key: GroupKey) -> list[asyncio.Task[None]]:
        room = self.room(key.credential_fp)
        if room <= 0:
            if key.credential_fp not in self.blocked:
                logger.info(
                    "credential %s is at its in-flight cap (%d requests): its queue waits",
                    key.credential_fp,
                    self.engine.settings.max_inflight_requests,
                )
            self.blocked.add(key.credential_fp)
            return []
        return self.submit(self.queue.take(key, limit=room))

    def submit(self, items: list[Item]) -> list[asyncio.Task[None]]:
        """Send one group's items on their way: fallback for those that may not batch, creates for the rest."""
        engine = self.engine
        now = engine.clock.monotonic()
        ready: list[Item] = []
        for item in items:
            if item.future.done():
                engine.settle(item, "abandoned")
            elif engine.disabled.blocks(item.credential, session_id=item.session_id) or not engine.can_flush(
                item, now
            ):
                engine.fallback(item, None)
            else:
                ready.append(item)
        settings = engine.settings
        parts = split(ready, max_requests=settings.max_requests, max_bytes=settings.max_bytes)
        for item in parts.oversize:
            logger.info("item %s is over the batch byte cap: fallback", item.id)
            engine.fallback(item, None)
        tasks: list[asyncio.Task[None]] = []
        for chunk in parts.batches:
            for item in chunk:
                item.state = "submitting"
                item.next_custom_id()
            fp = chunk[0].group.credential_fp
            self.submitting[fp] = self.submitting.get(fp, 0) + len(chunk)
            task = engine.spawn(self._create_guarded(list(chunk)), name="lore_batch.create")
            self.creating.add(task)
            task.add_done_callback(self.creating.discard)
            tasks.append(task)
        return tasks

    async def _create_guarded(self, items: list[Item]) -> None:
        fp = items[0].group.credential_fp
        try:
            await self._create(items)
        except Exception as exc:  # a bug must not strand the items: they fall back
            logger.exception("batch create failed unexpectedly; %d item(s) fall back", len(items))
            for item in items:
                if item.state == "submitting":
                    self.engine.fallback(item, exc)
        finally:
            left = self.submitting.get(fp, 0) - len(items)
            if left > 0:
                self.submitting[fp] = left
            else:
                self.submitting.pop(fp, None)
            self.unblock()

    async def _create(self, items: list[Item]) -> None:
        engine = self.engine
        clock = engine.clock
        channel = engine.channels.get(items[0].credential)
        key = items[0].group
        last_error: BaseException | None = None
        live = items
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            live = [item for item in items if item.state == "submitting"]
            if not live:
                return
            started = clock.now()
            retry_after: float | None = None
            try:
                await channel.bucket.acquire(1)
                created = await channel.client.messages.batches.create(
                    requests=[_request(item) for item in live],
                    workspace_id=key.workspace or anthropic.omit,
                )
            except anthropic.APIStatusError as exc:
                last_error = chain_cause(exc, last_error)
                logger.warning(
                    "batch create failed: credential=%s requests=%d attempt=%d %s",
                    key.credential_fp,
                    len(live),
                    attempt,
                    describe_api_error(exc),
                )
                if self._refused(exc, live):
                    if exc.status_code == 413:
                        await self._halve(live, exc)
                    return
                retry_after = parse_retry_after(exc.response.headers, now=clock.now())
            except anthropic.APIConnectionError as exc:
                last_error = chain_cause(exc, last_error)
                logger.warning(
                    "batch create ambiguous: credential=%s requests=%d attempt=%d %s",
                    key.credential_fp,
                    len(live),
                    attempt,
                    describe_api_error(exc),
                )
                if await self._adopt(channel, key, live, started=started):
                    return
            else:
                engine.poller.track(created, channel, key, live)
                return
            if attempt < CREATE_ATTEMPTS:
                asked = min(retry_after, MAX_CREATE_RETRY_AFTER) if retry_after is not None else 0.0
                await clock.sleep(max(CREATE_WAITS[attempt - 1], asked))
        logger.warning(
            "batch create gave up after %d attempts: credential=%s; %d item(s) fall back",
            CREATE_ATTEMPTS,
            key.credential_fp,
            len(live),
        )
        for item in live:
            if item.state == "submitting":
                engine.fallback(item, last_error)

    def _refused(self, exc: anthropic.APIStatusError, items: list[Item]) -> bool:
        """Handle a definite refusal (413, 401/403, other 4xx); ``False`` when the create may be retried."""
        status = exc.status_code
        if status == 413:
            return True
        if status in (401, 403):
            self.engine.disable(items, status_code=status, reason=str(exc.type or "refused"))
        elif _retryable(status):
            return False
        for item in items:
            self.engine.fallback(item, exc)
        return True

    async def _halve(self, items: list[Item], exc: anthropic.APIStatusError) -> None:
        if len(items) == 1:
            self.engine.fallback(items[0], exc)
            return
        middle = len(items) // 2
        logger.info(
            "batch of %d requests too large: retrying as %d + %d", len(items), middle, len(items) - middle
        )
        await asyncio.gather(self._create(items[:middle]), self._create(items[middle:]))

    async def _adopt(self, channel: Channel, key: GroupKey, items: list[Item], *, started: float) -> bool:
        """After an ambiguous create: adopt the one untracked batch made since ``started`` with our total."""
        engine = self.engine
        try:
            await channel.bucket.acquire(1)
            page = await channel.client.messages.batches.list(
                limit=ADOPTION_LIST_LIMIT, workspace_id=key.workspace or anthropic.omit
            )
        except anthropic.APIError as exc:
            logger.warning(
                "adoption check failed: credential=%s %s", key.credential_fp, describe_api_error(exc)
            )
            return False
        candidates = adoption_candidates(
            page.data, tracked=engine.known_batches, since=started, count=len(items)
        )
        if len(candidates) != 1:
            logger.info("adoption check found %d candidate(s): retrying the create", len(candidates))
            return False
        logger.warning("adopted batch %s after an ambiguous create", candidates[0].id)
        engine.poller.track(candidates[0], channel, key, items)
        return True


def _request(item: Item) -> Any:
    return {"custom_id": item.custom_id, "params": item.params}
