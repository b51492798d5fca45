"""Record builders shared by the store tests: deterministic messages, distillations, knowledge entries."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

from lore_core.store import DistillationRecord, KnowledgeRecord, MessageRecord, SqlSessionStore

NOW = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
SID = "chat-42"


def message(
    position: int, *, session_id: str = SID, role: str = "user", tokens: int = 10, **kw: object
) -> MessageRecord:
    body = str(kw.pop("text", f"message {position}"))
    fields: dict[str, object] = {
        "id": hashlib.sha256(f"{role}:{position}:{body}".encode()).hexdigest()[:32],
        "session_id": session_id,
        "position": position,
        "role": role,
        "kind": "human" if role == "user" else "assistant",
        "text": body,
        "content_hash": hashlib.sha256(body.encode()).hexdigest(),
        "tokens": tokens,
        "created_at": NOW + timedelta(seconds=position),
    }
    fields.update(kw)
    return MessageRecord(**fields)  # type: ignore[arg-type]


def distillation(sources: list[MessageRecord], **kw: object) -> DistillationRecord:
    fields: dict[str, object] = {
        "id": str(uuid.uuid4()),
        "session_id": SID,
        "project": "default",
        "generation": 0,
        "kind": "observer",
        "observations": "* red (05:06) user asked for a store",
        "source_ids": tuple(m.id for m in sources),
        "source_tokens": sum(m.tokens for m in sources),
        "token_count": 12,
        "r_compression": 1.5,
        "route": "batch",
        "created_at": NOW,
    }
    fields.update(kw)
    return DistillationRecord(**fields)  # type: ignore[arg-type]


def entry(
    title: str, *, project: str | None = "p1", confidence: float = 0.9, **kw: object
) -> KnowledgeRecord:
    fields: dict[str, object] = {
        "id": str(uuid.uuid4()),
        "project": project,
        "category": "decision",
        "title": title,
        "content": f"content of {title}",
        "confidence": confidence,
        "created_at": NOW,
        "updated_at": NOW,
    }
    fields.update(kw)
    return KnowledgeRecord(**fields)  # type: ignore[arg-type]


async def stored_session(
    store: SqlSessionStore, count: int = 0, session_id: str = SID
) -> list[MessageRecord]:
    await store.ensure_session(session_id, "default", "claude-sonnet-4-6", NOW)
    records = [
        message(i, session_id=session_id, role="user" if i % 2 == 0 else "assistant") for i in range(count)
    ]
    assert await store.insert_messages(records) == count
    return records
