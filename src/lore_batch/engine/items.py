"""Queued calls as records: ids, custom_ids, states, and the Messages params of a worker call (BATCH.md 5.1).

An :class:`Item` is one queued call. Its id is a ULID (26 Crockford base32 characters, sortable by time); each
submission of it gets the custom_id ``lb-<ULID>-<attempt>``, at most 31 characters, which carries no session
id and no prompt text. States::

    queued → submitting → in_batch → done | failed → delivered
    plus rescued (a sync call is running) and abandoned (memory mode: no waiter left)

A resubmit returns an item to ``queued`` with ``attempts + 1`` and keeps ``enqueued_at``, so it leaves in the
next flush.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from anthropic.types import Message

from lore_batch.auth import AuthCredential

__all__ = [
    "CUSTOM_ID_PATTERN",
    "REQUEST_OVERHEAD_BYTES",
    "GroupKey",
    "Item",
    "ItemState",
    "PromptCall",
    "build_params",
    "chain_cause",
    "custom_id",
    "new_ulid",
    "params_size",
]

ItemState = Literal["queued", "submitting", "in_batch", "done", "failed", "delivered", "rescued", "abandoned"]

# What the API accepts as a custom_id (BATCH.md 11).
CUSTOM_ID_PATTERN: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Bytes counted per request on top of its params' compact JSON: the custom_id and the request wrapper.
REQUEST_OVERHEAD_BYTES: Final = 64

_CROCKFORD: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_ulid(now: float) -> str:
    """A ULID for the wall time ``now`` (epoch seconds): 48 bits of milliseconds, then 80 random bits.

    Example::

        len(new_ulid(1_700_000_000.0))  # 26
    """
    value = (int(now * 1000) & ((1 << 48) - 1)) << 80 | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def custom_id(item_id: str, attempt: int) -> str:
    """The custom_id of submission number ``attempt`` (1-based) of item ``item_id``.

    Example::

        custom_id("01JD3Q8Z5X7K2M4N6P8R0T2V4W", 1)  # "lb-01JD3Q8Z5X7K2M4N6P8R0T2V4W-1"
    """
    return f"lb-{item_id}-{attempt}"


@dataclass(frozen=True, slots=True, kw_only=True)
class PromptCall:
    """The original ``LLMClient.prompt`` call, kept so a fallback replays it exactly (``urgent`` aside)."""

    system: str
    user: str
    model: str | None
    max_tokens: int | None
    temperature: float | None
    session_id: str | None
    worker: str | None


@dataclass(frozen=True, slots=True)
class GroupKey:
    """What items must share to go into one batch: a batch belongs to one key and one workspace."""

    credential_fp: str
    provider: str
    workspace: str | None


def build_params(call: PromptCall, *, model: str, max_tokens: int) -> dict[str, Any]:
    """The Anthropic Messages params of a worker call (BATCH.md 3.1).

    ``system`` becomes one text block with a 1-hour cache breakpoint (omitted when empty), ``user`` the one
    user message; ``temperature`` is kept unless ``None``.

    Example::

        build_params(call, model="claude-sonnet-4-6", max_tokens=8192)["messages"]
        # [{"role": "user", "content": call.user}]
    """
    params: dict[str, Any] = {"model": model, "max_tokens": max_tokens}
    if call.system:
        params["system"] = [
            {"type": "text", "text": call.system, "cache_control": {"type": "ephemeral", "ttl": "1h"}}
        ]
    params["messages"] = [{"role": "user", "content": call.user}]
    if call.temperature is not None:
        params["temperature"] = call.temperature
    return params


def params_size(params: dict[str, Any]) -> int:
    """Bytes one request adds to a batch body: compact UTF-8 JSON of ``params`` plus the fixed overhead."""
    body = json.dumps(params, separators=(",", ":"), ensure_ascii=False).encode()
    return len(body) + REQUEST_OVERHEAD_BYTES


def chain_cause(error: BaseException, cause: BaseException | None) -> BaseException:
    """Attach ``cause`` at the end of ``error``'s ``__cause__`` chain (unless it is already in it).

    The caller then gets the real last failure with the earlier ones behind it (BATCH.md 3.4). Returns
    ``error``.
    """
    if cause is None or cause is error:
        return error
    seen: set[int] = set()
    link = error
    while link.__cause__ is not None and id(link) not in seen:
        seen.add(id(link))
        if link.__cause__ is cause:
            return error
        link = link.__cause__
    if link is not cause and id(link) not in seen:
        link.__cause__ = cause
    return error


@dataclass(slots=True, eq=False, kw_only=True)
class Item:
    """One queued call and everything the engine knows about it.

    Times are the engine clock's ``monotonic()`` readings, except ``enqueued_wall`` (epoch seconds).
    ``cause`` is the latest batch-side failure, chained under a fallback's error if that fails too. The facade
    that made the item says what its caller gets: ``convert`` turns a succeeded batch result into it, ``send``
    answers the call synchronously (the fallback: an exact replay of the original call).
    """

    id: str
    params: dict[str, Any]
    send: Callable[[], Awaitable[Any]] = field(repr=False)
    convert: Callable[[Message], Any] = field(repr=False)
    worker: str | None
    session_id: str | None
    tag: str | None
    credential: AuthCredential
    group: GroupKey
    model: str
    size: int
    enqueued_at: float
    enqueued_wall: float
    rescue_at: float
    future: asyncio.Future[Any]
    state: ItemState = "queued"
    attempts: int = 0
    custom_id: str | None = None
    batch_id: str | None = None
    cause: BaseException | None = field(default=None, repr=False)

    def next_custom_id(self) -> str:
        """Start a new submission: bump ``attempts`` and return (and keep) its custom_id."""
        self.attempts += 1
        self.custom_id = custom_id(self.id, self.attempts)
        return self.custom_id

    def __repr__(self) -> str:
        return (
            f"Item(id={self.id!r}, state={self.state!r}, attempts={self.attempts}, "
            f"custom_id={self.custom_id!r}, batch_id={self.batch_id!r}, credential_fp={self.group.credential_fp!r})"
        )
