"""``lore recall SESSION QUERY``: search a session's whole stored history from the command line.

The same search as ``session.recall`` (full-text, fused by reciprocal rank, within a character budget),
without query expansion: the command has no model to ask. The scope is the session unless widened:
``--project P`` searches every session of project P, ``--all-sessions`` every session of every project
(with ``--project``: every session of that project).
"""

from __future__ import annotations

import argparse
import asyncio
import json

from lore_core.recall import DEFAULT_LIMIT, MAX_LIMIT, RecallResult, RecallScope

__all__ = ["register"]


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 1 <= value <= MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_LIMIT}")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "recall",
        help="search a session's whole stored history",
        description="Full-text search over the stored raw messages (tool outputs in full), distillations "
        "(archived ones too) and knowledge of one session, ranked by reciprocal rank fusion. Other sessions "
        "and projects are searched only when asked.",
    )
    parser.add_argument("session", help="the session id")
    parser.add_argument("query", help="words to search for")
    parser.add_argument("--db", default=None, help="database URL (default: LORE_DB_URL or the data dir)")
    parser.add_argument(
        "--limit", type=_limit, default=DEFAULT_LIMIT, help=f"most hits (1-{MAX_LIMIT}, default %(default)s)"
    )
    parser.add_argument(
        "--max-chars", type=_positive, default=None, help="character budget of the hits' texts (default 6000)"
    )
    parser.add_argument("--project", default=None, help="search every session of this project")
    parser.add_argument(
        "--all-sessions", action="store_true", help="search every session (of --project, if given)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(handler=_run)


def _scope(args: argparse.Namespace) -> RecallScope:
    if args.project is not None:
        return "project"
    return "all" if args.all_sessions else "session"


def _run(args: argparse.Namespace) -> int:
    from lore_core.config import LoreConfig
    from lore_core.errors import SessionNotFoundError
    from lore_core.recall import search_history
    from lore_core.store import SqlSessionStore

    config = LoreConfig()
    scope = _scope(args)

    async def go() -> RecallResult:
        async with await SqlSessionStore.open(args.db) as store:
            project = args.project
            if scope == "session":
                record = await store.get_session(args.session)
                if record is None:
                    raise SessionNotFoundError(args.session)
                project = record.project
            return await search_history(
                store,
                args.query,
                session_id=args.session,
                project=project,
                scope=scope,
                limit=args.limit,
                max_chars=args.max_chars or config.recall_max_chars,
                snippet_chars=config.recall_snippet_chars,
                min_confidence=config.knowledge_min_confidence,
            )

    result = asyncio.run(go())
    if args.json:
        print(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
        return 0
    from lore_core.recall_tool import render_recall

    print(render_recall(result, full_ids=True))
    return 0
