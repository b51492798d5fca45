"""``lore recall SESSION QUERY``: text and ``--json`` output, scopes, and errors, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lore_core.cli import main
from lore_core.store import SqlSessionStore

from ..store.builders import NOW, entry, message


@pytest.fixture
async def history_url(migrated_url: str) -> str:
    async with SqlSessionStore(migrated_url) as store:
        for session_id, project in (("chat-1", "alpha"), ("chat-2", "alpha"), ("chat-3", "beta")):
            await store.ensure_session(session_id, project, "claude-sonnet-4-6", NOW)
            await store.insert_messages(
                [
                    message(
                        0, session_id=session_id, text=f"the nightly backup runs at 02:30 ({session_id})"
                    ),
                    message(1, session_id=session_id, role="assistant", text="noted"),
                ]
            )
        await store.upsert_knowledge(entry("Backup window", project="alpha", content="nightly at 02:30 UTC"))
    return migrated_url


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert main(["recall", *argv, "--json"]) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def test_recall_prints_hits_with_their_sources(history_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recall", "chat-1", "nightly backup", "--db", history_url]) == 0
    out = capsys.readouterr().out
    assert out.startswith('2 results for "nightly backup" in this session, best first:')
    first = message(0, session_id="chat-1", text="the nightly backup runs at 02:30 (chat-1)")
    assert f"[1] message m:{first.id}, user, 2026-03-04 05:06 UTC" in out  # full ids on the command line
    assert "the nightly backup runs at 02:30 (chat-1)" in out
    assert "[2] knowledge k:" in out
    assert "Backup window: nightly at 02:30 UTC" in out
    assert "chat-2" not in out
    assert "chat-3" not in out


def test_recall_json_lists_every_field(history_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    data = _json(capsys, "chat-1", "nightly backup", "--db", history_url, "--limit", "1")
    assert set(data) == {
        "query", "terms", "queries", "expansion", "scope", "session_id", "project", "hits", "omitted", "chars",
    }  # fmt: skip
    assert (data["scope"], data["session_id"], data["project"], data["expansion"]) == (
        "session", "chat-1", "alpha", "off",
    )  # fmt: skip
    assert data["terms"] == ["nightly", "backup"]
    (hit,) = data["hits"]
    assert hit["source_type"] == "message"
    assert hit["session_id"] == "chat-1"
    assert hit["position"] == 0
    assert (hit["kind"], hit["role"], hit["distilled"]) == ("human", "user", False)
    assert (
        hit["message_id"]
        == message(0, session_id="chat-1", text="the nightly backup runs at 02:30 (chat-1)").id
    )
    assert hit["created_at"] == "2026-03-04T05:06:07.891011+00:00"
    assert hit["text"] == "the nightly backup runs at 02:30 (chat-1)"
    assert hit["truncated"] is False
    assert data["chars"] == len(hit["text"])


def test_recall_widens_only_when_asked(history_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    def sessions(*extra: str) -> set[str]:
        data = _json(capsys, "chat-1", "nightly backup", "--db", history_url, *extra)
        return {hit["session_id"] for hit in data["hits"] if hit["source_type"] == "message"}

    assert sessions() == {"chat-1"}
    assert sessions("--project", "alpha") == {"chat-1", "chat-2"}
    assert sessions("--project", "beta") == {"chat-3"}
    assert sessions("--all-sessions") == {"chat-1", "chat-2", "chat-3"}
    assert sessions("--all-sessions", "--project", "beta") == {"chat-3"}


def test_recall_errors(history_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recall", "nobody", "backup", "--db", history_url]) == 1
    assert "unknown session 'nobody'" in capsys.readouterr().err
    assert main(["recall", "chat-1", "   ", "--db", history_url]) == 1
    assert "non-empty" in capsys.readouterr().err
    assert main(["recall", "chat-1", "backup", "--db", history_url, "--limit", "0"]) == 2
    assert main(["recall", "chat-1", "kubernetes", "--db", history_url]) == 0
    assert capsys.readouterr().out.startswith('No results for "kubernetes" in this session.')
