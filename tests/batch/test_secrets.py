"""No secret, and no prompt text, in any repr, log line, exception or request-log row (behaviour 41)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import anthropic
import pytest

from lore_batch import (
    AnthropicLLMClient,
    AuthCredential,
    BatchItemErrored,
    BatchLLMClient,
    NoCredentials,
    RetryPolicy,
)
from lore_batch.costlog import MemoryCostLog
from lore_batch.emulator import AnthropicEmulator

from .conftest import API_KEY, OAUTH_TOKEN, OTHER_KEY, Registry, StepClock, run_until

PROMPT = "PROMPT-TEXT-that-must-not-be-logged"
SECRETS = (API_KEY, OTHER_KEY, OAUTH_TOKEN)


def _clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text
        assert secret[-12:] not in text
    assert PROMPT not in text


async def test_no_secret_or_prompt_leaks_anywhere(
    make_client: Callable[..., BatchLLMClient],
    emu: AnthropicEmulator,
    sdk: anthropic.AsyncAnthropic,
    clock: StepClock,
    cost_log: MemoryCostLog,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="lore_batch")
    registry = Registry(
        {
            "key": AuthCredential("api-key", API_KEY),
            "other": AuthCredential("api-key", OTHER_KEY),
            "oauth": AuthCredential("bearer", OAUTH_TOKEN),
        }
    )
    inner = AnthropicLLMClient(sdk, registry=registry, clock=clock, retry=RetryPolicy(jitter=0.0))
    llm = make_client(inner=inner, registry=registry)
    emu.faults.fail_next("batch_create", 529)
    emu.faults.result_lines(malformed=1, dropped=1)
    replies = await run_until(
        clock,
        asyncio.gather(
            *(llm.prompt(PROMPT, PROMPT, session_id=s) for s in ("key", "other", "oauth", "key", "other"))
        ),
    )
    assert {r.route for r in replies} <= {"batch", "fallback"}
    emu.faults.item_outcomes(errored=1.0, error_type="invalid_request_error")
    with pytest.raises(BatchItemErrored) as errored:
        await run_until(clock, llm.prompt(PROMPT, PROMPT, session_id="key"))
    with pytest.raises(NoCredentials) as missing:
        await llm.prompt(PROMPT, PROMPT, session_id="nobody")
    texts = [
        caplog.text,
        repr(llm),
        repr(llm._engine),
        repr(llm.stats()),
        repr(llm._engine.channels),
        repr(list(registry.sessions.values())),
        str(errored.value),
        repr(errored.value),
        str(missing.value),
        repr(list(cost_log.entries)),
        repr(emu.requests),
    ]
    for text in texts:
        _clean(text)
