"""The CLI through ``main(argv)``, as a user runs it."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import anthropic
import pytest

from lore_core.cli import main


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage" in capsys.readouterr().err.lower()


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["no-such-command"]) == 2
    assert "invalid choice" in capsys.readouterr().err


# `lore demo` and `lore replay`: tests/demo and tests/replay.


def test_db_upgrade_migrates_a_fresh_sqlite_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lore_core.store import head_revision

    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    assert main(["db", "upgrade", "--url", url]) == 0
    assert head_revision() in capsys.readouterr().out
    # a second run is a no-op and still succeeds
    assert main(["db", "upgrade", "--url", url]) == 0


def test_db_upgrade_reads_lore_db_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db_file = tmp_path / "from-env.db"
    monkeypatch.setenv("LORE_DB_URL", f"sqlite+aiosqlite:///{db_file}")
    assert main(["db", "upgrade"]) == 0
    assert db_file.exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.wire
async def test_lore_emulator_serves_the_sdk_on_loopback() -> None:
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lore_core.cli",
        "emulator",
        "--port",
        str(port),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        for _ in range(200):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
            else:
                writer.close()
                await writer.wait_closed()
                break
        else:
            pytest.fail("lore emulator did not start listening")
        async with anthropic.AsyncAnthropic(
            api_key="sk-ant-cli-test", base_url=f"http://127.0.0.1:{port}", max_retries=0
        ) as client:
            message = await client.messages.create(
                model="claude-sonnet-4-6",
                max_tokens=64,
                messages=[{"role": "user", "content": "ping"}],
            )
        assert message.role == "assistant"
        assert message.content
    finally:
        proc.terminate()
        output, _ = await asyncio.wait_for(proc.communicate(), timeout=10)
    assert b"serving on http://127.0.0.1" in output
