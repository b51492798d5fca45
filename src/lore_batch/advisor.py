"""The batch advisor: which tagged traffic would cost less on a batch API, and by how much (BATCH.md section 9).

Pure: no I/O. The input is one :class:`RequestAggregate` per (provider, model, tag) segment of a request log,
each with a single price (the ``lore advise`` command also splits segments by price row and length band). A
segment contributes to its tag's :class:`BatchFinding` only when all of these hold:

- it is tagged, with a tag in the eligible list (matched case-insensitively);
- the catalog prices its model, with explicit ``batch_input`` and ``batch_output`` columns;
- it has no cache reads, or the row has ``batch_cache_read``; no cache writes, or ``batch_cache_write_1h``.

The advisor never assumes a discount: a missing batch column means no batch price. The projected batch cost
is ``(in × batch_input + out × batch_output + cache_read × batch_cache_read + cache_write ×
batch_cache_write_1h) / 1e6`` (batched traffic should write the 1-hour cache, so that rate is the conservative
one). The eligible spend is what the segment actually cost, so traffic that is already batched projects
savings of about 0. Findings fold segments per tag across models and are sorted by savings, then tag.

Example::

    aggs = [RequestAggregate("anthropic", "claude-haiku-4-5", "nightly", 1_000_000, 0, 0, 0, Decimal(1), 10)]
    [finding] = project_batch_savings(aggs, PricingCatalog.default())
    finding.projected_savings_usd, finding.discount_pct()   # (Decimal('0.50'), Decimal('50.00'))
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Final, Literal

from lore_batch.pricing import PricingCatalog

__all__ = [
    "DEFAULT_BATCH_ELIGIBLE_TAGS",
    "SKIP_REASONS",
    "BatchAdvice",
    "BatchFinding",
    "RequestAggregate",
    "SkipReason",
    "SkippedSegment",
    "advise",
    "project_batch_savings",
    "project_batch_savings_with_tags",
    "skipped_segments",
]

DEFAULT_BATCH_ELIGIBLE_TAGS: Final = ("background", "offline", "nightly", "batch", "bulk", "async")

SkipReason = Literal["untagged", "not_eligible", "unpriced", "no_batch_rate", "no_batch_cache_rate"]
SKIP_REASONS: Final[tuple[SkipReason, ...]] = (
    "untagged",
    "not_eligible",
    "unpriced",
    "no_batch_rate",
    "no_batch_cache_rate",
)

_PER_TOKENS: Final = Decimal(1_000_000)
_HUNDRED: Final = Decimal(100)


@dataclass(frozen=True, slots=True)
class RequestAggregate:
    """The requests of one (provider, model, tag) segment, summed: one row of a GROUP BY over a request log.

    ``cost_usd`` is what the requests actually cost. ``as_of`` (ours) selects the catalog's price row
    (``None``: the latest); ``prompt_tokens`` (ours) is the prompt size (input + cache read + cache write
    tokens) of one request of the segment and selects the length band (``None``: the base row).

    Raises:
        ValueError: a count is negative, or ``as_of`` is a naive datetime.

    Example::

        RequestAggregate("openai", "gpt-4.1-mini", "bulk", 2_000_000, 500_000, 0, 0, Decimal("1.6"), 400)
    """

    provider: str
    model: str
    tag: str | None
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost_usd: Decimal
    request_count: int
    as_of: datetime | None = None
    prompt_tokens: int | None = None

    def __post_init__(self) -> None:
        counts = (
            self.input_tokens,
            self.output_tokens,
            self.cache_read_tokens,
            self.cache_write_tokens,
            self.request_count,
            self.prompt_tokens or 0,
        )
        if any(count < 0 for count in counts):
            raise ValueError("token and request counts must not be negative")
        if self.as_of is not None and self.as_of.tzinfo is None:
            raise ValueError("as_of must be timezone-aware")


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchFinding:
    """What moving one tag's traffic to a batch API would save. Money in USD, shares in percent.

    Example::

        finding.summary()
        # 'nightly: 100.00% of spend, save $0.5000 (50.00% off) over 10 requests'
    """

    tag: str
    eligible_spend_usd: Decimal
    projected_batch_cost_usd: Decimal
    projected_savings_usd: Decimal
    share_of_spend_pct: Decimal
    request_count: int

    def discount_pct(self) -> Decimal:
        """Savings ÷ eligible spend × 100; 0 when the eligible spend is not positive."""
        if self.eligible_spend_usd <= 0:
            return Decimal(0)
        return self.projected_savings_usd / self.eligible_spend_usd * _HUNDRED

    def summary(self) -> str:
        """One line: tag, share of spend, projected dollars saved, discount, request count."""
        return (
            f"{self.tag}: {self.share_of_spend_pct:.2f}% of spend, save ${self.projected_savings_usd:,.4f} "
            f"({self.discount_pct():.2f}% off) over {self.request_count:,} "
            f"request{'' if self.request_count == 1 else 's'}"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SkippedSegment:
    """Traffic that contributes to no finding, and why: one (provider, model, tag, reason), summed.

    ``tag`` keeps the first spelling seen; ``spend_usd`` is the segments' actual cost.
    """

    provider: str
    model: str
    tag: str | None
    reason: SkipReason
    spend_usd: Decimal
    request_count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchAdvice:
    """Everything :func:`advise` found: findings, skipped segments and the spend of all aggregates."""

    findings: tuple[BatchFinding, ...]
    skipped: tuple[SkippedSegment, ...]
    total_spend_usd: Decimal


def project_batch_savings(aggs: Iterable[RequestAggregate], catalog: PricingCatalog) -> list[BatchFinding]:
    """Findings for the tags in :data:`DEFAULT_BATCH_ELIGIBLE_TAGS` (see
    :func:`project_batch_savings_with_tags`).

    Example::

        project_batch_savings(aggs, PricingCatalog.default())[0].tag   # 'nightly'
    """
    return project_batch_savings_with_tags(aggs, catalog, DEFAULT_BATCH_ELIGIBLE_TAGS)


def project_batch_savings_with_tags(
    aggs: Iterable[RequestAggregate], catalog: PricingCatalog, tags: Iterable[str]
) -> list[BatchFinding]:
    """One :class:`BatchFinding` per eligible tag with positive eligible spend, sorted by projected savings
    (largest first), then tag. ``tags`` match case-insensitively; a finding keeps the first spelling seen.

    Example::

        project_batch_savings_with_tags(aggs, catalog, ["Reports"])   # traffic tagged reports/REPORTS/...
    """
    return list(advise(aggs, catalog, tags=tags).findings)


def skipped_segments(
    aggs: Iterable[RequestAggregate],
    catalog: PricingCatalog,
    tags: Iterable[str] = DEFAULT_BATCH_ELIGIBLE_TAGS,
) -> list[SkippedSegment]:
    """The traffic that contributes nothing, with a reason (``untagged``, ``not_eligible``, ``unpriced``,
    ``no_batch_rate``, ``no_batch_cache_rate``), summed per (provider, model, tag, reason) and sorted by spend
    (largest first), then provider, model and tag.

    Example::

        [(s.model, s.reason) for s in skipped_segments(aggs, catalog)]   # [('gpt-9', 'unpriced')]
    """
    return list(advise(aggs, catalog, tags=tags).skipped)


def advise(
    aggs: Iterable[RequestAggregate],
    catalog: PricingCatalog,
    *,
    tags: Iterable[str] = DEFAULT_BATCH_ELIGIBLE_TAGS,
) -> BatchAdvice:
    """Findings and skipped segments in one pass (what ``lore advise`` prints).

    Example::

        advice = advise(aggs, PricingCatalog.default(), tags=["nightly"])
        advice.total_spend_usd, len(advice.findings), len(advice.skipped)
    """
    eligible_tags = {tags.casefold()} if isinstance(tags, str) else {tag.casefold() for tag in tags}
    segments = list(aggs)
    total = sum((agg.cost_usd for agg in segments), Decimal(0))
    spelling: dict[str, str] = {}
    folded: dict[str, _TagSum] = {}
    skipped: dict[tuple[str, str, str | None, SkipReason], _SkipSum] = {}
    for agg in segments:
        key = None if agg.tag is None or not agg.tag.strip() else agg.tag.casefold()
        reason: SkipReason
        if key is None:
            reason = "untagged"
        else:
            spelling.setdefault(key, agg.tag or "")
            result = _project(agg, catalog) if key in eligible_tags else "not_eligible"
            if isinstance(result, Decimal):
                folded.setdefault(key, _TagSum()).add(agg, result)
                continue
            reason = result
        skipped.setdefault((agg.provider, agg.model, key, reason), _SkipSum()).add(
            agg.cost_usd, agg.request_count
        )
    findings = [sums.finding(spelling[key], total) for key, sums in folded.items() if sums.eligible > 0]
    findings.sort(key=lambda f: (-f.projected_savings_usd, f.tag))
    skipped_list = [
        SkippedSegment(
            provider=provider,
            model=model,
            tag=None if tag_key is None else spelling[tag_key],
            reason=reason,
            spend_usd=sums.spend,
            request_count=sums.requests,
        )
        for (provider, model, tag_key, reason), sums in skipped.items()
    ]
    skipped_list.sort(key=lambda s: (-s.spend_usd, s.provider, s.model, s.tag or "", s.reason))
    return BatchAdvice(findings=tuple(findings), skipped=tuple(skipped_list), total_spend_usd=total)


def _project(agg: RequestAggregate, catalog: PricingCatalog) -> Decimal | SkipReason:
    """An eligible segment's projected batch cost, or why it has none."""
    row = catalog.price(agg.provider, agg.model, at=agg.as_of, prompt_tokens=agg.prompt_tokens)
    if row is None:
        return "unpriced"
    if row.batch_input is None or row.batch_output is None:
        return "no_batch_rate"
    cache_read_rate = row.batch_cache_read
    cache_write_rate = row.batch_cache_write_1h
    if (agg.cache_read_tokens and cache_read_rate is None) or (
        agg.cache_write_tokens and cache_write_rate is None
    ):
        return "no_batch_cache_rate"
    cost = (
        agg.input_tokens * row.batch_input
        + agg.output_tokens * row.batch_output
        + agg.cache_read_tokens * (cache_read_rate or Decimal(0))
        + agg.cache_write_tokens * (cache_write_rate or Decimal(0))
    )
    return cost / _PER_TOKENS


class _TagSum:
    """One tag's eligible segments, folded across models."""

    __slots__ = ("eligible", "projected", "requests")

    def __init__(self) -> None:
        self.eligible = Decimal(0)
        self.projected = Decimal(0)
        self.requests = 0

    def add(self, agg: RequestAggregate, projected: Decimal) -> None:
        self.eligible += agg.cost_usd
        self.projected += projected
        self.requests += agg.request_count

    def finding(self, tag: str, total: Decimal) -> BatchFinding:
        return BatchFinding(
            tag=tag,
            eligible_spend_usd=self.eligible,
            projected_batch_cost_usd=self.projected,
            projected_savings_usd=max(self.eligible - self.projected, Decimal(0)),
            share_of_spend_pct=self.eligible / total * _HUNDRED if total > 0 else Decimal(0),
            request_count=self.requests,
        )


class _SkipSum:
    """One (provider, model, tag, reason) of skipped segments, summed."""

    __slots__ = ("requests", "spend")

    def __init__(self) -> None:
        self.spend = Decimal(0)
        self.requests = 0

    def add(self, spend: Decimal, requests: int) -> None:
        self.spend += spend
        self.requests += requests
