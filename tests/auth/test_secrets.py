"""No secret in any repr, str, exception message or log line (behaviour 41, for the auth pieces)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from lore_batch import AnthropicLLMClient, CredentialRegistry, auth_headers, extract_auth
from lore_batch.auth import AuthCredential, credential_of, resolve_auth, session_fingerprint
from lore_batch.clock import ManualClock
from lore_batch.emulator import AnthropicEmulator
from lore_batch.errors import NoCredentials, UnsupportedProvider
from lore_core.errors import ConfigError

KEY = "sk-ant-api03-SECRET-KEY-must-not-leak"
TOKEN = "sk-ant-oat01-SECRET-TOKEN-must-not-leak"
OTHER = "sk-ant-api03-SECRET-OTHER-must-not-leak"
SECRETS = (KEY, TOKEN, OTHER)


def assert_clean(*objects: object) -> None:
    for obj in objects:
        for text in (repr(obj), str(obj), f"{obj}", f"{obj!r}"):
            for secret in SECRETS:
                assert secret not in text, f"{type(obj).__name__} shows a secret"
                assert secret[-12:] not in text  # no tail of it either


def test_credentials_show_scheme_fingerprint_and_workspace_only() -> None:
    creds = [
        AuthCredential("api-key", KEY),
        AuthCredential("bearer", TOKEN, "wrkspc_1"),
        extract_auth({"authorization": f"Bearer {TOKEN}"}),
        extract_auth({"x-api-key": OTHER, "anthropic-workspace-id": "wrkspc_2"}),
    ]
    assert_clean(*creds, creds, {"s1": creds[0]}, tuple(creds))
    for cred in creds:
        assert cred is not None
        assert f"fingerprint={cred.fingerprint!r}" in repr(cred)
        assert "value=<redacted>" in repr(cred)
    assert "workspace='wrkspc_1'" in repr(creds[1])


def _bad_scheme() -> object:
    scheme: Any = "basic"
    return AuthCredential(scheme, KEY)


def test_exception_messages_never_carry_the_secret() -> None:
    attempts: list[Callable[[], object]] = [
        _bad_scheme,
        lambda: AuthCredential("api-key", ""),
        lambda: auth_headers(AuthCredential("api-key", KEY), provider="gemini"),
        lambda: CredentialRegistry(max_sessions=0, default=AuthCredential("api-key", KEY)),
        lambda: CredentialRegistry().set("", AuthCredential("bearer", TOKEN)),
    ]
    errors: list[BaseException] = []
    for attempt in attempts:
        with pytest.raises((ConfigError, UnsupportedProvider)) as info:
            attempt()
        errors.append(info.value)
    assert_clean(*errors)
    for err in errors:
        assert_clean(err.args, vars(err))


def test_the_registry_repr_shows_counts_and_fingerprints_only() -> None:
    clock = ManualClock()
    key, token, other = (
        AuthCredential("api-key", KEY),
        AuthCredential("bearer", TOKEN),
        AuthCredential("api-key", OTHER),
    )
    registry = CredentialRegistry(max_sessions=3, idle_ttl=60, default=other, clock=clock)
    assert repr(registry) == (
        f"CredentialRegistry(sessions=0, max_sessions=3, idle_ttl=60.0, default={other.fingerprint!r}, "
        "fingerprints=[])"
    )
    registry.set("s1", key)
    registry.set("s2", token)
    registry.set("s3", key)
    text = repr(registry)
    assert_clean(registry, registry.fingerprints(), len(registry))
    assert "sessions=3" in text
    assert key.fingerprint in text
    assert token.fingerprint in text
    assert "s1" not in text  # session ids are not listed either, only counts
    clock.advance(60)
    assert "sessions=0" in repr(registry)


def test_a_large_registry_repr_stays_short() -> None:
    registry = CredentialRegistry(clock=ManualClock())
    for i in range(20):
        registry.set(f"s{i}", AuthCredential("api-key", f"{KEY}-{i}"))
    text = repr(registry)
    assert "sessions=20" in text
    assert "+12 more" in text
    assert len(text) < 400
    assert KEY not in text


async def test_no_secret_in_debug_logs_across_the_whole_life(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # every logger
    clock = ManualClock()
    key, token, other = (
        AuthCredential("api-key", KEY),
        AuthCredential("bearer", TOKEN),
        AuthCredential("api-key", OTHER),
    )
    registry = CredentialRegistry(max_sessions=2, idle_ttl=10, clock=clock)

    def broken(fp: str) -> None:
        raise RuntimeError("callback failed")

    registry.on_register(broken)
    registry.set("s1", key)
    registry.set("s2", token)
    registry.set("s3", other)  # evicts s1
    registry.resolve_auth("s2")
    registry.set_default(key)
    registry.set_default(None)
    clock.advance(10)  # s2 and s3 expire on the next access
    registry.fingerprints()
    registry.delete("s2")
    extract_auth({"x-api-key": KEY, "authorization": f"Bearer {TOKEN}"})
    auth_headers(token, provider="openai")
    session_fingerprint([{"role": "user", "content": "hi"}], key)
    resolve_auth("s1", registry=registry, client_credential=key)

    registry.set("s1", key)
    emu = AnthropicEmulator()
    async with emu.client(api_key=OTHER) as sdk:
        assert_clean(credential_of(sdk))
        llm = AnthropicLLMClient(sdk, registry=registry, clock=clock)
        await llm.prompt("", "hello", session_id="s1")
        with pytest.raises(NoCredentials) as info:
            await llm.prompt("", "hello", session_id="s9")
    assert_clean(info.value, llm, registry)

    assert caplog.records
    assert any(r.name == "lore_batch.registry" for r in caplog.records)
    text = caplog.text
    for record in caplog.records:
        text += record.getMessage() + repr(record.args)
    for secret in SECRETS:
        assert secret not in text
