"""``lore advise`` on JSONL and CSV imports and on the request-log table (SQLite and PostgreSQL): the same
answer from each, worked by hand; exit codes 0, 1 and 2; the stale-catalog warning; never a migration.

Prices come from ``catalog.toml`` (invented, USD per million tokens): claude-test 2 / 10 (write 5m 2.5,
read 0.2; batch all halves) until 2025-06-01, then every price halved; gpt-test 1 / 4 with batch input and
output only (0.5 / 2); gpt-nobatch without batch prices; gem-test 1 / 8 (batch 0.5 / 4, batch read 0.05), and
over 200,000 prompt tokens 2 / 12 (read 0.2; batch 1 / 6, batch read 0.1).
"""

from __future__ import annotations

import asyncio
import csv
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from lore_batch.costlog import RequestLogEntry, SqlCostLog
from lore_batch.segments import IMPORT_COLUMNS
from lore_core.cli import main
from lore_core.store import upgrade

CATALOG = str(Path(__file__).with_name("catalog.toml"))
M = 1_000_000

# (ts, provider, model, tag, input, output, cache read, cache write, cost_usd or None = price it)
Row = tuple[str, str, str, str | None, int, int, int, int, str | None]
ROWS: list[Row] = [
    # 1. sync 1M × 2 + 100k × 10 = $3.00 (priced: before the cut); batch 1M × 1 + 100k × 5 = $1.50
    ("2025-03-01T10:00:00+00:00", "anthropic", "claude-test-20250101", "nightly", M, 100_000, 0, 0, None),
    # 2. given $2.60; after the cut, batch 1M × 0.5 + 100k × 2.5 + 1M read × 0.05 + 500k write × 1 (1h)
    #    = 0.5 + 0.25 + 0.05 + 0.5 = $1.30
    ("2025-07-01T10:00:00+00:00", "anthropic", "claude-test", "Nightly", M, 100_000, M, 500_000, "2.6"),
    # 3. sync 2M × 1 + 500k × 4 = $4.00; batch 2M × 0.5 + 500k × 2 = $2.00
    ("2025-03-02T10:00:00+00:00", "openai", "gpt-test", "bulk", 2 * M, 500_000, 0, 0, None),
    # 4. $1.25; same provider, model, tag and price as row 3, so one segment with it. That segment now has
    #    cache reads, and gpt-test has no batch cache-read price: all of it (rows 3 and 4, $5.25) is skipped
    ("2025-03-03T10:00:00+00:00", "openai", "gpt-test", "bulk", M, 0, M, 0, "1.25"),
    # 5. no batch prices: skipped (no_batch_rate); sync 1M × 1 = $1.00
    ("2025-03-04T10:00:00+00:00", "openai", "gpt-nobatch", "background", M, 0, 0, 0, None),
    # 6. prompt 150k + 100k read = 250k > 200k: the band. sync 150k × 2 + 10k × 12 + 100k × 0.2
    #    = 0.30 + 0.12 + 0.02 = $0.44; batch 150k × 1 + 10k × 6 + 100k × 0.1 = 0.15 + 0.06 + 0.01 = $0.22
    ("2025-03-05T10:00:00+00:00", "google", "gem-test", "async", 150_000, 10_000, 100_000, 0, None),
    # 7. not an eligible tag: skipped, $2
    ("2025-03-06T10:00:00+00:00", "anthropic", "claude-test", "interactive", M, 0, 0, 0, "2"),
    # 8. untagged: skipped; sync 500k × 2 = $1.00
    ("2025-03-07T10:00:00+00:00", "anthropic", "claude-test", None, 500_000, 0, 0, 0, None),
    # 9. a model the catalog does not know: skipped (unpriced), $0.50
    ("2025-03-08T10:00:00+00:00", "acme", "unknown-model", "nightly", 1000, 0, 0, 0, "0.5"),
]
# total spend 3 + 2.6 + 4 + 1.25 + 1 + 0.44 + 2 + 1 + 0.5 = $15.79
EXPECTED: dict[str, Any] = {
    "total_spend_usd": "15.790000000",
    "catalog_max_effective_at": "2025-06-01T00:00:00+00:00",
    "findings": [
        # nightly: eligible 3 + 2.6 = 5.6, batch 1.5 + 1.3 = 2.8; share 5.6 / 15.79 = 35.465 %
        ("nightly", 2, "5.600000000", "2.800000000", "2.800000000", "50.00", "35.47"),
        # async: 0.44 → 0.22; share 0.44 / 15.79 = 2.787 %
        ("async", 1, "0.440000000", "0.220000000", "0.220000000", "50.00", "2.79"),
    ],
    "skipped": [  # by spend, then provider, model, tag
        ("openai", "gpt-test", "bulk", "no_batch_cache_rate", 2, "5.250000000"),
        ("anthropic", "claude-test", "interactive", "not_eligible", 1, "2.000000000"),
        ("anthropic", "claude-test", None, "untagged", 1, "1.000000000"),
        ("openai", "gpt-nobatch", "background", "no_batch_rate", 1, "1.000000000"),
        ("acme", "unknown-model", "nightly", "unpriced", 1, "0.500000000"),
    ],
}
FINDING_KEYS = (
    "tag",
    "request_count",
    "eligible_spend_usd",
    "projected_batch_cost_usd",
    "projected_savings_usd",
    "discount_pct",
    "share_of_spend_pct",
)
SKIPPED_KEYS = ("provider", "model", "tag", "reason", "request_count", "spend_usd")


def write_jsonl(path: Path, rows: list[Row] = ROWS) -> Path:
    with path.open("w") as fh:
        for ts, provider, model, tag, inp, out, read, write, cost in rows:
            record: dict[str, Any] = {"ts": ts, "provider": provider, "model": model, "tag": tag}
            record |= {"input_tokens": inp, "output_tokens": out, "cache_read_tokens": read}
            record["cache_write_tokens"] = write
            if cost is not None:
                record["cost_usd"] = json.loads(cost)  # a JSON number, read back exactly as a Decimal
            fh.write(json.dumps(record) + "\n\n")  # blank lines are skipped
    return path


def write_csv(path: Path, rows: list[Row] = ROWS) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(IMPORT_COLUMNS)
        for row in rows:
            writer.writerow(["" if value is None else value for value in row])
    return path


async def fill_log(url: str, rows: list[Row] = ROWS) -> None:
    async with SqlCostLog(url) as log:
        for number, (ts, provider, model, tag, inp, out, read, write, cost) in enumerate(rows):
            await log.record(
                RequestLogEntry(
                    id=f"req-{number:03d}",
                    ts=datetime.fromisoformat(ts),
                    provider=provider,
                    model=model,
                    route="sync",
                    status="ok",
                    tag=tag,
                    input_tokens=inp,
                    output_tokens=out,
                    cache_read_tokens=read,
                    cache_write_5m_tokens=write,
                    cost_usd=None if cost is None else Decimal(cost),
                )
            )


@pytest.fixture
async def log_url(migrated_url: str) -> str:
    await fill_log(migrated_url)
    return migrated_url


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["advise", "--catalog", CATALOG, "--json", *args]) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def as_tuples(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "total_spend_usd": data["total_spend_usd"],
        "catalog_max_effective_at": data["catalog_max_effective_at"],
        "findings": [tuple(f[key] for key in FINDING_KEYS) for f in data["findings"]],
        "skipped": [tuple(s[key] for key in SKIPPED_KEYS) for s in data["skipped"]],
    }


def test_jsonl_and_csv_imports_give_the_hand_worked_answer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from_jsonl = run_json(capsys, "--import", str(write_jsonl(tmp_path / "log.jsonl")))
    from_csv = run_json(capsys, "--import", str(write_csv(tmp_path / "log.csv")))
    assert as_tuples(from_jsonl) == EXPECTED
    assert from_csv == from_jsonl
    assert from_jsonl["findings"][0]["summary"] == (
        "nightly: 35.47% of spend, save $2.8000 (50.00% off) over 2 requests"
    )


def test_the_request_log_table_gives_the_same_answer(
    log_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from_db = run_json(capsys, "--db", log_url)
    assert as_tuples(from_db) == EXPECTED
    assert from_db == run_json(capsys, "--import", str(write_csv(tmp_path / "log.csv")))


UNPRICED_ROWS: list[Row] = [
    # costs missing on both sides of claude-test's price cut, and on both sides of gem-test's 200k band:
    # each is priced at its own row. untagged: 500k × 2 = $1.00, then 500k × 1 = $0.50
    ("2025-03-07T10:00:00+00:00", "anthropic", "claude-test", None, 500_000, 0, 0, 0, None),
    ("2025-07-07T10:00:00+00:00", "anthropic", "claude-test", None, 500_000, 0, 0, 0, None),
    # async: 100k × 1 = $0.10 (batch 100k × 0.5 = $0.05); 300k × 2 = $0.60 (batch 300k × 1 = $0.30)
    ("2025-03-05T10:00:00+00:00", "google", "gem-test", "async", 100_000, 0, 0, 0, None),
    ("2025-03-06T10:00:00+00:00", "google", "gem-test", "async", 300_000, 0, 0, 0, None),
]
UNPRICED_EXPECTED: dict[str, Any] = {
    "total_spend_usd": "2.200000000",
    "catalog_max_effective_at": "2025-06-01T00:00:00+00:00",
    # async: eligible 0.1 + 0.6 = 0.7, batch 0.05 + 0.3 = 0.35; share 0.7 / 2.2 = 31.818 %
    "findings": [("async", 2, "0.700000000", "0.350000000", "0.350000000", "50.00", "31.82")],
    "skipped": [("anthropic", "claude-test", None, "untagged", 2, "1.500000000")],
}


async def test_missing_costs_are_priced_at_each_requests_own_row_and_band(
    migrated_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await fill_log(migrated_url, UNPRICED_ROWS)
    jsonl = write_jsonl(tmp_path / "u.jsonl", UNPRICED_ROWS)
    from_db = await asyncio.to_thread(run_json, capsys, "--db", migrated_url)
    assert as_tuples(from_db) == UNPRICED_EXPECTED
    assert await asyncio.to_thread(run_json, capsys, "--import", str(jsonl)) == from_db


def test_since_and_until_bound_the_window_on_every_source(
    log_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    window = ("--since", "2025-03-02", "--until", "2025-03-03T00:00:00Z")  # row 3 alone, no cache: $4 → $2
    expected = {
        "total_spend_usd": "4.000000000",
        "catalog_max_effective_at": "2025-06-01T00:00:00+00:00",
        "findings": [("bulk", 1, "4.000000000", "2.000000000", "2.000000000", "50.00", "100.00")],
        "skipped": [],
    }
    assert as_tuples(run_json(capsys, "--db", log_url, *window)) == expected
    assert (
        as_tuples(run_json(capsys, "--import", str(write_jsonl(tmp_path / "a.jsonl")), *window)) == expected
    )
    # an age: 100 years back holds every row
    everything = run_json(capsys, "--import", str(write_csv(tmp_path / "a.csv")), "--since", "36500d")
    assert as_tuples(everything) == EXPECTED


def test_tags_replace_the_eligible_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(capsys, "--import", str(write_csv(tmp_path / "a.csv")), "--tags", "INTERACTIVE, bulk")
    # interactive: 1M input at $2 actual; batch 1M × 1 = $1 (before the cut); share 2 / 15.79 = 12.666 %
    assert [tuple(f[key] for key in FINDING_KEYS) for f in data["findings"]] == [
        ("interactive", 1, "2.000000000", "1.000000000", "1.000000000", "50.00", "12.67"),
    ]
    reasons = {s["tag"]: s["reason"] for s in data["skipped"]}
    assert (reasons["nightly"], reasons["bulk"]) == ("not_eligible", "no_batch_cache_rate")


def test_the_table_names_every_column_and_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["advise", "--catalog", CATALOG, "--import", str(write_csv(tmp_path / "a.csv"))]) == 0
    out = capsys.readouterr().out
    for text in ("tag", "requests", "eligible $", "batch $", "savings $", "discount %", "share %"):
        assert text in out
    assert "total spend $15.7900" in out
    for reason in ("not_eligible", "no_batch_cache_rate", "untagged", "no_batch_rate", "unpriced"):
        assert reason in out
    assert "(untagged)" in out
    assert "claude-test-20250101" not in out  # eligible rows appear per tag, not per model


def test_a_stale_catalog_warns_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_csv(tmp_path / "a.csv")
    assert main(["advise", "--catalog", CATALOG, "--import", str(path), "--json"]) == 0
    err = capsys.readouterr().err
    assert "newest price is from 2025-06-01" in err
    fresh = tmp_path / "fresh.toml"
    today = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT00:00:00Z")
    fresh.write_text(Path(CATALOG).read_text().replace("2025-06-01T00:00:00Z", today))
    assert main(["advise", "--catalog", str(fresh), "--import", str(path), "--json"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        (
            '{"ts": "2025-01-01T00:00:00Z", "provider": "p", "model": "m"}\n{not json\n',
            ".jsonl",
            ":2: not JSON",
        ),
        ('["a list"]\n', ".jsonl", ":1: not a JSON object"),
        ('{"ts": "yesterday", "provider": "p", "model": "m"}\n', ".jsonl", "ts must be"),
        (
            '{"ts": "2025-01-01", "provider": "p", "model": "m", "input_tokens": -3}\n',
            ".jsonl",
            "input_tokens",
        ),
        ('{"ts": "2025-01-01", "provider": "p", "model": "m", "cost_usd": "cheap"}\n', ".jsonl", "cost_usd"),
        ("ts,provider\n2025-01-01,p\n", ".csv", "missing column(s) ['model']"),
        ("ts,provider,model,input_tokens\n2025-01-01,p,m,1.5\n", ".csv", ":2: input_tokens"),
        ("ts,provider,model\n2025-01-01,,m\n", ".csv", ":2: provider and model"),
    ],
)
def test_an_unreadable_import_exits_1_naming_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, suffix: str, message: str
) -> None:
    path = tmp_path / f"bad{suffix}"
    path.write_text(content)
    assert main(["advise", "--catalog", CATALOG, "--import", str(path)]) == 1
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""


def test_a_missing_file_or_catalog_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["advise", "--catalog", CATALOG, "--import", str(tmp_path / "none.csv")]) == 1
    assert "cannot read" in capsys.readouterr().err
    path = write_csv(tmp_path / "a.csv")
    assert main(["advise", "--catalog", str(tmp_path / "none.toml"), "--import", str(path)]) == 1
    assert "cannot read price catalog" in capsys.readouterr().err
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00bad")
    assert main(["advise", "--catalog", CATALOG, "--import", str(tmp_path / "bin.csv")]) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--db", "sqlite:///x.db", "--import", "a.csv"], "not allowed with"),
        (["--import", "log.txt"], "import a .jsonl or .csv file"),
        (["--since", "yesterday"], "--since"),
        (["--tags", " , "], "--tags needs at least one tag"),
        (["--since", "2025-03-02", "--until", "2025-03-01"], "--since must be before --until"),
        (["--frobnicate"], "unrecognized arguments"),
    ],
)
def test_usage_errors_exit_2(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["advise", *args]) == 2
    assert message in capsys.readouterr().err


def test_a_missing_sqlite_file_fails_naming_db_upgrade_and_is_not_created(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["advise", "--db", sqlite_url]) == 1
    assert "lore db upgrade" in capsys.readouterr().err
    assert not Path(sqlite_url.removeprefix("sqlite+aiosqlite:///")).exists()


def test_an_unmigrated_sqlite_file_is_refused_and_left_alone(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = Path(sqlite_url.removeprefix("sqlite+aiosqlite:///"))
    sqlite3.connect(path).close()
    assert main(["advise", "--db", sqlite_url]) == 1
    captured = capsys.readouterr()
    assert "database schema is at nothing" in captured.err
    assert "lore db upgrade" in captured.err
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT name FROM sqlite_master").fetchall() == []


@pytest.fixture
async def old_schema_url(store_url: str) -> str:
    await upgrade(store_url, "0002")  # before the request log existed
    return store_url


def test_an_out_of_date_schema_is_refused_naming_db_upgrade(
    old_schema_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["advise", "--db", old_schema_url]) == 1
    err = capsys.readouterr().err
    assert "database schema is at 0002" in err
    assert "lore db upgrade" in err
    assert main(["advise", "--db", old_schema_url]) == 1  # still 0002: nothing was migrated
    assert "database schema is at 0002" in capsys.readouterr().err


def test_an_empty_log_has_no_findings(migrated_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(capsys, "--db", migrated_url)
    assert (data["total_spend_usd"], data["findings"], data["skipped"]) == ("0.000000000", [], [])
    assert main(["advise", "--catalog", CATALOG, "--db", migrated_url]) == 0
    assert "no eligible tagged traffic" in capsys.readouterr().out
