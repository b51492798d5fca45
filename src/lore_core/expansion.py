"""Query expansion for recall: one urgent ``recall`` worker call, bounded by a timeout.

The model is asked for a few other short queries that could find the same information (the words the stored
text more likely uses). The call is ``urgent=True`` (never batched), ``worker="recall"``, ``temperature=0``,
and recorded in ``worker_runs`` like every worker call. It races a sleep of ``wait_seconds`` on the
engine's clock: if the sleep ends first the call is cancelled and recall goes on with the original query
alone (outcome ``timeout``); a failed call (an ``LLMError``) falls back the same way (outcome ``error``).

:func:`expansion_prompt` and :func:`parse_queries` are pure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Final, Literal, TypeVar

from lore_core.clock import Clock
from lore_core.errors import LLMError
from lore_core.prompting import Prompt, render, section
from lore_core.workers.runtime import WorkerContext

__all__ = ["Expansion", "ExpansionOutcome", "expand_query", "expansion_prompt", "parse_queries"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

ExpansionOutcome = Literal["off", "ok", "timeout", "error"]

EXPANSION_MAX_TOKENS: Final = 256
"""Output budget of the expansion call: a handful of short lines."""
MAX_QUERY_CHARS: Final = 200
"""An expanded query longer than this is cut: they are meant to be a few words."""

_BULLET_RE: Final = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s*")


@dataclass(frozen=True, slots=True, kw_only=True)
class Expansion:
    """What query expansion gave: the other queries (maybe none) and how the call ended."""

    queries: tuple[str, ...] = ()
    outcome: ExpansionOutcome = "off"


def expansion_prompt(query: str, *, count: int) -> Prompt:
    """The ``recall`` worker prompt asking for up to ``count`` other queries for ``query``."""
    return Prompt(
        worker="recall",
        system=render("recall_system", count=str(count)),
        user=render("recall_user", query=query.strip(), count=str(count)),
        max_tokens=EXPANSION_MAX_TOKENS,
    )


def parse_queries(text: str, *, original: str, count: int) -> tuple[str, ...]:
    """The queries of a ``<queries>`` block: one per line, bullets and numbering removed, each at most
    200 characters, the original and repeats dropped (case-insensitive), at most ``count``; ``()`` when the
    block is missing. Example: ``parse_queries("<queries>\\n- db port\\n</queries>", original="x", count=3)
    == ("db port",)``.
    """
    body = section(text, "queries")
    if body is None:
        return ()
    seen = {original.strip().lower()}
    found: list[str] = []
    for line in body.splitlines():
        query = _BULLET_RE.sub("", line).strip().strip('"').strip()[:MAX_QUERY_CHARS]
        if query and query.lower() not in seen:
            seen.add(query.lower())
            found.append(query)
            if len(found) >= count:
                break
    return tuple(found)


async def race(call: Awaitable[T], *, clock: Clock, seconds: float) -> tuple[bool, T | None]:
    """Await ``call`` unless ``clock.sleep(seconds)`` ends first; then cancel it.

    Returns ``(True, result)`` when the call finished first (its exception propagates), ``(False, None)``
    when the timeout won. Cancelling the caller cancels both.
    """
    task = asyncio.ensure_future(call)
    timer = asyncio.ensure_future(clock.sleep(seconds))
    try:
        await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        timer.cancel()
        if not task.done():
            task.cancel()
    if task.done() and not task.cancelled():
        return True, task.result()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return False, None


async def expand_query(
    context: WorkerContext,
    query: str,
    *,
    session_id: str,
    project: str | None,
    model: str | None,
    count: int,
    wait_seconds: float,
) -> Expansion:
    """Ask the model for up to ``count`` other queries; never waits more than ``wait_seconds`` of
    ``context.clock`` for the answer and never raises an ``LLMError``.

    Raises:
        StoreError: recording the run in ``worker_runs`` failed.
    """
    prompt = expansion_prompt(query, count=count)
    try:
        async with context.run(
            "recall", session_id=session_id, project=project, urgent=True, model=model
        ) as run:
            finished, response = await race(run.call(prompt), clock=context.clock, seconds=wait_seconds)
            if not finished or response is None:
                run.status, run.error_type = "error", "timeout"
                run.error_detail = f"no answer within {wait_seconds:g} s"
                logger.info("recall expansion for session %s timed out", session_id)
                return Expansion(outcome="timeout")
    except LLMError as exc:
        logger.info("recall expansion for session %s failed: %s", session_id, type(exc).__name__)
        return Expansion(outcome="error")
    return Expansion(queries=parse_queries(response.text, original=query, count=count), outcome="ok")
