"""The pure batch advisor (BATCH.md section 9, behaviours 49 and 50), with every expectation worked by hand.

Test prices, USD per million tokens (invented for easy arithmetic):

============  =====  ======  ========  ========  =====  ===========================================
model         input  output  write 5m  write 1h  read   batch columns
============  =====  ======  ========  ========  =====  ===========================================
claude-test   2      10      2.5       4         0.2    1, 5, 1.25, 2, 0.1 (every one, halves)
gpt-test      1      4       1         1         0.25   input 0.5, output 2 only (no cache columns)
gpt-nobatch   1      1       1         1         1      none
claude-hist   4      20      5         8         0.4    2, 10, 2.5, 4, 0.2; from 2025-06-01 all halved
============  =====  ======  ========  ========  =====  ===========================================
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from lore_batch.advisor import (
    DEFAULT_BATCH_ELIGIBLE_TAGS,
    SKIP_REASONS,
    BatchFinding,
    RequestAggregate,
    SkippedSegment,
    advise,
    project_batch_savings,
    project_batch_savings_with_tags,
    skipped_segments,
)
from lore_batch.pricing import PricingCatalog

M = 1_000_000


def _row(
    provider: str, model: str, when: str, sync: tuple[str, ...], batch: tuple[str, ...]
) -> dict[str, Any]:
    row: dict[str, Any] = {"provider": provider, "model": model, "effective_at": when}
    row.update(
        zip(
            ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read"),
            map(Decimal, sync),
            strict=True,
        )
    )
    names = (
        "batch_input",
        "batch_output",
        "batch_cache_write_5m",
        "batch_cache_write_1h",
        "batch_cache_read",
    )
    row.update(zip(names[: len(batch)], map(Decimal, batch), strict=True))  # the first len(batch) columns
    return row


CATALOG = PricingCatalog.from_mapping(
    {
        "price": [
            _row("anthropic", "claude-test", "2025-01-01T00:00:00Z", ("2", "10", "2.5", "4", "0.2"),
                 ("1", "5", "1.25", "2", "0.1")),
            _row("openai", "gpt-test", "2025-01-01T00:00:00Z", ("1", "4", "1", "1", "0.25"), ("0.5", "2")),
            _row("openai", "gpt-nobatch", "2025-01-01T00:00:00Z", ("1", "1", "1", "1", "1"), ()),
            _row("anthropic", "claude-hist", "2025-01-01T00:00:00Z", ("4", "20", "5", "8", "0.4"),
                 ("2", "10", "2.5", "4", "0.2")),
            _row("anthropic", "claude-hist", "2025-06-01T00:00:00Z", ("2", "10", "2.5", "4", "0.2"),
                 ("1", "5", "1.25", "2", "0.1")),
        ]
    }
)  # fmt: skip


def agg(
    model: str,
    tag: str | None,
    cost: str,
    *,
    inp: int = 0,
    out: int = 0,
    read: int = 0,
    write: int = 0,
    n: int = 1,
    **extra: Any,
) -> RequestAggregate:
    provider = "openai" if model.startswith("gpt") else "anthropic"
    return RequestAggregate(provider, model, tag, inp, out, read, write, Decimal(cost), n, **extra)


def test_a_model_without_batch_rates_gives_no_finding() -> None:
    aggs = [agg("gpt-nobatch", "background", "1", inp=M, n=5)]
    advice = advise(aggs, CATALOG)
    assert advice.findings == ()
    assert advice.skipped == (
        SkippedSegment(
            provider="openai",
            model="gpt-nobatch",
            tag="background",
            reason="no_batch_rate",
            spend_usd=Decimal(1),
            request_count=5,
        ),
    )
    assert project_batch_savings(aggs, CATALOG) == []


@pytest.mark.parametrize("tag", [None, "", "   "])
def test_untagged_traffic_is_never_eligible(tag: str | None) -> None:
    aggs = [agg("claude-test", tag, "2", inp=M)]
    # even when the eligible list holds an empty tag
    for tags in (DEFAULT_BATCH_ELIGIBLE_TAGS, ["", "   "]):
        advice = advise(aggs, CATALOG, tags=tags)
        assert advice.findings == ()
        assert [(s.reason, s.tag, s.spend_usd) for s in advice.skipped] == [("untagged", None, Decimal(2))]


def test_tags_match_case_insensitively_and_keep_the_first_spelling() -> None:
    # 1M input at $2 = $2 actual; at batch $1 = $1 projected, for each of the three
    aggs = [
        agg("claude-test", "Nightly", "2", inp=M, n=1),
        agg("claude-test", "NIGHTLY", "2", inp=M, n=2),
        agg("claude-test", "nightly", "2", inp=M, n=3),
    ]
    for tags in (DEFAULT_BATCH_ELIGIBLE_TAGS, ["nIgHtLy"]):
        [finding] = project_batch_savings_with_tags(aggs, CATALOG, tags)
        assert finding == BatchFinding(
            tag="Nightly",
            eligible_spend_usd=Decimal(6),
            projected_batch_cost_usd=Decimal(3),
            projected_savings_usd=Decimal(3),
            share_of_spend_pct=Decimal(100),
            request_count=6,
        )
    # an eligible list without the tag: all three skipped as not_eligible, summed under the first spelling
    assert [
        (s.tag, s.reason, s.spend_usd, s.request_count) for s in skipped_segments(aggs, CATALOG, ["bulk"])
    ] == [("Nightly", "not_eligible", Decimal(6), 6)]


def test_share_is_over_the_spend_of_all_aggregates() -> None:
    aggs = [
        agg("claude-test", "background", "3", inp=M, out=100_000),  # eligible: $3
        agg("claude-test", "interactive", "5", inp=M),  # not eligible: $5
        agg("claude-test", None, "2", inp=M),  # untagged: $2
        agg("mystery-model", "background", "10", inp=M),  # unpriced: $10
    ]
    [finding] = project_batch_savings(aggs, CATALOG)
    # share = 3 / (3 + 5 + 2 + 10) × 100 = 15 %
    assert finding.share_of_spend_pct == Decimal(15)
    # projected: 1M × $1 + 100k × $5 = 1 + 0.5 = $1.50; savings 3 − 1.5 = $1.50 (the actual cost was given)
    assert (finding.projected_batch_cost_usd, finding.projected_savings_usd) == (
        Decimal("1.5"),
        Decimal("1.5"),
    )
    assert advise(aggs, CATALOG).total_spend_usd == Decimal(20)
    assert [(s.reason, s.spend_usd) for s in skipped_segments(aggs, CATALOG)] == [
        ("unpriced", Decimal(10)),
        ("not_eligible", Decimal(5)),
        ("untagged", Decimal(2)),
    ]


def test_cache_tokens_are_priced_at_batch_cache_rates() -> None:
    # sync cost: 1M in × 2 + 100k out × 10 + 2M read × 0.2 + 500k write (1h) × 4 = 2 + 1 + 0.4 + 2 = $5.40
    aggs = [agg("claude-test", "bulk", "5.40", inp=M, out=100_000, read=2 * M, write=500_000, n=7)]
    [finding] = project_batch_savings(aggs, CATALOG)
    # batch: 1M × 1 + 100k × 5 + 2M × 0.1 (batch_cache_read) + 500k × 2 (batch_cache_write_1h)
    #      = 1 + 0.5 + 0.2 + 1 = $2.70
    assert finding.projected_batch_cost_usd == Decimal("2.7")
    assert finding.projected_savings_usd == Decimal("2.7")
    assert finding.discount_pct() == Decimal(50)
    assert finding.request_count == 7


@pytest.mark.parametrize(("read", "write"), [(1, 0), (0, 1), (5, 5)])
def test_cache_tokens_without_a_batch_cache_price_make_no_finding(read: int, write: int) -> None:
    aggs = [agg("gpt-test", "bulk", "1", inp=M, read=read, write=write)]
    advice = advise(aggs, CATALOG)
    assert advice.findings == ()
    assert [s.reason for s in advice.skipped] == ["no_batch_cache_rate"]
    # the same tokens without cache: 1M × $0.5 = $0.50 projected, never an assumed 50 % of the cost ($7)
    [finding] = project_batch_savings([agg("gpt-test", "bulk", "7", inp=M)], CATALOG)
    assert (finding.projected_batch_cost_usd, finding.projected_savings_usd) == (
        Decimal("0.5"),
        Decimal("6.5"),
    )


def test_findings_fold_per_tag_across_models() -> None:
    aggs = [
        agg("claude-test", "async", "2", inp=M, n=2),  # batch 1M × 1 = $1
        agg("gpt-test", "ASYNC", "4", out=M, n=3),  # batch 1M out × 2 = $2
    ]
    [finding] = project_batch_savings(aggs, CATALOG)
    # eligible 2 + 4 = $6; projected 1 + 2 = $3; savings $3 = 50 %
    assert (finding.tag, finding.eligible_spend_usd, finding.projected_batch_cost_usd) == ("async", 6, 3)
    assert (finding.projected_savings_usd, finding.request_count, finding.discount_pct()) == (3, 5, 50)


def test_findings_sort_by_savings_then_tag() -> None:
    aggs = [
        agg("claude-test", "bulk", "3", inp=M),  # projected $1 → savings $2
        agg("claude-test", "async", "4", inp=M),  # savings $3
        agg("claude-test", "batch", "3", inp=M),  # savings $2 (ties with bulk: "batch" < "bulk")
        agg("claude-test", "offline", "1", inp=M),  # savings $0
    ]
    findings = project_batch_savings(aggs, CATALOG)
    assert [(f.tag, f.projected_savings_usd) for f in findings] == [
        ("async", 3),
        ("batch", 2),
        ("bulk", 2),
        ("offline", 0),
    ]


def test_savings_are_never_negative_and_batched_traffic_projects_about_zero() -> None:
    # already batched: 1M input cost $1 at batch prices; projected $1 → savings 0, discount 0
    # cheaper than batch (e.g. a negotiated price): cost $0.5 < projected $1 → savings clamped to 0
    for cost in ("1", "0.5"):
        [finding] = project_batch_savings([agg("claude-test", "batch", cost, inp=M)], CATALOG)
        assert (finding.projected_savings_usd, finding.discount_pct()) == (0, 0)


def test_zero_eligible_tags_are_dropped_and_discount_is_zero_at_zero_eligible() -> None:
    assert project_batch_savings([agg("claude-test", "nightly", "0", inp=0, n=4)], CATALOG) == []
    for eligible in ("0", "-1"):
        finding = BatchFinding(
            tag="x",
            eligible_spend_usd=Decimal(eligible),
            projected_batch_cost_usd=Decimal(0),
            projected_savings_usd=Decimal(0),
            share_of_spend_pct=Decimal(0),
            request_count=0,
        )
        assert finding.discount_pct() == 0


def test_share_is_zero_when_the_total_spend_is_not_positive() -> None:
    # a $2 eligible segment and a $2 credit elsewhere: total spend 0, so the share is 0, not a division error
    aggs = [agg("claude-test", "nightly", "2", inp=M), agg("claude-test", None, "-2")]
    [finding] = project_batch_savings(aggs, CATALOG)
    assert (finding.eligible_spend_usd, finding.share_of_spend_pct) == (2, 0)


def test_as_of_selects_the_history_row() -> None:
    # 1M input cost $4 before 2025-06-01: batch then $2 → savings $2; after, batch $1 → savings $3
    early = agg("claude-hist", "nightly", "4", inp=M, as_of=datetime(2025, 3, 1, tzinfo=UTC))
    late = agg("claude-hist", "nightly", "4", inp=M, as_of=datetime(2025, 7, 1, tzinfo=UTC))
    latest = agg("claude-hist", "nightly", "4", inp=M)
    assert project_batch_savings([early], CATALOG)[0].projected_batch_cost_usd == 2
    assert project_batch_savings([late], CATALOG)[0].projected_batch_cost_usd == 1
    assert project_batch_savings([latest], CATALOG)[0].projected_batch_cost_usd == 1


def test_prompt_tokens_select_the_band() -> None:
    banded = PricingCatalog.from_mapping(
        {
            "price": [
                _row("google", "gem", "2025-01-01T00:00:00Z", ("1", "8", "1", "1", "0.1"), ("0.5", "4")),
                {
                    **_row("google", "gem", "2025-01-01T00:00:00Z", ("2", "12", "2", "2", "0.2"), ("1", "6")),
                    "prompt_tokens_over": 200_000,
                },
            ]
        }
    )
    base = RequestAggregate("google", "gem", "bulk", M, 0, 0, 0, Decimal(1), 10, prompt_tokens=100_000)
    long = RequestAggregate("google", "gem", "bulk", M, 0, 0, 0, Decimal(2), 4, prompt_tokens=250_000)
    # base band: 1M × 0.5 = $0.50; long band: 1M × 1 = $1
    assert project_batch_savings([base], banded)[0].projected_batch_cost_usd == Decimal("0.5")
    assert project_batch_savings([long], banded)[0].projected_batch_cost_usd == Decimal(1)


def test_summary_is_one_line_with_tag_share_savings_discount_and_requests() -> None:
    aggs = [agg("claude-test", "nightly", "3", inp=M, n=1234), agg("claude-test", None, "1", inp=M)]
    [finding] = project_batch_savings(aggs, CATALOG)
    # eligible $3, batch $1, savings $2 = 66.67 %, share 3 / 4 = 75 %
    assert finding.summary() == "nightly: 75.00% of spend, save $2.0000 (66.67% off) over 1,234 requests"
    assert "\n" not in finding.summary()


def test_skipped_segments_fold_and_sort_by_spend() -> None:
    aggs = [
        agg("gpt-nobatch", "bulk", "1", inp=M, n=1),
        agg("gpt-nobatch", "BULK", "2", inp=M, n=2),
        agg("claude-test", "chat", "3", inp=M),
        agg("claude-test", None, "3", inp=M),
    ]
    assert [
        (s.model, s.tag, s.reason, s.spend_usd, s.request_count) for s in skipped_segments(aggs, CATALOG)
    ] == [
        ("claude-test", None, "untagged", 3, 1),  # ties on $3: then provider, model, tag ("" < "chat")
        ("claude-test", "chat", "not_eligible", 3, 1),
        ("gpt-nobatch", "bulk", "no_batch_rate", 3, 3),
    ]
    assert {s.reason for s in skipped_segments(aggs, CATALOG)} <= set(SKIP_REASONS)


def test_a_single_tag_string_is_one_tag_not_its_letters() -> None:
    aggs = [agg("claude-test", "n", "2", inp=M), agg("claude-test", "nightly", "2", inp=M)]
    assert [f.tag for f in project_batch_savings_with_tags(aggs, CATALOG, "nightly")] == ["nightly"]


def test_no_eligible_tags_means_no_findings() -> None:
    aggs = [agg("claude-test", "nightly", "2", inp=M)]
    assert project_batch_savings_with_tags(aggs, CATALOG, []) == []
    assert [s.reason for s in skipped_segments(aggs, CATALOG, [])] == ["not_eligible"]


@pytest.mark.parametrize(
    "bad",
    [
        {"inp": -1},
        {"n": -1},
        {"read": -5},
        {"prompt_tokens": -1},
        {"as_of": datetime(2025, 1, 1)},
    ],
)
def test_aggregates_reject_negative_counts_and_naive_times(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"negative|timezone-aware"):
        agg("claude-test", "nightly", "1", **bad)
