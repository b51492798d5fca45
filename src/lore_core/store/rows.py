"""Rows to records and records to column values: the one place where the two meet.

Every record the store returns is built here from a result row, and every row it writes is built here from a
record, so a column rename touches this module and the models only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy.engine import Row

from lore_core.errors import StoreError
from lore_core.llm import Route
from lore_core.store.records import (
    ERROR_DETAIL_LIMIT,
    DistillationKind,
    DistillationRecord,
    KnowledgeCategory,
    KnowledgePin,
    KnowledgeRecord,
    KvRecord,
    MessageKind,
    MessageRecord,
    RawPin,
    Role,
    SessionRecord,
    SessionStateRecord,
    WorkerRunRecord,
    WorkerRunStatus,
)
from lore_core.store.types import JsonValue

__all__ = [
    "distillation_record",
    "distillation_values",
    "knowledge_record",
    "knowledge_values",
    "kv_record",
    "message_record",
    "message_values",
    "new_state_values",
    "session_record",
    "state_record",
    "state_values",
    "worker_run_record",
    "worker_run_values",
]

_ROLES: frozenset[str] = frozenset({"user", "assistant"})
_MESSAGE_KINDS: frozenset[str] = frozenset({"human", "assistant", "tool_results"})
_DISTILLATION_KINDS: frozenset[str] = frozenset({"observer", "reflector", "digest"})
_CATEGORIES: frozenset[str] = frozenset({"decision", "pattern", "preference", "architecture", "gotcha"})
_ROUTES: frozenset[str] = frozenset({"sync", "batch", "fallback"})
_RUN_STATUSES: frozenset[str] = frozenset({"ok", "error", "rejected", "stale"})


def _checked(value: str, allowed: frozenset[str], column: str) -> str:
    if value not in allowed:
        raise StoreError(f"read {column}: unexpected stored value", retryable=False)
    return value


# -- sessions ----------------------------------------------------------------------------------------------


def session_record(row: Row[Any]) -> SessionRecord:
    """A ``sessions`` row as a record."""
    return SessionRecord(
        session_id=row.session_id, project=row.project, last_model=row.last_model, created_at=row.created_at
    )


def state_record(row: Row[Any]) -> SessionStateRecord:
    """A ``session_state`` row as a record (the two pin columns become one :class:`KnowledgePin`)."""
    raw_pin = row.raw_pin
    pin_text, pin_tokens = row.knowledge_pin_text, row.knowledge_pin_tokens
    return SessionStateRecord(
        session_id=row.session_id,
        force_min_layer=row.force_min_layer,
        last_layer=row.last_layer,
        last_known_input=row.last_known_input,
        last_usage_model=row.last_usage_model,
        last_input_count=row.last_input_count,
        last_window_start=row.last_window_start,
        last_turn_at=row.last_turn_at,
        last_stop_reason=row.last_stop_reason,
        calibration={str(model): int(overhead) for model, overhead in row.calibration.items()},
        raw_pin=None if raw_pin is None else RawPin(**raw_pin),
        knowledge_pin=None if pin_text is None else KnowledgePin(text=pin_text, tokens=pin_tokens or 0),
        turns_since_curation=row.turns_since_curation,
        last_curated_at=row.last_curated_at,
        idle_done_at=row.idle_done_at,
        lease_owner=row.lease_owner,
        lease_until=row.lease_until,
    )


def state_values(changes: Mapping[str, object]) -> dict[str, object]:
    """Column values for the given state fields (field names as in :class:`SessionStateRecord`)."""
    values: dict[str, object] = {}
    for name, value in changes.items():
        if name == "raw_pin":
            pin = cast(RawPin | None, value)
            values[name] = (
                None
                if pin is None
                else {"raw_count": pin.raw_count, "total_count": pin.total_count, "budget": pin.budget}
            )
        elif name == "knowledge_pin":
            knowledge = cast(KnowledgePin | None, value)
            values["knowledge_pin_text"] = None if knowledge is None else knowledge.text
            values["knowledge_pin_tokens"] = None if knowledge is None else knowledge.tokens
        elif name == "calibration":
            values[name] = dict(cast(Mapping[str, int], value))
        else:
            values[name] = value
    return values


def new_state_values(session_id: str) -> dict[str, object]:
    """Column values of a fresh ``session_state`` row (every field at its record default)."""
    fresh = SessionStateRecord(session_id=session_id)
    return state_values({field.name: getattr(fresh, field.name) for field in dataclasses.fields(fresh)})


# -- messages ----------------------------------------------------------------------------------------------


def _blocks(stored: JsonValue) -> tuple[JsonValue, ...]:
    if not isinstance(stored, list):
        raise StoreError("read messages.blocks: not a JSON array", retryable=False)
    return tuple(stored)


def message_record(row: Row[Any]) -> MessageRecord:
    """A ``messages`` row as a record; a row read without the ``blocks`` column gets ``blocks=()``."""
    return MessageRecord(
        id=row.id,
        session_id=row.session_id,
        position=row.position,
        role=cast(Role, _checked(row.role, _ROLES, "messages.role")),
        kind=cast(MessageKind, _checked(row.kind, _MESSAGE_KINDS, "messages.kind")),
        unit_id=row.unit_id,
        text=row.text,
        content_hash=row.content_hash,
        tokens=row.tokens,
        distilled=bool(row.distilled),
        created_at=row.created_at,
        meta=row.meta,
        blocks=_blocks(row.blocks) if "blocks" in row._fields else (),
    )


def message_values(record: MessageRecord) -> dict[str, object]:
    """Column values to insert ``record``."""
    return {
        "session_id": record.session_id,
        "id": record.id,
        "position": record.position,
        "role": record.role,
        "kind": record.kind,
        "unit_id": record.unit_id,
        "text": record.text,
        "content_hash": record.content_hash,
        "tokens": record.tokens,
        "distilled": record.distilled,
        "created_at": record.created_at,
        "meta": dict(record.meta),
        "blocks": list(record.blocks),
    }


# -- distillations -----------------------------------------------------------------------------------------


def _route(stored: str | None, column: str) -> Route | None:
    return None if stored is None else cast(Route, _checked(stored, _ROUTES, column))


def distillation_record(row: Row[Any]) -> DistillationRecord:
    """A ``distillations`` row as a record."""
    return DistillationRecord(
        id=row.id,
        session_id=row.session_id,
        project=row.project,
        seq=row.seq,
        generation=row.generation,
        kind=cast(DistillationKind, _checked(row.kind, _DISTILLATION_KINDS, "distillations.kind")),
        observations=row.observations,
        source_ids=tuple(row.source_ids),
        source_tokens=row.source_tokens,
        token_count=row.token_count,
        r_compression=row.r_compression,
        retention_score=row.retention_score,
        retention_initial=row.retention_initial,
        revision=row.revision,
        archived=bool(row.archived),
        supersedes=row.supersedes,
        route=_route(row.route, "distillations.route"),
        created_at=row.created_at,
    )


def distillation_values(record: DistillationRecord, *, seq: int) -> dict[str, object]:
    """Column values to insert ``record`` as a new, non-archived row with sequence number ``seq``."""
    return {
        "id": record.id,
        "session_id": record.session_id,
        "project": record.project,
        "seq": seq,
        "generation": record.generation,
        "kind": record.kind,
        "observations": record.observations,
        "source_ids": list(record.source_ids),
        "source_tokens": record.source_tokens,
        "token_count": record.token_count,
        "r_compression": record.r_compression,
        "retention_score": record.retention_score,
        "retention_initial": record.retention_initial,
        "revision": record.revision,
        "archived": False,
        "supersedes": record.supersedes,
        "route": record.route,
        "created_at": record.created_at,
    }


# -- knowledge and kv --------------------------------------------------------------------------------------


def knowledge_record(row: Row[Any]) -> KnowledgeRecord:
    """A ``knowledge`` row as a record."""
    return KnowledgeRecord(
        id=row.id,
        project=row.project,
        category=cast(KnowledgeCategory, _checked(row.category, _CATEGORIES, "knowledge.category")),
        title=row.title,
        content=row.content,
        confidence=row.confidence,
        source_session=row.source_session,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def knowledge_values(record: KnowledgeRecord) -> dict[str, object]:
    """Column values to write ``record``."""
    return {
        "id": record.id,
        "project": record.project,
        "category": record.category,
        "title": record.title,
        "content": record.content,
        "confidence": record.confidence,
        "source_session": record.source_session,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
    }


def kv_record(row: Row[Any]) -> KvRecord:
    """A ``kv`` row as a record."""
    value: JsonValue = row.value
    return KvRecord(key=row.key, value=value, updated_at=row.updated_at)


# -- worker runs -------------------------------------------------------------------------------------------


def worker_run_record(row: Row[Any]) -> WorkerRunRecord:
    """A ``worker_runs`` row as a record."""
    return WorkerRunRecord(
        id=row.id,
        session_id=row.session_id,
        project=row.project,
        worker=row.worker,
        urgent=bool(row.urgent),
        status=cast(WorkerRunStatus, _checked(row.status, _RUN_STATUSES, "worker_runs.status")),
        route=_route(row.route, "worker_runs.route"),
        error_type=row.error_type,
        error_detail=row.error_detail,
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def worker_run_values(record: WorkerRunRecord) -> dict[str, object]:
    """Column values to insert ``record``, ``error_detail`` cut to :data:`ERROR_DETAIL_LIMIT` characters."""
    detail = record.error_detail
    return {
        "id": record.id,
        "session_id": record.session_id,
        "project": record.project,
        "worker": record.worker,
        "urgent": record.urgent,
        "status": record.status,
        "route": record.route,
        "error_type": record.error_type,
        "error_detail": None if detail is None else detail[:ERROR_DETAIL_LIMIT],
        "input_tokens": record.input_tokens,
        "output_tokens": record.output_tokens,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
    }
