"""What ``lore inspect SESSION`` shows: a read-only report of one session in the store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from lore_core.errors import SessionNotFoundError
from lore_core.store.port import SessionStore
from lore_core.store.records import WorkerRunRecord

__all__ = [
    "DistillationSummary",
    "KnowledgeSummary",
    "SessionReport",
    "WorkerRunSummary",
    "inspect_session",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class DistillationSummary:
    """One distillation row, without its text."""

    id: str
    seq: int
    generation: int
    kind: str
    archived: bool
    sources: int
    source_tokens: int
    tokens: int
    retention_score: float | None
    retention_initial: float | None
    revision: int
    route: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class KnowledgeSummary:
    """One visible knowledge entry."""

    id: str
    scope: str
    category: str
    title: str
    confidence: float


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerRunSummary:
    """One recorded worker run."""

    worker: str
    status: str
    urgent: bool
    route: str | None
    error_type: str | None
    error_detail: str | None
    started_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionReport:
    """Counts, distillations by generation, knowledge and recent worker runs of one session."""

    session_id: str
    project: str
    model: str
    created_at: datetime
    messages: int
    undistilled: int
    undistilled_tokens: int
    distillations: tuple[DistillationSummary, ...]
    knowledge: tuple[KnowledgeSummary, ...]
    worker_calls: int
    worker_errors: tuple[WorkerRunSummary, ...]
    recent_runs: tuple[WorkerRunSummary, ...]

    def by_generation(self) -> dict[int, tuple[int, int]]:
        """``{generation: (current rows, archived rows)}``."""
        out: dict[int, tuple[int, int]] = {}
        for row in self.distillations:
            live, archived = out.get(row.generation, (0, 0))
            out[row.generation] = (live + (not row.archived), archived + row.archived)
        return dict(sorted(out.items()))


async def inspect_session(store: SessionStore, session_id: str, *, runs: int = 20) -> SessionReport:
    """Read the report of one session.

    Raises:
        SessionNotFoundError: no such session in the store.
        StoreError: the database failed.
    """
    session = await store.get_session(session_id)
    if session is None:
        raise SessionNotFoundError(session_id)
    rows = await store.list_distillations(session_id, include_archived=True)
    knowledge = await store.list_knowledge(session.project, include_global=True)
    recent = await store.list_worker_runs(session_id=session_id, limit=runs)
    errors = await store.list_worker_runs(session_id=session_id, status="error", limit=runs)
    rejected = await store.list_worker_runs(session_id=session_id, status="rejected", limit=runs)
    failed = sorted([*errors, *rejected], key=lambda r: r.started_at, reverse=True)[:runs]
    return SessionReport(
        session_id=session.session_id,
        project=session.project,
        model=session.last_model,
        created_at=session.created_at,
        messages=await store.count_messages(session_id),
        undistilled=await store.count_messages(session_id, undistilled_only=True),
        undistilled_tokens=await store.undistilled_tokens(session_id),
        distillations=tuple(
            DistillationSummary(
                id=row.id,
                seq=row.seq,
                generation=row.generation,
                kind=row.kind,
                archived=row.archived,
                sources=len(row.source_ids),
                source_tokens=row.source_tokens,
                tokens=row.token_count,
                retention_score=row.retention_score,
                retention_initial=row.retention_initial,
                revision=row.revision,
                route=row.route,
                created_at=row.created_at,
            )
            for row in rows
        ),
        knowledge=tuple(
            KnowledgeSummary(
                id=entry.id,
                scope="global" if entry.project is None else "project",
                category=entry.category,
                title=entry.title,
                confidence=entry.confidence,
            )
            for entry in knowledge
        ),
        worker_calls=await store.count_worker_runs(session_id=session_id),
        worker_errors=tuple(_run(r) for r in failed),
        recent_runs=tuple(_run(r) for r in recent),
    )


def _run(record: WorkerRunRecord) -> WorkerRunSummary:
    return WorkerRunSummary(
        worker=record.worker,
        status=record.status,
        urgent=record.urgent,
        route=record.route,
        error_type=record.error_type,
        error_detail=record.error_detail,
        started_at=record.started_at,
    )
