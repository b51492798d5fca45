"""``lore advise``: which tagged traffic would cost less on a batch API, and by how much (BATCH.md section 9).

Reads the project's own request log (``lore_batch_request_log``; read-only, it never migrates: a database
behind the code's schema fails with exit code 1 and a message naming ``lore db upgrade``) or an imported
``.jsonl``/``.csv`` file, sums it per (provider, model, tag, price row, band) and runs the pure advisor
(:mod:`lore_batch.advisor`). Prints a table of findings and the skipped traffic with its reason, or JSON.
Warns on stderr when the price catalog's newest price is more than 90 days old.

Exit codes: 0 success, 1 unreadable input (file, catalog or database), 2 usage error.

Example::

    lore advise --db sqlite+aiosqlite:///lore.db --since 30d
    lore advise --import requests.csv --tags nightly,reports --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from rich.console import Console
from rich.table import Table

from lore_core.errors import StoreError

if TYPE_CHECKING:
    from lore_batch.advisor import BatchAdvice
    from lore_batch.pricing import PricingCatalog
    from lore_batch.segments import LoggedRequests

__all__ = ["STALE_AFTER", "register"]

# A catalog whose newest price is older than this may be missing price changes and new models.
STALE_AFTER: Final = timedelta(days=90)
_RELATIVE = re.compile(r"(?P<n>\d+)(?P<unit>[dhm])")
_UNITS: Final = {"d": "days", "h": "hours", "m": "minutes"}
_NANO: Final = Decimal("1e-9")
_CENT: Final = Decimal("0.01")


def _moment(text: str) -> datetime:
    """``--since``/``--until``: RFC 3339 (a date means its UTC midnight; naive means UTC) or ``7d``/``12h``/
    ``30m`` ago."""
    relative = _RELATIVE.fullmatch(text.strip())
    if relative:
        return datetime.now(UTC) - timedelta(**{_UNITS[relative["unit"]]: int(relative["n"])})
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a timestamp, date or age like 7d: {text!r}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _tags(text: str) -> tuple[str, ...]:
    tags = tuple(dict.fromkeys(tag.strip() for tag in text.split(",") if tag.strip()))
    if not tags:
        raise argparse.ArgumentTypeError("--tags needs at least one tag")
    return tags


def _import_path(text: str) -> Path:
    path = Path(text)
    if path.suffix.lower() not in (".jsonl", ".ndjson", ".csv"):
        raise argparse.ArgumentTypeError(f"import a .jsonl or .csv file, not {text!r}")
    return path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``lore advise [--db URL | --import FILE] [--since T] [--until T] [--tags a,b] [--catalog FILE]
    [--json]`` to ``sub``."""
    parser = sub.add_parser(
        "advise",
        help="project what batching tagged traffic would save",
        description="Sums the request log (or an imported JSONL/CSV file) per provider, model, tag and price, "
        "and projects what the eligible tags would cost at the catalog's explicit batch prices. Untagged "
        "traffic is never eligible; no discount is ever assumed. Read-only; never migrates.",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--db", default=None, metavar="URL", help="database URL (default: LORE_DB_URL)")
    source.add_argument(
        "--import",
        dest="import_file",
        type=_import_path,
        default=None,
        metavar="FILE",
        help="a .jsonl or .csv file with ts, provider, model, tag, input_tokens, output_tokens, "
        "cache_read_tokens, cache_write_tokens, cost_usd (a missing cost is priced from the catalog)",
    )
    parser.add_argument("--since", type=_moment, default=None, metavar="T", help="from T (RFC 3339 or 30d)")
    parser.add_argument("--until", type=_moment, default=None, metavar="T", help="before T (RFC 3339 or 1d)")
    parser.add_argument(
        "--tags",
        type=_tags,
        default=None,
        metavar="a,b",
        help="the batch-eligible tags, case-insensitive (default: background,offline,nightly,batch,bulk,async)",
    )
    parser.add_argument(
        "--catalog", type=Path, default=None, metavar="FILE", help="a price catalog TOML file"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from lore_batch.advisor import DEFAULT_BATCH_ELIGIBLE_TAGS, advise
    from lore_batch.pricing import PricingCatalog
    from lore_batch.segments import SegmentBuilder, read_import

    if args.since is not None and args.until is not None and args.since >= args.until:
        print("lore advise: error: --since must be before --until", file=sys.stderr)
        return 2
    catalog = PricingCatalog.from_path(args.catalog) if args.catalog else PricingCatalog.default()
    requests: Iterable[LoggedRequests]
    if args.import_file is not None:
        requests = read_import(args.import_file, since=args.since, until=args.until)
    else:
        requests = asyncio.run(_read_db(args.db, catalog, since=args.since, until=args.until))
    builder = SegmentBuilder(catalog)
    for request in requests:
        builder.add(request)
    advice = advise(builder.aggregates(), catalog, tags=args.tags or DEFAULT_BATCH_ELIGIBLE_TAGS)
    _warn_if_stale(catalog, datetime.now(UTC))
    sys.stderr.flush()
    if args.json:
        print(json.dumps(_to_json(advice, catalog), indent=2))
    else:
        _render(advice, catalog)
    return 0


async def _read_db(
    url: str | None, catalog: PricingCatalog, *, since: datetime | None, until: datetime | None
) -> list[LoggedRequests]:
    from lore_batch.segments import read_request_log
    from lore_core.store import create_engine, ensure_schema, mask_url

    engine = create_engine(url)
    try:
        if engine.url.get_backend_name() == "sqlite" and _missing_file(engine.url.database):
            raise StoreError(
                f"open {mask_url(engine.url)}: no such database file; create it with `lore db upgrade`",
                retryable=False,
            )
        await ensure_schema(engine, auto_migrate=False)
        return await read_request_log(engine, catalog, since=since, until=until)
    finally:
        await engine.dispose()


def _missing_file(database: str | None) -> bool:
    """Whether a SQLite URL names a file that does not exist (connecting would create it, empty)."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return False
    return not Path(database).exists()


def _warn_if_stale(catalog: PricingCatalog, now: datetime) -> None:
    newest = catalog.max_effective_at()
    if newest is None:
        print("lore advise: warning: the price catalog is empty", file=sys.stderr)
    elif now - newest > STALE_AFTER:
        print(
            f"lore advise: warning: the price catalog's newest price is from {newest.date().isoformat()} "
            f"({(now - newest).days} days ago); newer prices and models may be missing",
            file=sys.stderr,
        )


def _usd(value: Decimal) -> str:
    """Money in JSON: exact to the nano-dollar (the request log's precision), as a string."""
    return f"{value.quantize(_NANO):f}"


def _pct(value: Decimal) -> str:
    return f"{value.quantize(_CENT):f}"


def _to_json(advice: BatchAdvice, catalog: PricingCatalog) -> dict[str, Any]:
    newest = catalog.max_effective_at()
    return {
        "total_spend_usd": _usd(advice.total_spend_usd),
        "catalog_max_effective_at": newest.isoformat() if newest is not None else None,
        "findings": [
            {
                "tag": finding.tag,
                "request_count": finding.request_count,
                "eligible_spend_usd": _usd(finding.eligible_spend_usd),
                "projected_batch_cost_usd": _usd(finding.projected_batch_cost_usd),
                "projected_savings_usd": _usd(finding.projected_savings_usd),
                "discount_pct": _pct(finding.discount_pct()),
                "share_of_spend_pct": _pct(finding.share_of_spend_pct),
                "summary": finding.summary(),
            }
            for finding in advice.findings
        ],
        "skipped": [
            {
                "provider": skip.provider,
                "model": skip.model,
                "tag": skip.tag,
                "reason": skip.reason,
                "request_count": skip.request_count,
                "spend_usd": _usd(skip.spend_usd),
            }
            for skip in advice.skipped
        ],
    }


def _money(value: Decimal) -> str:
    return f"{value:,.4f}"


def _render(advice: BatchAdvice, catalog: PricingCatalog) -> None:
    console = Console()
    if not console.is_terminal:  # a pipe or a file: no terminal width to fit, so never fold a model id
        console = Console(width=200)
    newest = catalog.max_effective_at()
    console.print(
        f"[bold]batch advice[/bold]: total spend ${_money(advice.total_spend_usd)}; catalog prices up to "
        f"{newest.date().isoformat() if newest is not None else 'nothing'}"
    )
    if advice.findings:
        findings = Table(title="eligible tags")
        findings.add_column("tag", overflow="fold")
        for column in ("requests", "eligible $", "batch $", "savings $", "discount %", "share %"):
            findings.add_column(column, justify="right", no_wrap=True)
        for finding in advice.findings:
            findings.add_row(
                finding.tag,
                f"{finding.request_count:,}",
                _money(finding.eligible_spend_usd),
                _money(finding.projected_batch_cost_usd),
                _money(finding.projected_savings_usd),
                f"{finding.discount_pct():.2f}",
                f"{finding.share_of_spend_pct:.2f}",
            )
        console.print(findings)
    else:
        console.print("no eligible tagged traffic would cost less on a batch API")
    if advice.skipped:
        skipped = Table(title="skipped traffic")
        for column in ("provider", "model", "tag", "reason"):
            skipped.add_column(column, overflow="fold")
        skipped.add_column("requests", justify="right", no_wrap=True)
        skipped.add_column("spend $", justify="right", no_wrap=True)
        for skip in advice.skipped:
            skipped.add_row(
                skip.provider,
                skip.model,
                skip.tag or "(untagged)",
                skip.reason,
                f"{skip.request_count:,}",
                _money(skip.spend_usd),
            )
        console.print(skipped)
