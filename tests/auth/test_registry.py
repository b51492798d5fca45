"""CredentialRegistry and resolve_auth (BATCH.md 7; behaviours 44 and 45)."""

from __future__ import annotations

import logging

import pytest

from lore_batch import AnthropicLLMClient, CredentialRegistry, resolve_auth
from lore_batch.auth import AuthCredential, CredentialResolver, credential_of
from lore_batch.clock import ManualClock
from lore_batch.emulator import AnthropicEmulator
from lore_batch.errors import NoCredentials
from lore_core.errors import ConfigError

A = AuthCredential("api-key", "sk-ant-api03-TENANT-A-0123456789")
B = AuthCredential("api-key", "sk-ant-api03-TENANT-B-0123456789")
C = AuthCredential("bearer", "sk-ant-oat01-TENANT-C-0123456789")
DEFAULT = AuthCredential("api-key", "sk-ant-api03-DEFAULT-0123456789")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def make(
    clock: ManualClock,
    *,
    max_sessions: int = 10_000,
    idle_ttl: float = 86_400.0,
    default: AuthCredential | None = None,
) -> CredentialRegistry:
    return CredentialRegistry(max_sessions=max_sessions, idle_ttl=idle_ttl, default=default, clock=clock)


# --- resolve_auth (behaviour 44) -----------------------------------------------------------------------------


def test_the_session_entry_wins_over_the_default(clock: ManualClock) -> None:
    registry = make(clock, default=DEFAULT)
    registry.set("s1", A)
    assert registry.resolve_auth("s1") == A


def test_an_unknown_session_gets_the_configured_default(clock: ManualClock) -> None:
    registry = make(clock, default=DEFAULT)
    registry.set("s1", A)
    assert registry.resolve_auth("s2") is DEFAULT
    assert registry.resolve_auth(None) is DEFAULT


def test_without_a_default_an_unknown_session_gets_none_never_another_sessions(clock: ManualClock) -> None:
    registry = make(clock)
    registry.set("s1", A)
    registry.set("s2", B)
    assert registry.resolve_auth("s1") == A  # s1 is now the last one seen
    assert registry.resolve_auth("s3") is None
    assert registry.resolve_auth(None) is None
    assert registry.resolve_auth("") is None


def test_set_default_configures_and_removes_the_default(clock: ManualClock) -> None:
    registry = make(clock)
    registry.set("s1", A)
    registry.set_default(DEFAULT)
    assert registry.resolve_auth("s2") is DEFAULT
    assert registry.default is DEFAULT
    registry.set_default(None)
    assert registry.resolve_auth(None) is None
    assert registry.resolve_auth("s2") is None
    assert registry.resolve_auth("s1") == A


def test_an_expired_or_deleted_session_falls_back_only_to_the_default(clock: ManualClock) -> None:
    registry = make(clock, idle_ttl=60)
    registry.set("s1", A)
    registry.set("s2", B)
    assert registry.delete("s1") is True
    assert registry.delete("s1") is False
    assert registry.resolve_auth("s1") is None
    registry.set_default(DEFAULT)
    clock.advance(60)
    assert registry.resolve_auth("s2") is DEFAULT


def test_set_replaces_a_sessions_credential(clock: ManualClock) -> None:
    registry = make(clock)
    registry.set("s1", A)
    registry.set("s1", C)
    assert registry.resolve_auth("s1") == C
    assert len(registry) == 1
    assert registry.fingerprints() == {C.fingerprint}


def test_the_registry_is_a_credential_resolver(clock: ManualClock) -> None:
    assert isinstance(make(clock), CredentialResolver)


def test_module_resolve_auth_single_tenant_uses_the_clients_credential(clock: ManualClock) -> None:
    assert resolve_auth("s1", registry=None, client_credential=A) == A
    assert resolve_auth(None, registry=None, client_credential=A) == A
    assert resolve_auth("s1", registry=None) is None


def test_module_resolve_auth_with_a_registry_never_uses_the_clients_credential(clock: ManualClock) -> None:
    registry = make(clock)
    registry.set("s1", A)
    assert resolve_auth("s1", registry=registry, client_credential=B) == A
    assert resolve_auth("s2", registry=registry, client_credential=B) is None
    assert resolve_auth(None, registry=registry, client_credential=B) is None
    registry.set_default(DEFAULT)
    assert resolve_auth("s2", registry=registry, client_credential=B) is DEFAULT


async def test_resolve_auth_with_a_real_client_and_the_emulator(clock: ManualClock) -> None:
    emu = AnthropicEmulator()
    registry = make(clock)
    registry.set("s1", A)
    registry.set("s2", C)
    async with emu.client(api_key=DEFAULT.value) as sdk:
        assert resolve_auth("s9", registry=None, client_credential=credential_of(sdk)) == DEFAULT
        llm = AnthropicLLMClient(sdk, registry=registry, clock=clock)
        await llm.prompt("", "one", session_id="s1")
        await llm.prompt("", "two", session_id="s2")
        with pytest.raises(NoCredentials):
            await llm.prompt("", "three", session_id="s3")
    # The SDK sends both kinds as Authorization: Bearer, so compare the values received, not header names.
    received = [r.credential_fp for r in emu.requests]
    assert received == [
        AuthCredential("bearer", A.value).fingerprint,
        AuthCredential("bearer", C.value).fingerprint,
    ]


# --- bounds (behaviour 45) -----------------------------------------------------------------------------------


def test_lru_eviction_at_the_size_limit(clock: ManualClock) -> None:
    registry = make(clock, max_sessions=2)
    registry.set("s1", A)
    registry.set("s2", B)
    assert registry.resolve_auth("s1") == A  # s2 is now the least recently used
    registry.set("s3", C)
    assert len(registry) == 2
    assert registry.get("s2") is None
    assert registry.resolve_auth("s2") is None
    assert registry.get("s1") == A
    assert registry.get("s3") == C
    assert registry.fingerprints() == {A.fingerprint, C.fingerprint}


def test_get_is_a_look_that_does_not_count_as_use(clock: ManualClock) -> None:
    registry = make(clock, max_sessions=2, idle_ttl=60)
    registry.set("s1", A)
    registry.set("s2", B)
    assert registry.get("s1") == A  # no LRU move: s1 stays the oldest
    registry.set("s3", C)
    assert registry.get("s1") is None
    clock.advance(59)
    assert registry.get("s2") == B  # no idle refresh either
    clock.advance(1)
    assert registry.get("s2") is None


def test_the_default_does_not_count_toward_the_limit(clock: ManualClock) -> None:
    registry = make(clock, max_sessions=1, default=DEFAULT)
    registry.set("s1", A)
    assert len(registry) == 1
    assert registry.fingerprints() == {A.fingerprint, DEFAULT.fingerprint}
    registry.set("s2", B)
    assert registry.get("s1") is None
    assert registry.resolve_auth("s1") is DEFAULT


def test_idle_entries_expire_after_idle_ttl_seconds(clock: ManualClock) -> None:
    registry = make(clock, idle_ttl=100)
    registry.set("s1", A)
    registry.set("s2", B)
    clock.advance(99.5)
    assert registry.resolve_auth("s1") == A  # use restarts s1's idle clock
    assert len(registry) == 2
    clock.advance(0.5)  # s2 has now been idle exactly idle_ttl seconds
    assert registry.resolve_auth("s2") is None
    assert registry.get("s1") == A
    assert len(registry) == 1
    clock.advance(99)  # s1 was last used at 99.5: 99 seconds idle
    assert registry.fingerprints() == {A.fingerprint}
    clock.advance(1)
    assert registry.fingerprints() == set()
    assert len(registry) == 0


def test_set_restarts_the_idle_clock(clock: ManualClock) -> None:
    registry = make(clock, idle_ttl=10)
    registry.set("s1", A)
    clock.advance(9)
    registry.set("s1", A)
    clock.advance(9)
    assert registry.resolve_auth("s1") == A


def test_the_default_never_expires(clock: ManualClock) -> None:
    registry = make(clock, idle_ttl=1, default=DEFAULT)
    clock.advance(10_000)
    assert registry.resolve_auth(None) is DEFAULT
    assert registry.fingerprints() == {DEFAULT.fingerprint}


def test_defaults_are_ten_thousand_sessions_and_a_day() -> None:
    registry = CredentialRegistry()
    assert (registry.max_sessions, registry.idle_ttl, registry.default) == (10_000, 86_400.0, None)


def test_many_sessions_stay_within_the_limit(clock: ManualClock) -> None:
    registry = make(clock, max_sessions=100)
    creds = [AuthCredential("api-key", f"sk-ant-api03-BULK-{i:04d}") for i in range(250)]
    for i, cred in enumerate(creds):
        registry.set(f"s{i}", cred)
    assert len(registry) == 100
    assert registry.get("s149") is None
    assert registry.get("s150") == creds[150]
    assert registry.fingerprints() == {c.fingerprint for c in creds[150:]}


@pytest.mark.parametrize("max_sessions", [0, -1, 1.5, True])
def test_a_bad_size_limit_is_a_config_error(max_sessions: int) -> None:
    with pytest.raises(ConfigError):
        CredentialRegistry(max_sessions=max_sessions)


@pytest.mark.parametrize("idle_ttl", [0, -1.0, float("inf"), float("nan")])
def test_a_bad_idle_ttl_is_a_config_error(idle_ttl: float) -> None:
    with pytest.raises(ConfigError):
        CredentialRegistry(idle_ttl=idle_ttl)


def test_an_empty_session_id_is_a_config_error(clock: ManualClock) -> None:
    registry = make(clock)
    with pytest.raises(ConfigError):
        registry.set("", A)
    assert len(registry) == 0


# --- the on-register event -----------------------------------------------------------------------------------


def test_callbacks_get_the_fingerprint_on_every_set(clock: ManualClock) -> None:
    registry = make(clock)
    first: list[str] = []
    second: list[str] = []
    registry.on_register(first.append)
    registry.on_register(second.append)
    registry.set("s1", A)
    registry.set("s2", C)
    registry.set("s1", A)
    assert first == [A.fingerprint, C.fingerprint, A.fingerprint]
    assert second == first


def test_set_default_fires_no_callback(clock: ManualClock) -> None:
    registry = make(clock)
    seen: list[str] = []
    registry.on_register(seen.append)
    registry.set_default(DEFAULT)
    assert seen == []


def test_the_returned_function_unregisters(clock: ManualClock) -> None:
    registry = make(clock)
    seen: list[str] = []
    remove = registry.on_register(seen.append)
    registry.set("s1", A)
    remove()
    remove()  # a second call is harmless
    registry.set("s2", B)
    assert seen == [A.fingerprint]


def test_a_raising_callback_is_logged_and_breaks_nothing(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    registry = make(clock)
    seen: list[str] = []

    def broken(fp: str) -> None:
        raise RuntimeError(f"durable store down for {fp}")

    registry.on_register(broken)
    registry.on_register(seen.append)
    registry.set("s1", A)
    assert registry.resolve_auth("s1") == A
    assert seen == [A.fingerprint]
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failures) == 1
    assert failures[0].name == "lore_batch.registry"
    assert A.fingerprint in failures[0].getMessage()
    assert "broken" in failures[0].getMessage()
    assert failures[0].exc_info is not None
    assert A.value not in caplog.text
