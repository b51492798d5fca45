"""No secret, prompt or reply text in our errors, reprs or logs."""

from __future__ import annotations

import logging
from collections.abc import Callable

import anthropic
import pytest

from lore_batch.auth import AuthCredential
from lore_batch.clock import ManualClock
from lore_batch.emulator import AnthropicEmulator
from lore_batch.errors import NoCredentials
from lore_batch.sync_client import AnthropicLLMClient
from lore_core.errors import LLMError

from .conftest import API_KEY

MakeLLM = Callable[..., AnthropicLLMClient]
SESSION_KEY = "sk-ant-api03-SESSIONKEY-must-not-leak"
SYSTEM = "SYSTEM-CANARY instructions"
USER = "USER-CANARY question"
FORBIDDEN = (API_KEY, SESSION_KEY, "SYSTEM-CANARY", "USER-CANARY", "Echo:")


class OneSession:
    def resolve_auth(self, session_id: str | None) -> AuthCredential | None:
        return AuthCredential("api-key", SESSION_KEY) if session_id == "s1" else None


def assert_clean(text: str) -> None:
    for secret in FORBIDDEN:
        assert secret not in text


async def test_errors_reprs_and_logs_carry_ids_only(
    make_llm: MakeLLM, emu: AnthropicEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="lore_batch")
    llm = make_llm(registry=OneSession())
    assert_clean(repr(llm))
    await llm.prompt(SYSTEM, USER, session_id="s1", worker="distill")
    assert [r.status for r in emu.requests] == [200]

    failures: list[BaseException] = []
    for status in (400, 401, 403, 429, 500, 529):
        emu.faults.fail_next("messages", status, count=3 if status >= 429 else 1)
        with pytest.raises(LLMError) as info:
            await llm.prompt(SYSTEM, USER, session_id="s1", worker="distill", urgent=True)
        failures.append(info.value)
    emu.faults.drop_connection("messages", count=3)
    with pytest.raises(LLMError) as info:
        await llm.prompt(SYSTEM, USER, session_id="s1", urgent=True)
    failures.append(info.value)
    with pytest.raises(NoCredentials) as missing:
        await llm.prompt(SYSTEM, USER, session_id="s2")
    failures.append(missing.value)

    for err in failures:
        assert_clean(str(err))
        assert_clean(repr(err))
        assert_clean(repr(vars(err)))
    assert_clean(repr(llm))
    assert_clean(repr(llm.breaker))

    ours = [r for r in caplog.records if r.name.startswith("lore_batch")]
    assert ours, "expected our retry logs"
    for record in ours:
        assert_clean(record.getMessage())
    assert any("session=s1" in r.getMessage() and "worker=distill" in r.getMessage() for r in ours)
    assert any("request_id=req_" in r.getMessage() for r in ours)


async def test_the_api_key_never_reaches_any_log(
    emu: AnthropicEmulator, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, the SDK's and httpx2's included
    async with emu.client(api_key=API_KEY) as client:
        llm = AnthropicLLMClient(client, clock=clock)
        emu.faults.fail_next("messages", 401)
        with pytest.raises(LLMError):
            await llm.prompt("", "x")
        await llm.prompt("", "x")
    assert caplog.records
    for record in caplog.records:
        assert API_KEY not in record.getMessage()


def test_the_base_client_is_not_modified(sdk: anthropic.AsyncAnthropic) -> None:
    before = sdk.max_retries
    AnthropicLLMClient(sdk)
    assert sdk.max_retries == before
