"""``lore replay FILE`` through ``main(argv)``: the shared real session, a Claude Code file, errors."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from lore_core.cli import main

from .test_formats import CLAUDE_CODE, write_jsonl

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def replay_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert main(["replay", *argv, "--json"]) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def test_the_shared_session_reports_lore_and_both_baselines_reproducibly(
    shared_session_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = replay_json(capsys, str(shared_session_path))
    second = replay_json(capsys, str(shared_session_path))
    assert first == second  # seeded, simulated time: the same numbers twice

    assert first["format"] == "shared"
    assert first["backend"] == "emulator"
    assert len(first["turns"]) == 301  # one per assistant message of the merged transcript
    summary = first["summary"]
    lore = Decimal(summary["lore_total_cost_usd"])
    full = Decimal(summary["full_history_cost_usd"])
    compacting = Decimal(summary["compaction_80_cost_usd"])
    assert lore > 0
    assert full > 0
    assert compacting > 0
    assert lore == Decimal(summary["lore_cost_usd"]) + Decimal(summary["worker_cost_usd"])
    assert summary["ratio_vs_full_history"] == pytest.approx(float(lore / full))
    assert [b["name"] for b in first["baselines"]] == ["full_history", "compaction_80"]
    # the 113K-token session fits the 200K window: neither baseline compacts, and lore-memory sends less
    assert all(b["compactions"] == 0 for b in first["baselines"])
    assert summary["lore_tokens_sent"] < summary["full_history_tokens_sent"]
    # the workers ran, through batches at half price, and every distillation was scored
    workers = first["workers"]
    assert workers["by_worker"]["distill"] >= 1
    calls = {route["route"]: route["calls"] for route in workers["routes"]}
    assert calls["batch"] >= 1
    assert calls["sync"] == calls["fallback"] == 0  # nothing urgent, nothing late
    assert Decimal(workers["batch_savings_usd"]) == Decimal(workers["cost_usd"])
    assert workers["cost_usd"] == workers["logged_cost_usd"]  # our pricing agrees with the request log
    assert summary["retention_mean"] is not None
    assert set(first["layers"]) <= {"0", "1", "2", "3", "4"}


def test_a_small_window_makes_the_baselines_compact_and_lore_compress(
    shared_session_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = replay_json(capsys, str(shared_session_path), "--context-window", "60000", "--max-turns", "150")
    assert len(data["turns"]) == 150
    full, early = data["baselines"]
    assert full["compactions"] >= 1
    assert early["compactions"] >= full["compactions"]
    assert full["max_request_tokens"] <= 60_000
    assert max(int(layer) for layer in data["layers"]) >= 1
    assert max(turn["tokens_sent"] for turn in data["turns"]) < 60_000


def test_a_claude_code_file_replays_with_a_table_and_a_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    session = write_jsonl(tmp_path / "session.jsonl", CLAUDE_CODE)
    png = tmp_path / "replay.png"
    assert main(["replay", str(session), "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "lore replay (claude-code)" in out
    for label in ("lore-memory", "full history", "compaction at 80%", "worker calls", "layers used"):
        assert label in out
    data = png.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 10_000


def test_an_unreadable_file_fails_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    assert main(["replay", str(bad)]) == 1
    assert "not a transcript" in capsys.readouterr().err


def test_an_unknown_model_fails_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    session = write_jsonl(tmp_path / "session.jsonl", CLAUDE_CODE)
    assert main(["replay", str(session), "--model", "claude-nonesuch-9"]) == 1
    assert "price catalog" in capsys.readouterr().err
