"""extract_auth, auth_headers and credential_of (BATCH.md 7; behaviour 42)."""

from __future__ import annotations

import anthropic
import pytest

from lore_batch.auth import AuthCredential, auth_headers, credential_of, extract_auth
from lore_batch.emulator import AnthropicEmulator
from lore_batch.emulator.auth import extract_credential
from lore_batch.errors import UnsupportedProvider

KEY = "sk-ant-api03-HEADERKEY-0123456789"
TOKEN = "sk-ant-oat01-HEADERTOKEN-0123456789"


def test_a_non_empty_x_api_key_wins_over_authorization() -> None:
    cred = extract_auth({"Authorization": f"Bearer {TOKEN}", "X-Api-Key": KEY})
    assert cred == AuthCredential("api-key", KEY)


def test_an_empty_or_blank_x_api_key_falls_through_to_bearer() -> None:
    for blank in ("", "   "):
        assert extract_auth({"x-api-key": blank, "authorization": f"Bearer {TOKEN}"}) == AuthCredential(
            "bearer", TOKEN
        )


@pytest.mark.parametrize("name", ["authorization", "Authorization", "AUTHORIZATION"])
@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_bearer_matches_case_insensitively(name: str, scheme: str) -> None:
    assert extract_auth({name: f"{scheme} {TOKEN}"}) == AuthCredential("bearer", TOKEN)


def test_bearer_allows_any_whitespace_run_and_surrounding_blanks() -> None:
    assert extract_auth({"authorization": f"  Bearer \t {TOKEN} "}) == AuthCredential("bearer", TOKEN)


@pytest.mark.parametrize(
    "value",
    [
        "Basic dXNlcjpwYXNzd29yZA==",
        f"Bearer {TOKEN} extra",
        "Bearer two words",
        "Bearer",
        "Bearer ",
        f"Bearer{TOKEN}",
        f"Token {TOKEN}",
        TOKEN,
        "",
        "   ",
    ],
)
def test_basic_spaced_and_empty_values_give_none(value: str) -> None:
    assert extract_auth({"Authorization": value}) is None


def test_no_credential_headers_give_none_even_with_a_workspace() -> None:
    assert extract_auth({}) is None
    assert extract_auth({"anthropic-workspace-id": "wrkspc_1", "content-type": "application/json"}) is None


def test_the_workspace_header_sets_the_workspace() -> None:
    key = extract_auth({"X-API-KEY": KEY, "Anthropic-Workspace-Id": " wrkspc_1 "})
    token = extract_auth({"authorization": f"Bearer {TOKEN}", "anthropic-workspace-id": "wrkspc_2"})
    assert key == AuthCredential("api-key", KEY, "wrkspc_1")
    assert token == AuthCredential("bearer", TOKEN, "wrkspc_2")
    assert extract_auth({"x-api-key": KEY, "anthropic-workspace-id": ""}) == AuthCredential("api-key", KEY)


def test_extract_auth_agrees_with_the_emulator_on_scheme_and_value() -> None:
    cases = [
        {"x-api-key": KEY, "authorization": f"Bearer {TOKEN}"},
        {"authorization": f"bearer {TOKEN}"},
        {"authorization": "Basic abc"},
        {"authorization": "Bearer a b"},
        {},
    ]
    for headers in cases:
        ours, theirs = extract_auth(headers), extract_credential(headers)
        if theirs is None:
            assert ours is None
        else:
            assert ours is not None
            assert (ours.scheme, ours.value, ours.fingerprint) == (
                theirs.scheme,
                theirs.value,
                theirs.fingerprint,
            )


def test_auth_headers_for_anthropic_follow_the_scheme() -> None:
    assert auth_headers(AuthCredential("api-key", KEY)) == {"x-api-key": KEY}
    assert auth_headers(AuthCredential("bearer", TOKEN)) == {"authorization": f"Bearer {TOKEN}"}
    assert auth_headers(AuthCredential("api-key", KEY, "wrkspc_1"), provider="anthropic") == {
        "x-api-key": KEY,
        "anthropic-workspace-id": "wrkspc_1",
    }


def test_openai_always_gets_bearer_and_no_workspace() -> None:
    for cred in (AuthCredential("api-key", KEY, "wrkspc_1"), AuthCredential("bearer", TOKEN)):
        assert auth_headers(cred, provider="openai") == {"authorization": f"Bearer {cred.value}"}


def test_auth_headers_round_trip_through_extract_auth() -> None:
    for cred in (
        AuthCredential("api-key", KEY),
        AuthCredential("bearer", TOKEN),
        AuthCredential("api-key", KEY, "wrkspc_1"),
        AuthCredential("bearer", TOKEN, "wrkspc_2"),
    ):
        assert extract_auth(auth_headers(cred)) == cred


def test_an_unknown_provider_is_refused_without_the_secret() -> None:
    with pytest.raises(UnsupportedProvider) as info:
        auth_headers(AuthCredential("api-key", KEY), provider="gemini")
    assert info.value.provider == "gemini"
    assert KEY not in str(info.value)
    assert KEY not in repr(info.value)


async def test_credential_of_reads_the_api_key_and_the_workspace() -> None:
    emu = AnthropicEmulator()
    async with emu.client(api_key=KEY) as client:
        assert credential_of(client) == AuthCredential("api-key", KEY)
    async with emu.client(api_key=KEY, workspace_id="wrkspc_1") as client:
        assert credential_of(client) == AuthCredential("api-key", KEY, "wrkspc_1")


async def test_credential_of_reads_the_auth_token_and_follows_with_options() -> None:
    emu = AnthropicEmulator()
    async with emu.client(auth_token=TOKEN) as client:
        assert credential_of(client) == AuthCredential("bearer", TOKEN)
        copy = client.with_options(api_key=KEY)
        assert credential_of(copy) == AuthCredential("api-key", KEY)
    async with emu.client(api_key=KEY) as client:
        assert credential_of(client.with_options(auth_token=TOKEN)) == AuthCredential("bearer", TOKEN)


async def test_credential_of_a_token_provider_client_is_none() -> None:
    def provider(*, force_refresh: bool = False) -> anthropic.AccessToken:
        return anthropic.AccessToken(token=TOKEN)

    async with anthropic.AsyncAnthropic(credentials=provider, base_url="http://emulator.local") as client:
        assert credential_of(client) is None
