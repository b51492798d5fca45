"""The recall tool for the main model: its Anthropic tool definition and the helper that answers it.

Two lines give a model the tool::

    tools = [*TOOLS, recall_tool()]                                   # offer it (pass these to transform too)
    results.append(await answer_recall(session, block))               # for each tool_use block named "recall"

When ``transform`` sees the tool in ``tools`` its loss annotations and layer note point the model to it
(:data:`lore_core.annotations.RECALL_HINT`, :data:`lore_core.knowledge.LAYER_NOTE_RECALL`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from lore_core.annotations import RECALL_TOOL
from lore_core.errors import ConfigError, StoreError
from lore_core.recall import (
    DEFAULT_LIMIT,
    DistillationSource,
    KnowledgeSource,
    MessageSource,
    RecallHit,
    RecallResult,
    RecallScope,
    RecallSource,
)

if TYPE_CHECKING:
    from lore_core.session import LoreSession

__all__ = ["TOOL_MAX_LIMIT", "answer_recall", "recall_tool", "render_recall"]

logger = logging.getLogger(__name__)

TOOL_MAX_LIMIT: Final = 20
"""Most results the model may ask for in one call (the schema's ``maximum``)."""
_TOOL_MAX_QUERY: Final = 1_000

DESCRIPTION: Final = (
    "Search the full history of this conversation: every earlier message, including tool outputs shown as "
    "[output omitted: ...] and the older parts that appear condensed into summaries, plus the project's "
    "long-term knowledge. Use it when an exact earlier detail matters (a value, path, command, error message, "
    "decision or the user's own words) and the context you see only summarizes or omits it. It matches words, "
    "so use distinctive words the original text likely contained. Returns the best matching passages, each "
    "with where it comes from."
)


def recall_tool() -> dict[str, Any]:
    """The recall tool's definition for the Messages API ``tools`` list (a new dict each call).

    Example: ``client.messages.create(..., tools=[*TOOLS, recall_tool()])``.
    """
    return {
        "name": RECALL_TOOL,
        "description": DESCRIPTION,
        "input_schema": {
            "type": "object",
            "properties": {
                "query": {
                    "type": "string",
                    "description": "Words to search for, e.g. a name, path, number, error or topic.",
                },
                "limit": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": TOOL_MAX_LIMIT,
                    "description": f"How many results to return (default {DEFAULT_LIMIT}).",
                },
            },
            "required": ["query"],
        },
    }


def _field(block: object, name: str) -> object:
    return block.get(name) if isinstance(block, Mapping) else getattr(block, name, None)


def _error(tool_use_id: str, text: str) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": tool_use_id, "content": text, "is_error": True}


def _input_problem(arguments: object) -> str | None:
    """What is wrong with the tool input, in words for the model; None when it is valid."""
    if not isinstance(arguments, Mapping):
        return "recall needs an object input with a 'query' string"
    query = arguments.get("query")
    if not isinstance(query, str) or not query.strip():
        return "recall needs a non-empty 'query' string"
    if len(query) > _TOOL_MAX_QUERY:
        return f"the recall query is too long (at most {_TOOL_MAX_QUERY} characters); use a few distinctive words"
    limit = arguments.get("limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
        return "'limit' must be an integer"
    if isinstance(limit, int) and not 1 <= limit <= TOOL_MAX_LIMIT:
        return f"'limit' must be between 1 and {TOOL_MAX_LIMIT}"
    return None


async def answer_recall(
    session: LoreSession,
    block: object,
    *,
    scope: RecallScope = "session",
    max_chars: int | None = None,
    expand: bool | None = None,
) -> dict[str, Any]:
    """Answer one ``tool_use`` block of the recall tool with its ``tool_result`` block.

    ``block`` is the SDK's ``ToolUseBlock`` or its dict form. The result's ``content`` lists the hits with
    their sources (:func:`render_recall`); invalid input (no query, a bad limit) gives ``is_error: True`` with
    a sentence the model can act on, and so does a database failure (logged). ``scope`` is the host's
    decision, never the model's: the default searches this session only.

    Raises:
        ConfigError: ``block`` is not a ``tool_use`` of the recall tool (it has no id, or another name).

    Example::

        for block in reply.content:
            if block.type == "tool_use" and block.name == "recall":
                results.append(await answer_recall(session, block))
    """
    tool_use_id = _field(block, "id")
    if not isinstance(tool_use_id, str) or not tool_use_id:
        raise ConfigError("answer_recall needs a tool_use block with an id")
    if _field(block, "name") != RECALL_TOOL:
        raise ConfigError(f"tool_use {tool_use_id} is not a {RECALL_TOOL!r} call")
    arguments = _field(block, "input")
    problem = _input_problem(arguments)
    if problem is not None:
        return _error(tool_use_id, problem)
    assert isinstance(arguments, Mapping)
    limit = arguments.get("limit")
    try:
        result = await session.recall(
            str(arguments["query"]),
            limit=limit if isinstance(limit, int) else DEFAULT_LIMIT,
            scope=scope,
            max_chars=max_chars,
            expand=expand,
        )
    except StoreError as exc:
        logger.warning("recall for session %s failed: %s", session.session_id, exc)
        return _error(
            tool_use_id, "recall is unavailable right now (the history store failed); go on without it"
        )
    return {"type": "tool_result", "tool_use_id": tool_use_id, "content": render_recall(result)}


def _when(source: RecallSource) -> str:
    moment = source.updated_at if isinstance(source, KnowledgeSource) else source.created_at
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _label(hit: RecallHit, session_id: str, width: int | None) -> str:
    source = hit.source
    if isinstance(source, MessageSource):
        parts = [f"message m:{source.message_id[:width]}", source.role, _when(source)]
        if source.kind == "tool_results":
            parts.insert(2, "tool output")
    elif isinstance(source, DistillationSource):
        parts = [
            f"summary d:{source.distillation_id[:width]}",
            f"generation {source.generation}",
            _when(source),
        ]
        if source.archived:
            parts.insert(2, "archived")
    else:
        scope = f"project {source.project}" if source.project is not None else "global"
        parts = [f"knowledge k:{source.knowledge_id[:width]}", source.category, scope, _when(source)]
    if not isinstance(source, KnowledgeSource) and source.session_id != session_id:
        parts.append(f"session {source.session_id}")
    return ", ".join(parts)


def _where(result: RecallResult) -> str:
    if result.scope == "session":
        return "in this session"
    if result.scope == "project":
        return f"in project {result.project}"
    return "in all sessions"


def render_recall(result: RecallResult, *, full_ids: bool = False) -> str:
    """The text a ``tool_result`` carries: a header line, then each hit as ``[n] <source>`` and its text.

    Sources read ``message m:<id8>, <role>[, tool output], <time>``, ``summary d:<id8>, generation
    <g>[, archived], <time>`` (``d:`` as in the distilled prefix's headers) or ``knowledge k:<id8>,
    <category>, <project | global>, <time>``, plus ``session <id>`` for another session's hit. Ids are cut to
    8 characters unless ``full_ids`` (the CLI's text output).
    """
    where = _where(result)
    if not result.hits:
        return (
            f'No results for "{result.query}" {where}. Try other words: names, paths, numbers or error text '
            "as they were written."
        )
    noun = "result" if len(result.hits) == 1 else "results"
    lines = [f'{len(result.hits)} {noun} for "{result.query}" {where}, best first:']
    for number, hit in enumerate(result.hits, start=1):
        lines += ["", f"[{number}] {_label(hit, result.session_id, None if full_ids else 8)}", hit.text]
    if result.omitted:
        lines += ["", f"({result.omitted} more left out to keep this short; ask with more specific words.)"]
    return "\n".join(lines)
