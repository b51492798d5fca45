"""What AnthropicLLMClient sends and what it makes of the answer, through the real SDK and the emulator."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import anthropic
import pytest
from anthropic.types import Usage as AnthropicUsage

from lore_batch.auth import AuthCredential
from lore_batch.emulator import AnthropicEmulator, ResponderOutput
from lore_batch.errors import NoCredentials, UnsupportedProvider
from lore_batch.sync_client import AnthropicLLMClient, resolve_model
from lore_batch.usage import usage_from_api
from lore_core.llm import LLMClient, LLMResponse, Usage

from .conftest import API_KEY, Capture, message_calls

MakeLLM = Callable[..., AnthropicLLMClient]


async def test_is_an_llm_client(make_llm: MakeLLM) -> None:
    assert isinstance(make_llm(), LLMClient)


async def test_default_request_shape(make_llm: MakeLLM, capture: Capture) -> None:
    reply = await make_llm().prompt("You are terse.", "Say hi", worker="curate", session_id="s1")
    assert capture.last == {
        "model": "claude-sonnet-4-6",
        "max_tokens": 8192,
        "messages": [{"role": "user", "content": "Say hi"}],
        "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
        "temperature": 0,
    }
    assert reply.route == "sync"
    assert reply.text == "Echo: Say hi"


async def test_empty_system_is_omitted_and_none_temperature_is_not_sent(
    make_llm: MakeLLM, capture: Capture
) -> None:
    await make_llm().prompt("", "hello", temperature=None)
    assert "system" not in capture.last
    assert "temperature" not in capture.last
    await make_llm(cache_system=False).prompt("sys", "hello", temperature=0.7, max_tokens=64)
    assert capture.last["system"] == [{"type": "text", "text": "sys"}]
    assert capture.last["temperature"] == 0.7
    assert capture.last["max_tokens"] == 64


@pytest.mark.parametrize(
    ("model", "sent"),
    [
        (None, "claude-sonnet-4-6"),
        ("", "claude-sonnet-4-6"),
        ("claude-haiku-4-5", "claude-haiku-4-5"),
        ("anthropic/claude-opus-4-6", "claude-opus-4-6"),
        ("Anthropic/claude-haiku-4-5", "claude-haiku-4-5"),
    ],
)
async def test_model_resolution(make_llm: MakeLLM, capture: Capture, model: str | None, sent: str) -> None:
    reply = await make_llm().prompt("", "x", model=model)
    assert capture.last["model"] == sent
    assert reply.model == sent  # as the provider reported it


async def test_default_model_and_max_tokens_come_from_the_constructor(
    make_llm: MakeLLM, capture: Capture
) -> None:
    await make_llm(default_model="anthropic/claude-haiku-4-5", max_tokens=256).prompt("", "x")
    assert (capture.last["model"], capture.last["max_tokens"]) == ("claude-haiku-4-5", 256)


@pytest.mark.parametrize("model", ["openai/gpt-5.4", "bedrock/claude-sonnet-4-6", "anthropic/"])
async def test_other_providers_raise_before_anything_is_sent(
    make_llm: MakeLLM, emu: AnthropicEmulator, model: str
) -> None:
    with pytest.raises(UnsupportedProvider) as info:
        await make_llm().prompt("", "x", model=model)
    assert info.value.provider == model.partition("/")[0]
    assert emu.requests == []


def test_unsupported_default_model_fails_at_construction(sdk: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(UnsupportedProvider):
        AnthropicLLMClient(sdk, default_model="openai/gpt-5.4")
    assert resolve_model("anthropic/claude-x", "d") == "claude-x"


async def test_response_joins_text_blocks_and_maps_usage(emu: AnthropicEmulator, make_llm: MakeLLM) -> None:
    def two_blocks(params: Any) -> ResponderOutput:
        return ResponderOutput(
            [
                {"type": "text", "text": "Hel"},
                {"type": "tool_use", "id": "toolu_1", "name": "noop", "input": {}},
                {"type": "text", "text": "lo"},
            ],
            stop_reason="max_tokens",
        )

    emu.add_responder(lambda params: True, two_blocks)
    llm = make_llm()
    first = await llm.prompt("a long shared system prompt", "q1", model="claude-haiku-4-5")
    second = await llm.prompt("a long shared system prompt", "q2", model="claude-haiku-4-5")
    assert first.text == "Hello"
    assert first.stop_reason == "max_tokens"
    assert first.model == "claude-haiku-4-5"
    billed = emu.billing
    assert first.usage == Usage(
        input_tokens=billed[0].input_tokens,
        output_tokens=billed[0].output_tokens,
        cache_read_tokens=0,
        cache_write_5m_tokens=billed[0].cache_write_5m_tokens,
        cache_write_1h_tokens=0,
    )
    assert first.usage.cache_write_5m_tokens > 0  # the system block asks for the default TTL
    assert second.usage.cache_read_tokens == first.usage.cache_write_5m_tokens
    assert second.usage.cache_write_5m_tokens == 0
    assert isinstance(first, LLMResponse)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            {
                "input_tokens": 10,
                "output_tokens": 5,
                "cache_read_input_tokens": 3,
                "cache_creation_input_tokens": 30,
                "cache_creation": {"ephemeral_5m_input_tokens": 10, "ephemeral_1h_input_tokens": 20},
            },
            Usage(
                input_tokens=10,
                output_tokens=5,
                cache_read_tokens=3,
                cache_write_5m_tokens=10,
                cache_write_1h_tokens=20,
            ),
        ),
        (  # no TTL breakdown: this call asked for the default TTL, so it is all 5-minute writes
            {"input_tokens": 1, "output_tokens": 2, "cache_creation_input_tokens": 40},
            Usage(input_tokens=1, output_tokens=2, cache_write_5m_tokens=40),
        ),
        (
            {"input_tokens": 1, "output_tokens": 2},
            Usage(input_tokens=1, output_tokens=2),
        ),
        (
            {
                "input_tokens": 1,
                "output_tokens": 2,
                "cache_creation_input_tokens": None,
                "cache_read_input_tokens": None,
            },
            Usage(input_tokens=1, output_tokens=2),
        ),
    ],
)
def test_usage_mapping(raw: dict[str, Any], expected: Usage) -> None:
    assert usage_from_api(AnthropicUsage.model_validate(raw)) == expected


class Registry:
    """A minimal CredentialResolver: a dict of session credentials and an optional explicit default."""

    def __init__(self, sessions: dict[str, AuthCredential], default: AuthCredential | None = None) -> None:
        self.sessions = sessions
        self.default = default

    def resolve_auth(self, session_id: str | None) -> AuthCredential | None:
        if session_id is not None and session_id in self.sessions:
            return self.sessions[session_id]
        return self.default


def bearer_fp(value: str) -> str:
    """What the emulator records: current SDKs send every credential as ``Authorization: Bearer``."""
    return hashlib.sha256(f"bearer|{value}".encode()).hexdigest()[:16]


async def test_per_session_credentials_use_with_options_copies(
    make_llm: MakeLLM, emu: AnthropicEmulator, sdk: anthropic.AsyncAnthropic
) -> None:
    alice = AuthCredential("api-key", "sk-ant-api03-ALICE")
    bob = AuthCredential("bearer", "sk-ant-oat01-BOB", workspace="wrkspc_bob")
    llm = make_llm(registry=Registry({"alice": alice, "bob": bob}))
    await llm.prompt("", "1", session_id="alice")
    await llm.prompt("", "2", session_id="bob")
    await llm.prompt("", "3", session_id="alice")
    calls = message_calls(emu)
    assert [c.credential_fp for c in calls] == [
        bearer_fp("sk-ant-api03-ALICE"),
        bearer_fp("sk-ant-oat01-BOB"),
        bearer_fp("sk-ant-api03-ALICE"),
    ]
    assert [c.workspace for c in calls] == [None, "wrkspc_bob", None]
    assert bearer_fp(API_KEY) not in {c.credential_fp for c in calls}
    # one cached copy per credential, all on the caller's connection pool, none retrying on its own
    copies = list(llm._credential_clients.values())
    assert len(copies) == 2
    assert all(c._client is sdk._client and c.max_retries == 0 for c in copies)


async def test_a_session_without_credential_raises_no_credentials(
    make_llm: MakeLLM, emu: AnthropicEmulator
) -> None:
    llm = make_llm(registry=Registry({}))
    with pytest.raises(NoCredentials) as info:
        await llm.prompt("", "x", session_id="ghost")
    assert info.value.session_id == "ghost"
    assert emu.requests == []


async def test_a_configured_default_is_used_for_unknown_sessions(
    make_llm: MakeLLM, emu: AnthropicEmulator
) -> None:
    llm = make_llm(registry=Registry({}, default=AuthCredential("api-key", "sk-ant-api03-DEFAULT")))
    await llm.prompt("", "x")
    assert message_calls(emu)[-1].credential_fp == bearer_fp("sk-ant-api03-DEFAULT")


async def test_without_registry_the_clients_own_credential_is_used(
    make_llm: MakeLLM, emu: AnthropicEmulator
) -> None:
    await make_llm().prompt("", "x", session_id="anyone")
    assert message_calls(emu)[-1].credential_fp == bearer_fp(API_KEY)
