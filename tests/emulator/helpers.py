"""Builders shared by the emulator tests."""

from __future__ import annotations

from typing import Any

import httpx2

from lore_batch.emulator import AnthropicEmulator

MODEL = "claude-sonnet-4-6"
VERSION = "2023-06-01"
KEY = "sk-ant-test"


def params(text: str = "hello", **overrides: Any) -> dict[str, Any]:
    """Valid Messages params with one user message."""
    base: dict[str, Any] = {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": text}]}
    base.update(overrides)
    return base


def batch_requests(count: int, *, prefix: str = "req", **overrides: Any) -> list[dict[str, Any]]:
    """``count`` valid batch requests with custom_ids ``{prefix}-{i}``."""
    return [
        {"custom_id": f"{prefix}-{i}", "params": params(f"question {i}", **overrides)} for i in range(count)
    ]


def raw_client(emu: AnthropicEmulator) -> httpx2.AsyncClient:
    """A plain httpx2 client on the emulator, for what the SDK will not send (bad headers, odd bodies)."""
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=emu.app), base_url="http://emulator.local")


def auth(key: str = KEY, **extra: str) -> dict[str, str]:
    """``Authorization: Bearer`` (as the SDK sends an API key) and ``anthropic-version`` headers."""
    return {"authorization": f"Bearer {key}", "anthropic-version": VERSION, **extra}
