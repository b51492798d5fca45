"""``lore demo`` through ``main(argv)``: a generated session through lore-memory on the emulator."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from lore_core.cli import main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def demo_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert main(["demo", *argv, "--json"]) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def test_the_demo_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--turns", "3"]) == 0
    out = capsys.readouterr().out
    assert "lore demo" in out
    assert "3 human turns" in out
    for label in (
        "layers used",
        "lore-memory",
        "full history",
        "compaction at 80%",
        "tokens sent",
        "cache reads",
        "cache writes",
        "agent calls cost",
        "worker calls cost",
        "worker calls by route",
        "batch savings",
        "retention mean",
    ):
        assert label in out, label


def test_the_json_report_holds_every_figure_of_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    data = demo_json(capsys, "--turns", "4", "--seed", "2")
    assert data["backend"] == "emulator"
    assert data["human_turns"] == 4
    calls = len(data["turns"])
    assert calls > 4  # several model calls per request: the tool chains
    assert sum(data["layers"].values()) == calls
    assert [p["name"] for p in (data["lore"], *data["baselines"])] == [
        "lore",
        "full_history",
        "compaction_80",
    ]
    for policy in (data["lore"], *data["baselines"]):
        assert len(policy["per_turn_tokens"]) == len(policy["per_turn_cost_usd"]) == calls
        assert policy["cache_read_tokens"] > 0  # the prompt cache works for everyone
    # the agent's calls really went to the emulator's Messages API
    assert data["agent_usage"]["calls"] == calls
    workers = data["workers"]
    assert sum(route["calls"] for route in workers["routes"]) > 0
    routes = {route["route"]: route for route in workers["routes"]}
    assert {"sync", "batch", "fallback"} <= set(routes)  # every route is listed, used or not
    assert routes["batch"]["calls"] >= 1
    assert Decimal(routes["batch"]["cost_usd"]) * 2 == Decimal(routes["batch"]["sync_cost_usd"])
    assert Decimal(workers["batch_savings_usd"]) > 0
    assert workers["cost_usd"] == workers["logged_cost_usd"]
    assert workers["batches_submitted"] >= 1
    rows = [row for row in data["distillations"] if row["generation"] == 0]
    assert rows
    assert all(row["retention"] is not None for row in rows)
    assert 0 < data["summary"]["retention_mean"] <= 1
    assert Decimal(data["summary"]["lore_total_cost_usd"]) > 0


def test_the_demo_is_reproducible(capsys: pytest.CaptureFixture[str]) -> None:
    first = demo_json(capsys, "--turns", "3", "--seed", "5")
    second = demo_json(capsys, "--turns", "3", "--seed", "5")
    assert first == second
    other = demo_json(capsys, "--turns", "3", "--seed", "6")
    assert other["summary"] != first["summary"]


def test_plot_writes_a_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "demo.png"
    data = demo_json(capsys, "--turns", "2", "--plot", str(png))
    assert data["plot"] == str(png)
    content = png.read_bytes()
    assert content.startswith(PNG_SIGNATURE)
    assert len(content) > 20_000


def test_a_long_enough_session_goes_past_layer_0(capsys: pytest.CaptureFixture[str]) -> None:
    # a small window makes the history overflow within a few requests
    data = demo_json(capsys, "--turns", "6", "--context-window", "40000")
    assert max(int(layer) for layer in data["layers"]) >= 1
    assert data["baselines"][0]["compactions"] >= 1
    assert data["lore"]["max_request_tokens"] < 40_000


@pytest.mark.parametrize("argv", [["--turns", "0"], ["--turns", "x"], ["--context-window", "-1"]])
def test_bad_options_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", *argv]) == 2
    assert "usage" in capsys.readouterr().err
