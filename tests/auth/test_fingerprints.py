"""fingerprint and session_fingerprint (BATCH.md 7; behaviours 43 and 45)."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from anthropic.types import MessageParam

from lore_batch.auth import AuthCredential, fingerprint, session_fingerprint

HEX16 = re.compile(r"[0-9a-f]{16}")
KEY = "sk-ant-api03-FPKEY-0123456789"
CRED = AuthCredential("api-key", KEY)


def test_fingerprint_is_16_hex_and_matches_the_formula() -> None:
    fp = fingerprint(CRED)
    assert HEX16.fullmatch(fp)
    assert fp == hashlib.sha256(f"api-key|{KEY}".encode()).hexdigest()[:16]
    assert CRED.fingerprint == fp


def test_one_value_under_two_schemes_gives_two_fingerprints() -> None:
    key, token = AuthCredential("api-key", "same-value"), AuthCredential("bearer", "same-value")
    assert HEX16.fullmatch(token.fingerprint)
    assert key.fingerprint != token.fingerprint


def test_the_workspace_is_not_part_of_the_fingerprint() -> None:
    assert AuthCredential("api-key", KEY, "wrkspc_1").fingerprint == CRED.fingerprint


def _expected(text: str, cred: AuthCredential | None) -> str:
    suffix = fingerprint(cred) if cred is not None else ""
    return hashlib.sha256((text + suffix).encode()).hexdigest()[:16]


def test_session_fingerprint_hashes_the_first_user_text_and_the_credential() -> None:
    messages: list[MessageParam] = [
        {"role": "user", "content": "plan the trip"},
        {"role": "assistant", "content": "sure"},
        {"role": "user", "content": "a later turn"},
    ]
    fp = session_fingerprint(messages, CRED)
    assert HEX16.fullmatch(fp)
    assert fp == _expected("plan the trip", CRED)
    assert session_fingerprint(messages, None) == _expected("plan the trip", None)


def test_text_blocks_are_joined_with_nothing_and_other_blocks_skipped() -> None:
    messages: list[MessageParam] = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "plan "},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
                {"type": "text", "text": "the trip"},
            ],
        }
    ]
    as_string: list[MessageParam] = [{"role": "user", "content": "plan the trip"}]
    assert session_fingerprint(messages, CRED) == _expected("plan the trip", CRED)
    assert session_fingerprint(messages, CRED) == session_fingerprint(as_string, CRED)


def test_leading_assistant_messages_are_skipped_and_no_user_message_hashes_empty_text() -> None:
    lead: list[MessageParam] = [
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "question"},
    ]
    assert session_fingerprint(lead, CRED) == _expected("question", CRED)
    assert session_fingerprint([], CRED) == _expected("", CRED)
    assert session_fingerprint([{"role": "assistant", "content": "x"}], None) == _expected("", None)


def test_the_model_is_left_out() -> None:
    conversation: list[dict[str, Any]] = [{"role": "user", "content": "same conversation"}]
    bodies: list[dict[str, Any]] = [
        {"model": "claude-sonnet-4-6", "messages": conversation},
        {"model": "claude-haiku-4-5", "messages": conversation},
        {"model": "claude-opus-4-6", "messages": [*conversation, {"role": "assistant", "content": "ok"}]},
    ]
    fps = {session_fingerprint(body["messages"], CRED) for body in bodies}
    assert len(fps) == 1
    # Even a model name smuggled into the message dict changes nothing.
    tagged = [{"role": "user", "content": "same conversation", "model": "claude-haiku-4-5"}]
    assert session_fingerprint(tagged, CRED) in fps


def test_the_credential_changes_the_session_fingerprint() -> None:
    messages: list[MessageParam] = [{"role": "user", "content": "same conversation"}]
    by_cred = {
        session_fingerprint(messages, cred)
        for cred in (
            CRED,
            AuthCredential("bearer", KEY),
            AuthCredential("api-key", "sk-ant-api03-OTHER"),
            None,
        )
    }
    assert len(by_cred) == 4
    assert session_fingerprint([{"role": "user", "content": "another"}], CRED) not in by_cred
