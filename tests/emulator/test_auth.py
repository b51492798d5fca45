"""Credentials, OAuth on batch paths, per-credential and per-workspace isolation, and secrets never kept."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator

import anthropic
import pytest
from anthropic import AsyncAnthropic

from lore_batch.emulator import AnthropicEmulator, ManualClock

from .helpers import VERSION, batch_requests, params, raw_client

OAUTH = "sk-ant-oat01-secret-token-value"


def _fp(scheme: str, value: str) -> str:
    return hashlib.sha256(f"{scheme}|{value}".encode()).hexdigest()[:16]


async def test_x_api_key_and_bearer_are_both_accepted_and_fingerprinted(emu: AnthropicEmulator) -> None:
    async with raw_client(emu) as http:
        by_key = await http.post(
            "/v1/messages", headers={"x-api-key": "k-1", "anthropic-version": VERSION}, json=params()
        )
        by_bearer = await http.post(
            "/v1/messages",
            headers={"authorization": "Bearer k-1", "anthropic-version": VERSION},
            json=params(),
        )
        both = await http.post(
            "/v1/messages",
            headers={"x-api-key": "k-2", "authorization": "Bearer k-3", "anthropic-version": VERSION},
            json=params(),
        )
    assert (by_key.status_code, by_bearer.status_code, both.status_code) == (200, 200, 200)
    logged = [(r.scheme, r.credential_fp) for r in emu.requests]
    assert logged == [
        ("api-key", _fp("api-key", "k-1")),
        ("bearer", _fp("bearer", "k-1")),  # same value, other scheme: another fingerprint
        ("api-key", _fp("api-key", "k-2")),  # x-api-key wins when both are sent
    ]


@pytest.mark.parametrize("header", [{}, {"authorization": "Basic abc"}, {"authorization": "Bearer a b"}])
async def test_missing_or_unusable_credentials_get_401(
    emu: AnthropicEmulator, header: dict[str, str]
) -> None:
    async with raw_client(emu) as http:
        response = await http.post(
            "/v1/messages", headers={"anthropic-version": VERSION, **header}, json=params()
        )
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert emu.requests[0].credential_fp is None


async def test_configured_keys_refuse_unknown_ones(clock: ManualClock) -> None:
    emu = AnthropicEmulator(clock=clock, api_keys={"sk-ant-good"})
    async with emu.client(api_key="sk-ant-good") as good, emu.client(api_key="sk-ant-bad") as bad:
        assert (await good.messages.create(**params())).role == "assistant"
        with pytest.raises(anthropic.AuthenticationError):
            await bad.messages.create(**params())
        with pytest.raises(anthropic.AuthenticationError):
            await bad.messages.batches.list()


async def test_oauth_tokens_work_on_messages_but_get_403_on_every_batch_path(
    emu: AnthropicEmulator, client: AsyncAnthropic
) -> None:
    batch = await client.messages.batches.create(requests=batch_requests(1))
    async with emu.client(auth_token=OAUTH) as oauth:
        assert (await oauth.messages.create(**params())).role == "assistant"
        calls = [
            oauth.messages.batches.create(requests=batch_requests(1)),
            oauth.messages.batches.retrieve(batch.id),
            oauth.messages.batches.list(),
            oauth.messages.batches.cancel(batch.id),
            oauth.messages.batches.delete(batch.id),
        ]
        for call in calls:
            with pytest.raises(anthropic.PermissionDeniedError) as caught:
                await call
            assert caught.value.body["error"]["type"] == "permission_error"
        async with raw_client(emu) as http:
            results = await http.get(
                f"/v1/messages/batches/{batch.id}/results",
                headers={"authorization": f"Bearer {OAUTH}", "anthropic-version": VERSION},
            )
        assert results.status_code == 403
    assert [r.status for r in emu.requests if r.credential_fp == _fp("bearer", OAUTH)] == [200] + [403] * 6


async def test_configured_oauth_tokens_replace_the_prefix_rule(clock: ManualClock) -> None:
    emu = AnthropicEmulator(clock=clock, api_keys={"sk-ant-good"}, oauth_tokens={"custom-oauth"})
    async with emu.client(auth_token="custom-oauth") as oauth, emu.client(api_key=OAUTH) as prefixed:
        assert (await oauth.messages.create(**params())).role == "assistant"
        with pytest.raises(anthropic.PermissionDeniedError):
            await oauth.messages.batches.list()
        with pytest.raises(anthropic.AuthenticationError):  # no longer OAuth, and not a configured key
            await prefixed.messages.create(**params())


async def test_a_batch_is_visible_only_to_its_credential_and_workspace(emu: AnthropicEmulator) -> None:
    async with (
        emu.client(api_key="sk-ant-a") as owner,
        emu.client(api_key="sk-ant-b") as stranger,
        emu.client(api_key="sk-ant-a", workspace_id="wrkspc_other") as other_workspace,
    ):
        batch = await owner.messages.batches.create(requests=batch_requests(2))
        for intruder in (stranger, other_workspace):
            with pytest.raises(anthropic.NotFoundError):
                await intruder.messages.batches.retrieve(batch.id)
            with pytest.raises(anthropic.NotFoundError):
                await intruder.messages.batches.cancel(batch.id)
            assert [b.id async for b in intruder.messages.batches.list()] == []
        mine = await owner.messages.batches.create(requests=batch_requests(1), workspace_id="wrkspc_other")
        assert (await other_workspace.messages.batches.retrieve(mine.id)).id == mine.id
        assert [b.id async for b in owner.messages.batches.list()] == [batch.id]
    create = next(r for r in emu.requests if r.batch_id == mine.id)
    assert create.workspace == "wrkspc_other"
    assert emu.batches[mine.id].workspace == "wrkspc_other"


def _strings(value: object, seen: set[int]) -> Iterator[str]:
    """Every string reachable from ``value`` (attributes, slots, containers), each object once."""
    if id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, str):
        yield value
        return
    if isinstance(value, bytes | int | float | bool) or value is None:
        return
    if callable(value) and not hasattr(value, "__self__"):
        return
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key, seen)
            yield from _strings(item, seen)
        return
    if isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _strings(item, seen)
        return
    for name in getattr(type(value), "__slots__", ()):
        if hasattr(value, name):
            yield from _strings(getattr(value, name), seen)
    for item in getattr(value, "__dict__", {}).values():
        yield from _strings(item, seen)


async def test_secrets_are_never_stored_shown_or_logged(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    secret_key, secret_token = "sk-ant-api03-SECRETKEYVALUE", "sk-ant-oat01-SECRETTOKENVALUE"
    caplog.set_level(logging.DEBUG)
    emu = AnthropicEmulator(clock=clock, api_keys={secret_key}, oauth_tokens={secret_token}, batch_delay=1)
    async with emu.client(api_key=secret_key) as client, emu.client(auth_token=secret_token) as oauth:
        await client.messages.create(**params())
        batch = await client.messages.batches.create(requests=batch_requests(2))
        emu.advance(2)
        assert len([line async for line in await client.messages.batches.results(batch.id)]) == 2
        await oauth.messages.create(**params())
        with pytest.raises(anthropic.PermissionDeniedError):
            await oauth.messages.batches.list()
    stored = list(_strings(emu, set()))
    assert "req-1" in stored  # the scan does reach the batch items
    texts = [repr(emu), repr(emu.requests), repr(emu.billing), repr(dict(emu.batches)), repr(emu.faults)]
    texts += [caplog.text, *stored]
    for secret in (secret_key, secret_token):
        assert not any(secret in text for text in texts)
        assert not any(secret[12:] in text for text in texts)  # not even a part of it
