"""Stored text (ENGINE.md 2, "Stored text") and the meta column."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lore_core.flatten import (
    CHUNK_SEPARATOR,
    flatten_messages,
    flatten_text,
    message_meta,
    tool_names_by_id,
)

from .conversation_builders import assistant, image, rich_conversation, text, tool_result, tool_use, user

SEP = "\n\x1f"


def test_separator() -> None:
    assert CHUNK_SEPARATOR == SEP


def test_string_content_is_verbatim() -> None:
    assert flatten_text("line one\nline two [x]") == "line one\nline two [x]"


@pytest.mark.parametrize(
    ("block", "stored"),
    [
        (text("hello\nworld"), "hello\nworld"),
        ({"type": "thinking", "thinking": "hmm", "signature": "SIG"}, "[thinking] hmm"),
        (tool_use("t1", "read", {"path": "/a b.py", "limit": 5}), '[tool:read] {"path":"/a b.py","limit":5}'),
        (tool_use("t1", "noop"), "[tool:noop] {}"),
        (image(media_type="image/jpeg"), "[image image/jpeg]"),
        ({"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}, "[image url]"),
        (
            {
                "type": "document",
                "title": "Q3 report",
                "source": {"type": "base64", "media_type": "application/pdf"},
            },
            "[document Q3 report]",
        ),
        (
            {
                "type": "document",
                "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"},
            },
            "[document application/pdf]",
        ),
        (
            {"type": "search_result", "title": "Doc", "source": "s", "content": [text("snippet")]},
            "[search_result Doc] snippet",
        ),
        ({"type": "mystery"}, "[mystery]"),
    ],
)
def test_block_formats(block: dict[str, Any], stored: str) -> None:
    assert flatten_text([block]) == stored


def test_redacted_thinking_is_not_stored() -> None:
    content = [{"type": "redacted_thinking", "data": "ZW5j"}, text("visible")]
    assert flatten_text(content) == "visible"


def test_tool_results_are_named_from_the_preceding_call() -> None:
    call = [text("reading"), tool_use("t1", "read", {"path": "a"}), tool_use("t2", "grep", {"q": "x"})]
    names = tool_names_by_id(call)
    assert names == {"t1": "read", "t2": "grep"}
    results = [
        tool_result("t1", "line1\nline2"),
        tool_result("t2", "boom", is_error=True),
        tool_result("t3", [text("a"), image(), text("b")]),
        tool_result("t1", None),
        text("thanks"),
    ]
    assert flatten_text(results, tool_names=names).split(SEP) == [
        "[result:read] line1\nline2",
        "[result:grep error] boom",
        "[result:unknown] a\n[image image/png]\nb",
        "[result:read]",
        "thanks",
    ]


def test_server_tool_results_drop_opaque_payloads() -> None:
    content: list[dict[str, Any]] = [
        {"type": "server_tool_use", "id": "s1", "name": "web_search", "input": {"query": "lore"}},
        {
            "type": "web_search_tool_result",
            "tool_use_id": "s1",
            "content": [
                {"type": "web_search_result", "url": "https://a", "title": "A", "encrypted_content": "SECRET"}
            ],
        },
    ]
    stored = flatten_text(content)
    assert stored.split(SEP) == [
        '[tool:web_search] {"query":"lore"}',
        '[result:web_search_tool_result] [{"type":"web_search_result","url":"https://a","title":"A"}]',
    ]


def test_flatten_messages_resolves_names_per_pair() -> None:
    messages = rich_conversation()
    stored = flatten_messages(messages)
    assert stored[0] == f"look at this{SEP}[image image/png]"
    assert stored[1] == (
        f"[thinking] let me read{SEP}reading both{SEP}"
        f'[tool:read] {{"path":"/a.py"}}{SEP}[tool:grep] {{"pattern":"x","path":"/"}}'
    )
    assert (
        stored[2]
        == f"[result:read] print(1)\n[image image/png]{SEP}[result:grep error] no match{SEP}also, hurry"
    )
    assert stored[4] == f"[document spec]{SEP}and this doc"
    assert stored[5] == "The answer is"


def test_message_meta() -> None:
    messages = rich_conversation()
    names = tool_names_by_id(messages[1]["content"])
    assert message_meta(messages[0]["content"]) == {"media": ["image/png"]}
    assert message_meta(messages[1]["content"]) == {"tools": ["read", "grep"]}
    assert message_meta(messages[2]["content"], tool_names=names) == {
        "tools": ["read", "grep"],
        "media": ["image/png"],
    }
    assert message_meta(messages[4]["content"]) == {"media": ["text/plain"]}
    assert message_meta("just text") == {}
    url_image = {"type": "image", "source": {"type": "url", "url": "https://x"}}
    assert message_meta([url_image, url_image]) == {"media": ["image/url"]}


def test_nothing_is_mutated() -> None:
    messages = rich_conversation()
    before = copy.deepcopy(messages)
    flatten_messages(messages)
    for m in messages:
        message_meta(m["content"], tool_names={"toolu_1": "read"})
    assert messages == before


_payload = st.binary(min_size=18, max_size=300).map(lambda b: base64.b64encode(b).decode())
_words = st.text(alphabet="abc xyz\n[]:", min_size=1, max_size=20)


@st.composite
def media_heavy_content(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[str]]:
    payloads: list[str] = []
    blocks: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(1, 6))):
        data = draw(_payload)
        payloads.append(data)
        kind = draw(st.sampled_from(["image", "pdf", "result_image", "text"]))
        if kind == "image":
            blocks.append(image(data, draw(st.sampled_from(["image/png", "image/gif"]))))
        elif kind == "pdf":
            source = {"type": "base64", "media_type": "application/pdf", "data": data}
            blocks.append({"type": "document", "source": source})
        elif kind == "result_image":
            blocks.append(tool_result("t1", [text(draw(_words)), image(data)]))
        else:
            payloads.pop()
            blocks.append(text(draw(_words)))
    return blocks, payloads


@settings(max_examples=200, deadline=None)
@given(media_heavy_content())
def test_flatten_never_contains_base64_data(case: tuple[list[dict[str, Any]], list[str]]) -> None:
    blocks, payloads = case
    stored = flatten_text(blocks, tool_names={"t1": "shot"})
    for data in payloads:
        assert data not in stored
    assert all(chunk for chunk in stored.split(SEP))


def test_assistant_meta_and_text_for_a_real_turn() -> None:
    reply = assistant([text("ok"), tool_use("t9", "bash", {"cmd": "ls -la"})])
    assert flatten_text(reply["content"]) == f'ok{SEP}[tool:bash] {{"cmd":"ls -la"}}'
    assert flatten_messages([user("go"), reply]) == ["go", f'ok{SEP}[tool:bash] {{"cmd":"ls -la"}}']
