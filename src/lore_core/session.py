"""``LoreSession``: the per-turn path. ``transform`` runs before every model call; ``record_usage`` after it.

One turn: validate what is new (incremental), store new messages (one insert-or-ignore), the implicit
idle-resume check, turn counting and triggers (in memory), the system blocks (the caller's, then the pinned
knowledge), the expected input (O(1) with running sums when the history only grew), the layer floor, the pure
assembly, state updates, and the urgent run when the assembly asks for one. ``transform`` never awaits a worker.

I/O per turn: the insert of new messages; the distillation snapshot is re-read only when a new human turn
starts (or after an idle resume or a layer-4 turn); knowledge only at cold-cache moments.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lore_core.annotations import RECALL_HINT, offers_recall
from lore_core.config import LoreConfig
from lore_core.context import AssemblyInput, History, PrefixCache, assemble
from lore_core.errors import ConfigError
from lore_core.history import HistoryCache, plain_message
from lore_core.ingest import MessageLog
from lore_core.knowledge import LAYER_NOTE, LAYER_NOTE_RECALL, select_knowledge
from lore_core.messages import Message
from lore_core.recall import DEFAULT_LIMIT, RecallResult, RecallScope, recall_in
from lore_core.state import (
    IdleResume,
    SessionState,
    SessionStateView,
    after_transform,
    delta_baseline,
    expected_input,
    min_layer,
    on_idle_resume,
    record_usage,
    unsustainable,
)
from lore_core.store.records import DistillationRecord, KnowledgePin
from lore_core.tokens import estimate_system, estimate_tools

if TYPE_CHECKING:
    from lore_core.lore import Lore

__all__ = ["LoreSession", "TransformResult"]

logger = logging.getLogger(__name__)

# Context windows by model family (longest prefix wins); anything else gets config.default_context_window.
MODEL_WINDOWS: Mapping[str, int] = {"claude-": 200_000}
# Joins the preferences and knowledge texts inside a persisted knowledge pin (never appears in either).
_PIN_SEPARATOR = "\n\x1e\n"
# How many recent messages feed the knowledge ranking's context (ENGINE.md section 6, injection).
_KNOWLEDGE_CONTEXT_MESSAGES = 10


@dataclass(frozen=True, slots=True, kw_only=True)
class TransformResult:
    """What to send: ``system`` (a list of text blocks) and ``messages``, plus the numbers behind them."""

    messages: Sequence[Message]
    system: list[dict[str, Any]]
    layer: int
    distilled_tokens: int
    raw_tokens: int
    total_tokens: int
    usable: int
    distilled_budget: int
    raw_budget: int
    unsustainable: bool


class LoreSession:
    """One conversation's handle; get it from :meth:`Lore.session`. State loads on the first awaited call."""

    def __init__(
        self,
        lore: Lore,
        session_id: str,
        *,
        model: str,
        context_window: int | None,
        max_output_tokens: int | None,
        project: str,
    ) -> None:
        if not session_id:
            raise ConfigError("a session id must not be empty")
        self._lore = lore
        self.session_id = session_id
        self.model = model
        self.project = project
        self.context_window = context_window or _window_for(model, lore.config.default_context_window)
        self.max_output_tokens = max_output_tokens
        self.state: SessionState | None = None
        self._history = HistoryCache(counter=lore.counter)
        self._log = MessageLog(lore.store, counter=lore.counter)
        self._rows: list[DistillationRecord] | None = None
        self._snapshot_key: str | None = None
        self._snapshot_version = -1
        self._write: asyncio.Task[None] | None = None
        self._window_shrink = 0
        self._prefix: PrefixCache | None = None
        self._idle_checked = False
        self._undistilled_tokens = 0
        # The objects the system/tools estimates were computed from, kept alive so identity is meaningful.
        self._system_key: tuple[object, object, object] | None = None
        self._system_estimates = (0, 0)
        self._recall_config: LoreConfig | None = None

    def __repr__(self) -> str:
        return f"LoreSession({self.session_id!r}, model={self.model!r}, project={self.project!r})"

    # -- state ---------------------------------------------------------------------------------------------

    async def _load(self) -> SessionState:
        if self.state is not None:
            return self.state
        lore = self._lore
        now = lore.now_datetime()
        record = await lore.store.ensure_session(self.session_id, self.project, self.model, now)
        self.project = record.project
        stored = await lore.store.load_state(self.session_id)
        if stored is not None:
            self.state = SessionState.from_record(stored, project=record.project, model=self.model)
        else:
            self.state = SessionState(session_id=self.session_id, project=record.project, model=self.model)
        self._undistilled_tokens = await lore.store.undistilled_tokens(self.session_id)
        return self.state

    def switch_model(self, model: str, *, context_window: int | None = None) -> None:
        """Use another model from now on: uncalibrated for it until its first usage report."""
        if model == self.model:
            return
        self.model = model
        self.context_window = context_window or _window_for(model, self._lore.config.default_context_window)
        if self.state is not None:
            self.state.switch_model(model)

    def inspect(self) -> SessionStateView | None:
        """The in-memory state (no I/O; None before the first awaited call loaded it)."""
        if self.state is None:
            return None
        return self.state.view(
            has_prefix_cache=self._prefix is not None,
            snapshot_rows=len(self._rows) if self._rows is not None else None,
            config=self._lore.config,
        )

    # -- idle ------------------------------------------------------------------------------------------------

    def on_idle_resume(self, *, now: float | None = None, skip_compact: bool = False) -> IdleResume:
        """Tell the session the conversation resumes after a pause (also checked by ``transform`` itself).

        After a gap of at least the prompt-cache TTL the caches are cleared and the next transform compacts
        (layer >= 1 with a 20% raw budget) unless ``skip_compact`` (for hosts that kept the cache warm).
        """
        if self.state is None:
            return IdleResume(triggered=False, idle_ms=0)
        self._idle_checked = True
        moment = self._lore.clock.now() if now is None else now
        result = on_idle_resume(self.state, now=moment, skip_compact=skip_compact, config=self._lore.config)
        if result.triggered:
            self._prefix = None
            self._rows = None
            self._snapshot_key = None
        return result

    # -- the turn --------------------------------------------------------------------------------------------

    async def transform(
        self,
        messages: Sequence[Message],
        *,
        system: str | Sequence[Mapping[str, Any]] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
    ) -> TransformResult:
        """Build the context for the next model call from the caller's **full** history.

        Send ``result.system`` and ``result.messages``, with the same ``tools``.

        Raises:
            InvalidMessagesError: the messages break an API invariant (index and reason).
            ContextOverflowError: even the terminal layer cannot fit the current turn.
            StoreError: storing the new messages failed (nothing of this turn is stored).
        """
        lore, config = self._lore, self._lore.config
        lore.ensure_open()
        state = await self._load()
        update = self._history.update(messages)
        now = lore.clock.now()
        if update.rewrite:
            self._log.forget(self.session_id)
        new_tokens = await self._store_new(lore.now_datetime())
        if not self._idle_checked:
            self.on_idle_resume(now=now)
        self._idle_checked = False
        self._after_store(state, new_tokens, update.new_human)

        await self._refresh_snapshot(state)
        system_blocks, knowledge_changed = await self._system_blocks(state, system)
        recall = offers_recall(tools)  # the model has the recall tool: the loss notes point to it
        note_block = {"type": "text", "text": LAYER_NOTE_RECALL if recall else LAYER_NOTE}
        system_est, tools_est = self._estimates(system, system_blocks, tools)
        fixed = system_est + estimate_system([note_block], counter=lore.counter) + tools_est
        history = self._history
        expected = self._expected(state, update.rewrite, system_est, tools_est)
        rows = self._rows or []
        forced = state.force_min_layer > 0
        floor, post_idle = min_layer(state, message_count=len(messages), has_rows=bool(rows), config=config)
        if forced:  # one-shot recovery state is cleared in the store at once, not at the next flush
            await lore.store.save_state(self.session_id, force_min_layer=0)
        assembly = assemble(
            AssemblyInput(
                history=History(
                    messages=history.messages,
                    ids=history.ids,
                    tokens=history.tokens,
                    total_tokens=history.cumulative[-1],
                    memo=history.dedup_memo,
                ),
                system_breakpoints=_breakpoints(system_blocks) + _breakpoints(tools or ()),
                session_id=self.session_id,
                fixed_tokens=fixed,
                overhead=state.overhead(config),
                calibrated=state.calibrated,
                expected=expected,
                context_window=self.context_window,
                max_output_tokens=self.max_output_tokens,
                min_layer=floor,
                post_idle_compact=post_idle,
                rows=rows,
                prefix_cache=self._prefix,
                raw_pin=state.raw_pin,
                consecutive_busts=state.consecutive_busts,
                config=self._assembly_config(recall),
                counter=lore.counter,
            )
        )
        if assembly.prefix_cache is not None:
            self._prefix = assembly.prefix_cache
        # What the window's messages lost to stripping and cuts: a later passthrough sends them whole, and the
        # usage-calibrated estimate only knows the sizes that were sent (layer 4 is not sticky).
        full_window = history.tokens_between(min(assembly.window_start, len(history)), len(history))
        self._window_shrink = max(0, full_window - assembly.raw_tokens) if assembly.layer >= 1 else 0
        if assembly.raw_pin != state.raw_pin:
            state.raw_pin = assembly.raw_pin
            state.dirty = True
        out_system = [*system_blocks, note_block] if assembly.layer >= 1 else system_blocks
        request_estimate = assembly.total_tokens + fixed
        hint = after_transform(
            state,
            layer=assembly.layer,
            window_ids=assembly.window_ids,
            message_count=len(messages),
            window_start=assembly.window_start,
            request_estimate=request_estimate,
            system_estimate=system_est,
            tools_estimate=tools_est,
            now=now,
            urgent=assembly.urgent,
            config=config,
        )
        if hint:
            logger.info(
                "session %s stayed at layer >= 2 for several turns: consider compacting", self.session_id
            )
        if assembly.layer == 4:
            self._rows = None  # re-read the snapshot next turn
        if assembly.urgent:
            lore.scheduler.request_distillation(self.session_id, urgent=True)
            state.urgent_pending = False
        if knowledge_changed:
            await lore.store.save_state(self.session_id, knowledge_pin=state.knowledge_pin)
        lore.mark_dirty(self)
        return TransformResult(
            # layer 0 hands back the caller's own list object (the assembly saw its plain-dict copy)
            messages=messages if assembly.layer == 0 else assembly.messages,
            system=out_system,
            layer=assembly.layer,
            distilled_tokens=assembly.distilled_tokens,
            raw_tokens=assembly.raw_tokens,
            total_tokens=assembly.total_tokens,
            usable=assembly.usable,
            distilled_budget=assembly.distilled_budget,
            raw_budget=assembly.raw_budget,
            unsustainable=unsustainable(state, config),
        )

    def _assembly_config(self, recall: bool) -> LoreConfig:
        """The engine's config, with :data:`RECALL_HINT` as ``strip_hint`` when the model has the recall tool
        and the host set no hint of its own."""
        config = self._lore.config
        if not recall or config.strip_hint:
            return config
        if self._recall_config is None:
            self._recall_config = dataclasses.replace(config, strip_hint=RECALL_HINT)
        return self._recall_config

    async def recall(
        self,
        query: str,
        *,
        limit: int = DEFAULT_LIMIT,
        scope: RecallScope = "session",
        project: str | None = None,
        expand: bool | None = None,
        max_chars: int | None = None,
    ) -> RecallResult:
        """Search the session's whole stored history: raw messages (tool outputs in full), distillations
        (archived too) and its project's knowledge (plus global entries), ranked by reciprocal rank fusion,
        at most ``limit`` hits within ``max_chars`` (default ``config.recall_max_chars``). See docs/recall.md.

        ``scope="project"`` searches every session of the project (``project`` names another one), ``"all"``
        every session; ``expand`` (default ``config.recall_expand``) adds an urgent query-expansion call
        that gets ``recall_expand_timeout_seconds`` before the original query is used alone.

        Raises:
            ConfigError: an empty or over-long query, a limit outside 1..50, a bad scope.
            StoreError: the database failed.

        Example: ``(await session.recall("which port for the db")).hits[0].text``.
        """
        lore = self._lore
        lore.ensure_open()
        await self._load()
        await self.flush_writes()  # the turn's messages are stored in the background
        return await recall_in(
            lore.scheduler.context,
            query,
            session_id=self.session_id,
            project=self.project,
            model=self.model,
            limit=limit,
            scope=scope,
            scope_project=project,
            expand=expand,
            max_chars=max_chars,
        )

    async def _store_new(self, now: datetime) -> int:
        """Store the turn's new messages; return their tokens.

        In steady state the insert runs in the background, chained after the previous one (the per-turn path
        does not wait for the database; the caller re-sends its history every turn, so nothing is lost if the
        process dies first). The first turn in this process and host rewrites store synchronously. A failed
        background insert is recorded by the scheduler and the next turn re-syncs with the store.
        """
        history = self._history
        records = self._log.pending_records(self.session_id, history.messages, now=now, ids=history.ids)
        if records is None:
            await self.flush_writes()
            stored = await self._log.record(self.session_id, history.messages, now=now, ids=history.ids)
            return stored.new_tokens
        if records:
            previous = self._write

            async def write() -> None:
                if previous is not None:
                    with contextlib.suppress(Exception):
                        await previous
                try:
                    await self._lore.store.insert_messages(records)
                except BaseException:
                    self._log.forget(self.session_id)
                    raise

            self._write = self._lore.scheduler.spawn(
                write(), job="store-messages", session_id=self.session_id
            )
        return sum(record.tokens for record in records)

    async def flush_writes(self) -> None:
        """Wait until this session's queued message inserts are in the store (their failures stay recorded)."""
        write = self._write
        if write is not None and not write.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(write)

    def _expected(self, state: SessionState, rewrite: bool, system_est: int, tools_est: int) -> int:
        """ENGINE.md 3.3 in O(1) from running sums when the history only grew since the last transform."""
        config, history = self._lore.config, self._history
        count = len(history)
        base = delta_baseline(state)
        # A calibrated estimate is never below the plain estimate of a full passthrough plus the session's
        # overhead: usage only ever adds to our estimate. This floor also covers what an earlier window lost
        # to stripping when that is not known (after a restart).
        floor = history.cumulative[-1] + system_est + tools_est + state.overhead(config)
        if state.calibrated and not rewrite and base.input_count <= count:
            new = history.tokens_between(base.input_count, count)
            evicted = history.tokens_between(0, min(base.window_start, base.input_count))
            return max(
                floor,
                state.last_known_input
                + new
                + evicted
                + self._window_shrink
                + (system_est - base.system_estimate)
                + (tools_est - base.tools_estimate),
            )
        # The general formula (after a rewrite, or when the history shrank); uncalibrated, it already counts
        # every message at full size.
        estimate = expected_input(
            state,
            message_ids=history.ids,
            message_tokens=history.tokens,
            system_estimate=system_est,
            tools_estimate=tools_est,
            config=config,
        )
        return max(floor, self._window_shrink + estimate) if state.calibrated else estimate

    def _after_store(self, state: SessionState, new_tokens: int, new_human: int) -> None:
        """The incremental and in-flight curation triggers, from in-memory counters (no store reads)."""
        lore, config = self._lore, self._lore.config
        self._undistilled_tokens += new_tokens
        if self._undistilled_tokens >= config.max_segment_tokens:
            self._undistilled_tokens = 0  # the run distills them; a failed run is retried at idle
            lore.scheduler.request_distillation(self.session_id)
        if new_human:
            state.turns_since_curation += new_human
            state.dirty = True
            threshold = config.curate_after_turns * config.curate_inflight_multiplier
            if (
                config.knowledge_enabled
                and config.curator_enabled
                and state.turns_since_curation >= threshold
                and not lore.scheduler.curator.is_active(self.session_id)
            ):
                state.turns_since_curation = 0
                lore.scheduler.spawn(
                    lore.scheduler.curator.curate(self.session_id), job="curate", session_id=self.session_id
                )

    async def _refresh_snapshot(self, state: SessionState) -> None:
        """Re-read the rows when a new human turn starts and this process wrote distillations for the session
        since the last read; on first use; after an idle resume or a layer-4 turn (both drop ``_rows``)."""
        key = _last_human_id(self._history)
        version = self._lore.scheduler.context.versions.get(self.session_id, 0)
        if self._rows is not None and (key == self._snapshot_key or version == self._snapshot_version):
            return
        self._rows = await self._lore.store.list_distillations(self.session_id)
        self._snapshot_key = key
        self._snapshot_version = version

    async def _system_blocks(
        self, state: SessionState, system: str | Sequence[Mapping[str, Any]] | None
    ) -> tuple[list[dict[str, Any]], bool]:
        """The caller's blocks, unchanged, then the pinned knowledge blocks (recomputed only when cold)."""
        lore, config = self._lore, self._lore.config
        blocks: list[dict[str, Any]] = []
        if isinstance(system, str):
            if system:
                blocks.append({"type": "text", "text": system})
        elif system is not None:
            blocks.extend(dict(block) for block in system)
        changed = False
        if config.knowledge_enabled and (state.knowledge_pin is None or state.came_out_of_idle):
            entries = await lore.store.list_knowledge(
                self.project, include_global=True, min_confidence=config.knowledge_min_confidence
            )
            base = max(
                0, self.context_window - min(self.max_output_tokens or 32_000, config.output_reserve_cap)
            )
            base = max(0, base - state.overhead(config))
            context = "\n".join(str(row.observations) for row in (self._rows or [])[-1:]) + "\n".join(
                str(m.get("content", ""))[:2_000]
                for m in self._history.messages[-_KNOWLEDGE_CONTEXT_MESSAGES:]
            )
            selected = select_knowledge(
                entries,
                base_tokens=base,
                context_text=context,
                config=config,
                counter=lore.counter,
                layer_note=False,
            )
            text = selected.preferences + _PIN_SEPARATOR + selected.knowledge
            pin = KnowledgePin(text=text, tokens=selected.tokens)
            changed = pin != state.knowledge_pin
            state.knowledge_pin = pin
        if state.knowledge_pin is not None:
            for part in state.knowledge_pin.text.split(_PIN_SEPARATOR):
                if part:
                    blocks.append({"type": "text", "text": part})
        return blocks, changed

    def _estimates(
        self,
        system: object,
        system_blocks: list[dict[str, Any]],
        tools: Sequence[Mapping[str, Any]] | None,
    ) -> tuple[int, int]:
        """est(system blocks) and est(tools), memoised while the caller passes the same objects (held here, so
        a new object can never reuse a freed one's identity)."""
        knowledge = self.state.knowledge_pin if self.state is not None else None
        key = (system, tools, knowledge)
        previous = self._system_key
        if previous is None or any(a is not b for a, b in zip(previous, key, strict=True)):
            counter = self._lore.counter
            self._system_estimates = (
                estimate_system(system_blocks, counter=counter),
                estimate_tools(list(tools or []), counter=counter),
            )
            self._system_key = key
        return self._system_estimates

    async def record_usage(
        self, usage: object, *, stop_reason: str | None = None, response: object | None = None
    ) -> None:
        """Report the API's answer: calibration, bust tracking and the stop reason (for idle detection).

        ``usage`` is the SDK's ``Usage`` or a dict with its keys. With ``response`` (the SDK ``Message``) the
        assistant reply is stored at once, so the last reply of a conversation that never resumes is kept.
        """
        lore = self._lore
        lore.ensure_open()
        state = await self._load()
        record_usage(state, usage, stop_reason=stop_reason, model=self.model, config=lore.config)
        state.dirty = True
        if response is not None:
            await self.flush_writes()
            await self._store_reply(response)
        lore.mark_dirty(self)

    async def _store_reply(self, response: object) -> None:
        content = getattr(response, "content", None)
        if not isinstance(content, list) or not content:
            return
        reply = plain_message({"role": "assistant", "content": content})
        history = [*self._history.messages, reply]
        await self._log.record(self.session_id, history, now=self._lore.now_datetime())


def _window_for(model: str, default: int) -> int:
    bare = model.split("/", 1)[-1]
    best = max((prefix for prefix in MODEL_WINDOWS if bare.startswith(prefix)), key=len, default=None)
    return MODEL_WINDOWS[best] if best is not None else default


def _breakpoints(blocks: Sequence[Mapping[str, Any]]) -> int:
    """How many ``cache_control`` breakpoints the caller's system blocks or tool definitions carry."""
    return sum(1 for block in blocks if isinstance(block, Mapping) and block.get("cache_control"))


def _last_human_id(history: HistoryCache) -> str | None:
    for index in range(len(history.kinds) - 1, -1, -1):
        if history.kinds[index] == "human":
            return history.ids[index]
    return None


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)
