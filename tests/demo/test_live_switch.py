"""``--live``: which client the demo builds (never sent anything here: there is no network in tests)."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest

from lore_batch.clock import SystemClock
from lore_batch.replay import backend as backends
from lore_batch.replay.backend import Backend, build_backend, emulator_backend
from lore_batch.replay.stepping import SteppingClock
from lore_core.cli import main
from lore_core.errors import ConfigError

KEY = "sk-ant-api03-live-test-key-not-real"


@pytest.fixture(autouse=True)
def no_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)


async def test_live_with_a_key_builds_the_real_sdk_client_on_the_system_clock() -> None:
    backend = build_backend(live=True, env={"ANTHROPIC_API_KEY": KEY})
    try:
        assert backend.kind == "anthropic"
        assert type(backend.client) is anthropic.AsyncAnthropic
        assert backend.client.api_key == KEY
        assert backend.client.base_url.host == "api.anthropic.com"
        assert isinstance(backend.clock, SystemClock)
        assert backend.emulator is None
        assert backend.wait_for_workers is False  # live workers run alongside the session
        assert backend.strip_thinking is True
    finally:
        await backend.aclose()


async def test_without_live_the_emulator_is_used_even_with_a_key() -> None:
    backend = build_backend(live=False, env={"ANTHROPIC_API_KEY": KEY})
    try:
        assert backend.kind == "emulator"
        assert backend.emulator is not None
        assert isinstance(backend.clock, SteppingClock)
        assert backend.wait_for_workers is True
    finally:
        await backend.aclose()


def test_live_without_a_key_is_refused() -> None:
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
        build_backend(live=True, env={})


def test_the_cli_refuses_live_without_a_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    assert main(["demo", "--live", "--turns", "1"]) == 1
    assert "ANTHROPIC_API_KEY" in capsys.readouterr().err


def test_the_cli_hands_the_environment_key_to_the_live_backend(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The real backend is replaced by the emulator dressed as the live one, to follow the switch end to end.
    seen: list[str] = []

    def fake_live(api_key: str) -> Backend:
        seen.append(api_key)
        offline = emulator_backend(seed=0, start=1_795_000_000.0)
        return Backend(
            kind="anthropic", client=offline.client, clock=offline.clock, emulator=offline.emulator
        )

    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setattr(backends, "live_backend", fake_live)
    assert main(["demo", "--live", "--turns", "1", "--json"]) == 0
    captured = capsys.readouterr()
    report: dict[str, Any] = json.loads(captured.out)
    assert seen == [KEY]
    assert report["backend"] == "anthropic"
    assert "billed" in captured.err  # the warning that live calls cost money
