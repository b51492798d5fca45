"""Raw-message storage: a caller's message list becomes the records the store keeps (ENGINE.md 2).

:func:`prepare_records` is pure: deterministic ids (role, position, content), the stored text, kinds,
tool-unit links, token counts and the structured blocks (``cache_control`` removed, base64 payloads replaced
by their size and hash, so a screenshot does not live in the database twice). :class:`MessageLog` stores
what is new, once: insert-or-ignore by id, one transaction; host rewrites (the list shrank, or its first
message changed) are detected so that a rewritten history does not store its surviving messages again.

Worker traffic never comes through here: workers call the ``LLMClient`` directly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lore_core.flatten import flatten_text, message_meta, tool_names_by_id
from lore_core.messages import Message, content_blocks, content_hash, message_id, message_kind
from lore_core.store.port import SessionStore
from lore_core.store.records import MessageRecord, Role
from lore_core.store.types import JsonValue
from lore_core.tokens import TokenCounter, count_tokens

__all__ = ["IngestResult", "MessageLog", "prepare_records", "storable_blocks"]

_BINARY_SOURCES = frozenset({"base64"})


def storable_blocks(content: object) -> tuple[JsonValue, ...]:
    """The blocks to store for one message: the caller's blocks (a string becomes one text block) with every
    ``cache_control`` key removed and each base64 ``data`` payload replaced by ``{"data_omitted": true,
    "bytes": n, "sha256": ...}``. The caller's objects are never modified."""
    if not isinstance(content, str | list | tuple):
        return ()
    return tuple(_clean(block) for block in content_blocks(content))


def _clean(value: Any) -> JsonValue:
    if isinstance(value, Mapping):
        cleaned: dict[str, JsonValue] = {}
        is_binary = value.get("type") in _BINARY_SOURCES and isinstance(value.get("data"), str)
        for key, item in value.items():
            if key == "cache_control":
                continue
            if is_binary and key == "data":
                raw = item.encode("ascii", "replace")
                cleaned["data_omitted"] = True
                cleaned["bytes"] = len(raw) * 3 // 4
                cleaned["sha256"] = hashlib.sha256(raw).hexdigest()
                continue
            cleaned[str(key)] = _clean(item)
        return cleaned
    if isinstance(value, list | tuple):
        return [_clean(item) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def prepare_records(
    session_id: str,
    messages: Sequence[Message],
    *,
    now: datetime,
    start: int = 0,
    ids: Sequence[str] | None = None,
    counter: TokenCounter = count_tokens,
) -> list[MessageRecord]:
    """Records for ``messages[start:]`` (positions are indexes in the full list), all stamped ``now``.

    ``ids`` may pass precomputed message ids for the whole list. A ``tool_results`` message links to the
    assistant message before it through ``unit_id`` when that message called tools.

    Example::

        records = prepare_records("chat-42", messages, now=datetime.now(UTC))
    """
    records: list[MessageRecord] = []
    names: Mapping[str, str] = {}
    if start > 0 and messages[start - 1].get("role") == "assistant":
        names = tool_names_by_id(messages[start - 1].get("content", ""))
    for position in range(start, len(messages)):
        message = messages[position]
        content = message.get("content", "")
        role: Role = "assistant" if message.get("role") == "assistant" else "user"
        kind = message_kind(message)
        text = flatten_text(content, tool_names=names)
        unit_id = None
        if kind == "tool_results" and position > 0 and names:
            previous = messages[position - 1]
            unit_id = ids[position - 1] if ids is not None else _id(previous, position - 1)
        records.append(
            MessageRecord(
                id=ids[position] if ids is not None else _id(message, position),
                session_id=session_id,
                position=position,
                role=role,
                kind=kind,
                unit_id=unit_id,
                text=text,
                content_hash=content_hash(content),
                tokens=counter(text),
                created_at=now,
                meta={key: list(value) for key, value in message_meta(content, tool_names=names).items()},
                blocks=storable_blocks(content),
            )
        )
        names = tool_names_by_id(content) if role == "assistant" else {}
    return records


def _id(message: Message, position: int) -> str:
    return message_id(str(message.get("role")), position, message.get("content", ""))


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestResult:
    """What one call to :meth:`MessageLog.record` stored."""

    inserted: int
    """Rows written by this call."""
    new_tokens: int
    """Tokens of the rows written."""
    rewrite: bool
    """The host rewrote its history (the list shrank or its first message changed)."""


@dataclass(slots=True)
class _SessionLog:
    count: int
    first_id: str | None


class MessageLog:
    """Stores each session's messages once. Keeps, per session, how far the caller's list was stored, so a
    turn only prepares the messages it added (no work proportional to the whole history when nothing changed
    except the ids the caller's list already needs).

    Example::

        log = MessageLog(store)
        result = await log.record("chat-42", messages, now=now)
    """

    def __init__(self, store: SessionStore, *, counter: TokenCounter = count_tokens) -> None:
        self._store = store
        self._counter = counter
        self._sessions: dict[str, _SessionLog] = {}

    def forget(self, session_id: str) -> None:
        """Drop what this log remembers of a session (the next call re-checks against the store)."""
        self._sessions.pop(session_id, None)

    def pending_records(
        self,
        session_id: str,
        messages: Sequence[Message],
        *,
        now: datetime,
        ids: Sequence[str],
    ) -> list[MessageRecord] | None:
        """The records of the messages added since the last call, prepared without touching the store (the
        caller inserts them, possibly in the background), or None when the log must consult the store first:
        the first call for this session in this process, or a host rewrite. Use :meth:`record` then."""
        state = self._sessions.get(session_id)
        if state is None or not messages or len(messages) < state.count or ids[0] != state.first_id:
            return None
        records = prepare_records(
            session_id, messages, now=now, start=state.count, ids=ids, counter=self._counter
        )
        self._sessions[session_id] = _SessionLog(count=len(messages), first_id=ids[0])
        return records

    async def record(
        self,
        session_id: str,
        messages: Sequence[Message],
        *,
        now: datetime,
        ids: Sequence[str] | None = None,
    ) -> IngestResult:
        """Store every message of ``messages`` whose id the session does not have yet, in one transaction.

        After a host rewrite a message is stored only if its (role, content hash) is not stored already.

        Raises:
            SessionNotFoundError: the session was never created (``ensure_session``).
            StoreError: the database failed; nothing of this call is stored.
        """
        if not messages:
            return IngestResult(inserted=0, new_tokens=0, rewrite=False)
        all_ids = list(ids) if ids is not None else [_id(m, i) for i, m in enumerate(messages)]
        state = self._sessions.get(session_id)
        rewrite = state is not None and (len(messages) < state.count or all_ids[0] != state.first_id)
        if state is None or rewrite:
            known = await self._store.message_ids(session_id)
            start = 0
        else:
            known = set()
            start = state.count
        records = [
            record
            for record in prepare_records(
                session_id, messages, now=now, start=start, ids=all_ids, counter=self._counter
            )
            if record.id not in known
        ]
        if rewrite and records:
            kept = []
            for record in records:
                if not await self._store.has_content_hash(session_id, record.role, record.content_hash):
                    kept.append(record)
            records = kept
        inserted = await self._store.insert_messages(records) if records else 0
        self._sessions[session_id] = _SessionLog(count=len(messages), first_id=all_ids[0])
        return IngestResult(inserted=inserted, new_tokens=sum(r.tokens for r in records), rewrite=rewrite)
