"""POST /v1/messages and /v1/messages/count_tokens through the real SDK."""

from __future__ import annotations

import json
import math
from typing import Any

import anthropic
import pytest
from anthropic import AsyncAnthropic

from lore_batch.emulator import AnthropicEmulator, ManualClock, ResponderOutput

from .helpers import MODEL, auth, params, raw_client


async def test_message_echoes_the_last_user_message(client: AsyncAnthropic) -> None:
    message = await client.messages.create(**params("What is   the\nweather?"))
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.model == MODEL
    assert message.id.startswith("msg_")
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "Echo: What is the weather?"
    assert message.stop_reason == "end_turn"
    assert message.usage.service_tier == "standard"


async def test_echo_honours_max_tokens(client: AsyncAnthropic) -> None:
    message = await client.messages.create(**params("a long question " * 20, max_tokens=2))
    assert message.stop_reason == "max_tokens"
    assert message.content[0].text == "Echo: a "  # 8 bytes = 2 tokens
    assert message.usage.output_tokens == 2


async def test_responses_carry_a_request_id_header(client: AsyncAnthropic) -> None:
    raw = await client.messages.with_raw_response.create(**params())
    assert raw.headers["request-id"].startswith("req_")


async def test_count_tokens_is_ceil_of_compact_json_bytes_over_four(client: AsyncAnthropic) -> None:
    system = "Sé breve."
    messages: list[Any] = [{"role": "user", "content": "héllo wörld"}]
    counted = await client.messages.count_tokens(model=MODEL, system=system, messages=messages)
    compact = '{"system":"Sé breve.","messages":[{"role":"user","content":"héllo wörld"}]}'
    assert counted.input_tokens == math.ceil(len(compact.encode()) / 4)
    message = await client.messages.create(model=MODEL, max_tokens=8, system=system, messages=messages)
    assert message.usage.input_tokens == counted.input_tokens


async def test_count_tokens_includes_tools(client: AsyncAnthropic) -> None:
    tools: list[Any] = [{"name": "lookup", "description": "d", "input_schema": {"type": "object"}}]
    plain = await client.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "x"}])
    with_tools = await client.messages.count_tokens(
        model=MODEL, messages=[{"role": "user", "content": "x"}], tools=tools
    )
    assert with_tools.input_tokens > plain.input_tokens


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"model": "gpt-4o"}, "model"),
        ({"model": "claude-opus-4-5-"}, "model"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "assistant", "content": "hi"}]}, "alternate"),
        (
            {"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]},
            "alternate",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "a"},
                    {"role": "assistant", "content": "b"},
                    {
                        "role": "user",
                        "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "r"}],
                    },
                ]
            },
            "tool_result",
        ),
    ],
)
async def test_invalid_messages_are_refused(
    client: AsyncAnthropic, overrides: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        await client.messages.create(**params(**overrides))
    assert fragment in caught.value.message
    assert caught.value.body["error"]["type"] == "invalid_request_error"


async def test_tool_result_answering_the_previous_tool_use_is_accepted(client: AsyncAnthropic) -> None:
    messages: list[Any] = [
        {"role": "user", "content": "look it up"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "42"}]},
    ]
    message = await client.messages.create(model=MODEL, max_tokens=16, messages=messages)
    assert message.content[0].text == "Echo: (no text)"


async def test_streaming_is_refused(emu: AnthropicEmulator) -> None:
    async with raw_client(emu) as http:
        response = await http.post("/v1/messages", headers=auth(), json={**params(), "stream": True})
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert body["request_id"] == response.headers["request-id"]


async def test_missing_anthropic_version_is_a_400(emu: AnthropicEmulator) -> None:
    async with raw_client(emu) as http:
        response = await http.post("/v1/messages", headers={"x-api-key": "k"}, json=params())
    assert response.status_code == 400
    assert "anthropic-version" in response.json()["error"]["message"]


async def test_body_that_is_not_json_is_a_400(emu: AnthropicEmulator) -> None:
    async with raw_client(emu) as http:
        response = await http.post("/v1/messages", headers=auth(), content=b"{not json")
    assert response.status_code == 400


async def test_oversized_message_body_is_a_413(emu: AnthropicEmulator, client: AsyncAnthropic) -> None:
    emu.max_message_bytes = 200
    with pytest.raises(anthropic.APIStatusError) as caught:
        await client.messages.create(**params("x" * 500))
    assert caught.value.status_code == 413
    assert caught.value.body["error"]["type"] == "request_too_large"


async def test_unknown_path_is_a_logged_404(emu: AnthropicEmulator) -> None:
    async with raw_client(emu) as http:
        response = await http.get("/v1/nothing-here", headers=auth())
        wrong_method = await http.put("/v1/messages", headers=auth())
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"
    assert wrong_method.status_code == 405
    assert [(r.endpoint, r.status) for r in emu.requests] == [("unknown", 404), ("unknown", 405)]


async def test_added_responders_are_tried_in_order_before_the_default(
    emu: AnthropicEmulator, client: AsyncAnthropic
) -> None:
    emu.add_responder(lambda p: "tool" in str(p["messages"]), lambda p: ResponderOutput.text("first"))
    emu.add_responder(lambda p: "tool" in str(p["messages"]), lambda p: ResponderOutput.text("second"))
    emu.add_responder(
        lambda p: "call" in str(p["messages"]),
        lambda p: ResponderOutput(
            [{"type": "tool_use", "id": "toolu_9", "name": "f", "input": {"q": 1}}], "tool_use"
        ),
    )
    first = await client.messages.create(**params("use a tool"))
    called = await client.messages.create(**params("call it"))
    default = await client.messages.create(**params("plain"))
    assert first.content[0].text == "first"
    assert called.stop_reason == "tool_use"
    assert called.content[0].type == "tool_use"
    assert default.content[0].text == "Echo: plain"


async def test_constructor_responder_replaces_the_echo(clock: ManualClock) -> None:
    emu = AnthropicEmulator(
        clock=clock, responder=lambda p: ResponderOutput.text("fixed", stop_reason="end_turn")
    )
    async with emu.client() as client:
        message = await client.messages.create(**params())
    assert message.content[0].text == "fixed"


def _cached_params(ttl: str | None, text: str = "You are terse. " * 20) -> dict[str, Any]:
    control: dict[str, Any] = {"type": "ephemeral"} if ttl is None else {"type": "ephemeral", "ttl": ttl}
    return params(system=[{"type": "text", "text": text, "cache_control": control}])


async def test_prompt_cache_writes_then_reads_per_credential(
    emu: AnthropicEmulator, clock: ManualClock
) -> None:
    request = _cached_params("1h")
    async with emu.client() as client, emu.client(api_key="sk-ant-other") as other:
        counted = await client.messages.count_tokens(
            model=MODEL, system=request["system"], messages=request["messages"]
        )
        total = counted.input_tokens
        first = await client.messages.create(**request)
        second = await client.messages.create(**request)
        elsewhere = await other.messages.create(**request)
        clock.advance(3601)
        expired = await client.messages.create(**request)
    written = first.usage.cache_creation_input_tokens
    assert written == math.ceil(len(json.dumps(request["system"], separators=(",", ":")).encode()) / 4)
    assert first.usage.cache_creation is not None
    assert first.usage.cache_creation.ephemeral_1h_input_tokens == written
    assert first.usage.cache_creation.ephemeral_5m_input_tokens == 0
    assert first.usage.cache_read_input_tokens == 0
    assert first.usage.input_tokens + written == total
    assert second.usage.cache_read_input_tokens == written
    assert second.usage.cache_creation_input_tokens == 0
    assert second.usage.input_tokens + written == total
    assert elsewhere.usage.cache_creation_input_tokens == written  # another credential has its own cache
    assert expired.usage.cache_creation_input_tokens == written  # the 1 h entry lapsed


async def test_prompt_cache_defaults_to_five_minutes(client: AsyncAnthropic) -> None:
    first = await client.messages.create(**_cached_params(None))
    assert first.usage.cache_creation is not None
    assert first.usage.cache_creation.ephemeral_5m_input_tokens == first.usage.cache_creation_input_tokens
    assert first.usage.cache_creation.ephemeral_1h_input_tokens == 0


async def test_a_different_prefix_is_a_new_cache_write(client: AsyncAnthropic) -> None:
    await client.messages.create(**_cached_params("5m", "alpha " * 30))
    changed = await client.messages.create(**_cached_params("5m", "beta " * 30))
    assert changed.usage.cache_read_input_tokens == 0
    assert (changed.usage.cache_creation_input_tokens or 0) > 0
