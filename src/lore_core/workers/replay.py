"""Answers that arrive later: apply a worker answer whose calling coroutine is gone (a crash, a restart).

A batching client in durable mode can deliver an answer after the process that asked for it died. Prompts are
deterministic functions of the stored state, so the engine re-runs the worker step that asks that prompt,
with a client that holds just this answer (:class:`StoredAnswers`): the step rebuilds its prompt(s) from the
store, only the call whose worker label, system and user text are exactly the answer's gets it, and the
result is checked and written as if the original coroutine had received it (``worker_runs`` row, snapshot
version bump, retention check). No model is ever called for the replayed step itself; a follow-up the
original coroutine would have made next (the ``validate`` call after a distillation that lost facts) goes
to the engine's client as usual.

Per worker label (ENGINE.md 1.2):

- ``distill``: :meth:`Distiller.replay` finds the run of undistilled units the prompt's transcript renders,
  takes the prompt's own prior observations (earlier segments of its round may have been written since),
  and runs that one segment's observer step, write and retention check.
- ``meta-distill``: :meth:`MetaWorker.replay` tries the current prior meta with each prefix of the live gen-0
  rows and folds the plan whose prompt matches.
- ``curate``: :meth:`Curator.replay` runs the session's curation when the state still asks that prompt, else
  the consolidation of its project when that one does.
- ``validate``: each live gen-0 row's retention check is rebuilt from its source messages; the row whose check
  asks that prompt gets the repair (:meth:`Validator.replay`).

An answer whose prompt the state no longer asks (the messages were distilled by another run, the rows or
entries changed) is ``stale``: nothing is written except a ``stale`` ``worker_runs`` row carrying its tokens.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

from lore_core.errors import ConfigError, NoStoredAnswerError
from lore_core.llm import LLMResponse
from lore_core.prompting import Prompt
from lore_core.segments import Segment
from lore_core.workers.distiller import observer_call, retention_inputs
from lore_core.workers.runtime import Replay, Replayed
from lore_core.workers.scheduler import WorkerScheduler

__all__ = ["REPLAYABLE_WORKERS", "AnswerOutcome", "StoredAnswers", "apply_answer"]

REPLAYABLE_WORKERS: Final = ("distill", "meta-distill", "curate", "validate")
"""The worker labels whose late answers :func:`apply_answer` can apply."""


def _key(worker: str | None, system: str, user: str) -> bytes:
    """SHA-256 over the length-prefixed parts: equal exactly when all three strings are equal."""
    digest = hashlib.sha256()
    for part in (worker or "", system, user):
        data = part.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.digest()


class StoredAnswers:
    """An ``LLMClient`` that never calls a model: it answers only the prompts it holds, each once.

    ``prompt`` returns the stored answer when the call's ``worker`` label, ``system`` and ``user`` are exactly
    the ones it was stored under (the answer is then used up), and raises :class:`NoStoredAnswerError`
    otherwise, so a worker step records an error and writes nothing. ``background_slots = None``: no second
    cap on its calls, and no pause after another client's rate limit (nothing here goes to a provider).

    Example::

        answers = StoredAnswers()
        answers.add(worker="distill", system=system, user=user, response=response)
        await answers.prompt(system, user, worker="distill")   # response; a second call raises
    """

    background_slots: int | None = None

    def __init__(self) -> None:
        self._answers: dict[bytes, LLMResponse] = {}
        self.served = 0

    def add(self, *, worker: str, system: str, user: str, response: LLMResponse) -> None:
        """Hold ``response`` for the call ``(worker, system, user)`` (replacing one held for the same call)."""
        self._answers[_key(worker, system, user)] = response

    def holds(self, prompt: Prompt) -> bool:
        """Whether an answer for exactly this prompt is held (and not used yet)."""
        return _key(prompt.worker, prompt.system, prompt.user) in self._answers

    async def prompt(
        self,
        system: str,
        user: str,
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = 0,
        urgent: bool = False,
        session_id: str | None = None,
        worker: str | None = None,
    ) -> LLMResponse:
        """The held answer for ``(worker, system, user)``, used up by this call.

        Raises:
            NoStoredAnswerError: no answer is held for this exact call (its message names the worker only).
        """
        response = self._answers.pop(_key(worker, system, user), None)
        if response is None:
            raise NoStoredAnswerError(worker)
        self.served += 1
        return response


@dataclass(frozen=True, slots=True, kw_only=True)
class AnswerOutcome:
    """What became of a late answer.

    ``applied`` is True when the answer was used and the worker wrote its result. Otherwise ``detail`` says
    why, starting with a code: ``stale:`` (the state no longer asks this prompt), ``busy:`` (the same step is
    running now; the answer is dropped rather than waited on), ``rejected:`` (the answer failed the worker's
    output checks), ``failed:``, ``disabled:`` or ``unknown session``. ``detail`` never holds prompt text.
    """

    applied: bool
    worker: str
    session_id: str
    detail: str


async def apply_answer(
    scheduler: WorkerScheduler,
    *,
    worker: str,
    session_id: str,
    system: str,
    user: str,
    response: LLMResponse,
) -> AnswerOutcome:
    """Apply ``response``, the answer to the worker call ``(worker, system, user)`` of ``session_id``, through
    ``scheduler``'s workers, exactly as the coroutine that made the call would have (see the module docstring).

    Every outcome is recorded in ``worker_runs``: the step's own run when the answer was used (``ok``,
    ``rejected`` or ``stale``), else a ``stale`` run carrying the answer's tokens; except ``busy``, which records
    nothing because the caller is expected to offer the answer again once the step is free. The replayed step is never
    urgent (urgent calls are not batched).

    Raises:
        ConfigError: ``worker`` is not one of :data:`REPLAYABLE_WORKERS`.
        StoreError: the database failed (retryable: the answer can be applied again later).

    Example::

        outcome = await apply_answer(lore.scheduler, worker="distill", session_id="s1",
                                     system=call.system, user=call.user, response=response)
        outcome.applied   # True: the distillation row is written
    """
    if worker not in REPLAYABLE_WORKERS:
        raise ConfigError(f"no late answer can be applied for worker {worker!r}")
    ctx = scheduler.context
    stored = StoredAnswers()
    stored.add(worker=worker, system=system, user=user, response=response)
    replay = Replay(context=ctx.with_llm(stored), worker=worker, system=system, user=user)
    session = await ctx.store.get_session(session_id)
    if session is None:
        return AnswerOutcome(applied=False, worker=worker, session_id=session_id, detail="unknown session")
    if worker == "distill":
        result = await scheduler.distiller.replay(session_id, replay)
    elif worker == "meta-distill":
        result = await scheduler.meta.replay(session_id, replay)
    elif worker == "curate":
        result = await scheduler.curator.replay(session_id, replay)
    else:
        result = await _validate(scheduler, session_id, replay)
    if not stored.served and not result.detail.startswith("busy"):
        # A busy step is offered the answer again later (the batch layer's HandlerRetry): nothing is lost yet.
        await ctx.record_unused(
            worker, session_id=session_id, project=session.project, response=response, detail=result.detail
        )
    return AnswerOutcome(applied=result.applied, worker=worker, session_id=session_id, detail=result.detail)


async def _validate(scheduler: WorkerScheduler, session_id: str, replay: Replay) -> Replayed:
    """Find the live gen-0 row whose retention check asks the answer's prompt, and repair it."""
    ctx = scheduler.context
    rows = [
        row
        for row in await ctx.store.list_distillations(session_id, generation=0)
        if row.kind in ("observer", "digest") and row.observations.strip("\n") in replay.user
    ]
    if not rows:
        return Replayed(False, "stale: no live row carries these observations")
    messages = {m.id: m for m in await ctx.store.list_messages(session_id, with_blocks=False)}
    for row in rows:
        records = tuple(messages[i] for i in row.source_ids if i in messages)
        if len(records) != len(row.source_ids):
            continue
        seg = Segment(records=records, tokens=sum(r.tokens for r in records))
        if row.kind == "digest":
            observer_input = row.observations  # a digest is its own observer input, until it is revised
        else:
            observer_input = observer_call(seg, prior=None, context=ctx)[1]
        user_texts, assertions = retention_inputs(seg, context=ctx)
        result = await scheduler.validator.replay(
            row, replay, observer_input=observer_input, user_texts=user_texts, assertions=assertions
        )
        if result is not None:
            return result
    return Replayed(False, "stale: no row's retention check asks this prompt")
