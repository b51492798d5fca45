"""``LoreAnthropic``: one changed line, and every call goes through the session."""

from __future__ import annotations

from typing import Any

import pytest
from anthropic.types import Message

from lore_core import ConfigError
from lore_core.wrapper import LoreAnthropic

from .conftest import Rig


async def test_create_transforms_calls_and_records(rig: Rig) -> None:
    async with rig.emulator.client(api_key="sk-ant-app") as raw:
        client = LoreAnthropic(raw, lore=rig.lore)
        history: list[dict[str, Any]] = [{"role": "user", "content": "Summarise src/app.py"}]
        reply = await client.messages.create(
            session_id="w1", model="claude-sonnet-4-6", max_tokens=256, system="Be terse.", messages=history
        )
        assert isinstance(reply, Message)
        session = rig.lore.session("w1", model="claude-sonnet-4-6")
        view = session.inspect()
        assert view is not None
        assert view.calibrated is True
        assert view.last_stop_reason == "end_turn"
        # the reply was stored at once, before the next turn
        assert await rig.lore.store.count_messages("w1") == 2
        # the usual agent loop appends the SDK's content objects as they are
        history += [
            {"role": "assistant", "content": reply.content},
            {"role": "user", "content": "And tests?"},
        ]
        second = await client.messages.create(
            session_id="w1", model="claude-sonnet-4-6", max_tokens=256, system="Be terse.", messages=history
        )
        assert isinstance(second, Message)
        # the reply stored by record_usage and the one the caller sent back are the same row
        assert await rig.lore.store.count_messages("w1") == 4
        # other attributes pass through
        counted = await client.messages.count_tokens(model="claude-sonnet-4-6", messages=history[:1])
        assert counted.input_tokens > 0
        requests = [r for r in rig.emulator.requests if r.endpoint == "messages"]
        assert len(requests) == 2


async def test_streaming_is_refused_before_any_call(rig: Rig) -> None:
    async with rig.emulator.client() as raw:
        client = LoreAnthropic(raw, lore=rig.lore)
        with pytest.raises(ConfigError):
            await client.messages.create(
                session_id="w1",
                model="claude-sonnet-4-6",
                max_tokens=10,
                messages=[{"role": "user", "content": "hi"}],
                stream=True,
            )
    assert rig.emulator.requests == []
