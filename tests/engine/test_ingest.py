"""Raw-message storage on SQLite and PostgreSQL: every message stored once, with text, blocks and links."""

from __future__ import annotations

import base64
import copy
from datetime import UTC, datetime, timedelta

from lore_core.ingest import MessageLog, prepare_records, storable_blocks
from lore_core.messages import message_ids
from lore_core.store import SqlSessionStore
from lore_core.tokens import count_tokens

NOW = datetime(2026, 2, 25, 22, 52, tzinfo=UTC)
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 64).decode()


def conversation() -> list[dict[str, object]]:
    return [
        {
            "role": "user",
            "content": [{"type": "text", "text": "Fix the test", "cache_control": {"type": "ephemeral"}}],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Reading it."},
                {"type": "tool_use", "id": "toolu_1", "name": "read", "input": {"path": "tests/test_x.py"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "def test_x(): assert 1 == 2"}
            ],
        },
        {"role": "assistant", "content": "The assertion compares 1 with 2."},
        {
            "role": "user",
            "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                {"type": "text", "text": "and this screenshot?"},
            ],
        },
    ]


def test_prepare_records_builds_text_kinds_links_and_blocks() -> None:
    messages = conversation()
    original = copy.deepcopy(messages)
    records = prepare_records("s1", messages, now=NOW)
    assert messages == original  # the caller's objects are never modified
    assert [r.kind for r in records] == ["human", "assistant", "tool_results", "assistant", "human"]
    assert [r.id for r in records] == message_ids(messages)
    assert [r.position for r in records] == [0, 1, 2, 3, 4]
    assert records[2].unit_id == records[1].id
    assert all(r.unit_id is None for i, r in enumerate(records) if i != 2)
    assert records[2].text == "[result:read] def test_x(): assert 1 == 2"
    assert '[tool:read] {"path":"tests/test_x.py"}' in records[1].text
    assert all(r.tokens == count_tokens(r.text) for r in records)
    assert all(r.created_at == NOW for r in records)
    assert "cache_control" not in str(records[0].blocks)
    image = records[4].blocks[0]
    assert isinstance(image, dict)
    source = image["source"]
    assert isinstance(source, dict)
    assert "data" not in source
    assert source["data_omitted"] is True
    assert PNG not in str(records[4].blocks)
    assert records[4].meta["media"] == ["image/png"]


def test_storable_blocks_turns_a_string_into_one_text_block() -> None:
    assert storable_blocks("hello") == ({"type": "text", "text": "hello"},)


async def test_every_message_is_stored_once(store: SqlSessionStore) -> None:
    await store.ensure_session("s1", "default", "claude-sonnet-4-6", NOW)
    log = MessageLog(store)
    messages = conversation()
    first = await log.record("s1", messages[:3], now=NOW)
    assert first.inserted == 3
    again = await log.record("s1", messages[:3], now=NOW + timedelta(seconds=5))
    assert again.inserted == 0
    grown = await log.record("s1", messages, now=NOW + timedelta(seconds=10))
    assert grown.inserted == 2
    stored = await store.list_messages("s1")
    assert [r.position for r in stored] == [0, 1, 2, 3, 4]
    assert stored[3].created_at == NOW + timedelta(seconds=10)
    assert not any(r.distilled for r in stored)
    # a fresh log (a restart) re-checks the store and stores nothing twice
    assert (await MessageLog(store).record("s1", messages, now=NOW)).inserted == 0
    assert await store.count_messages("s1") == 5


async def test_a_host_rewrite_does_not_store_surviving_messages_again(store: SqlSessionStore) -> None:
    await store.ensure_session("s1", "default", "claude-sonnet-4-6", NOW)
    log = MessageLog(store)
    messages = conversation()
    await log.record("s1", messages, now=NOW)
    # the host dropped the first exchange: positions shift, so ids change, but the content is known
    rewritten = (
        messages[3:]
        if messages[3]["role"] == "user"
        else [{"role": "user", "content": "go on"}, *messages[3:]]
    )
    result = await log.record("s1", rewritten, now=NOW + timedelta(seconds=1))
    assert result.rewrite is True
    # only the one message whose (role, content) was never stored is new
    assert result.inserted == 1
    assert await store.count_messages("s1") == 6
