"""Request invariants over a message list: the one O(n) pass behind ``InvalidMessagesError``.

Two entry points, one pass:

* :func:`validate_messages` checks a *history*: every message and block has a known shape, and the request
  invariants of ENGINE.md 8.9 points 1-3 hold (first message ``user``, strict alternation, tool pairing both
  ways with parallel calls together, no empty content or text). An empty list passes; a trailing ``tool_use``
  waiting for its result passes only with ``allow_pending_tool_use=True`` (a stored history may end mid tool
  call, a request may not).
* :func:`check_context` checks a *request*: the same pass with no pending tool call allowed, and at least one
  message. ``transform`` runs it on its input and on every layer >= 1 output.

Every failure is an :class:`~lore_core.errors.InvalidMessagesError` whose ``reason`` is one of the stable
codes in :data:`REASONS`; ``detail`` carries block positions and tool ids, never message text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lore_core.errors import InvalidMessagesError
from lore_core.messages import Block, Message

__all__ = ["REASONS", "check_context", "scan_messages", "validate_messages"]

REASONS = frozenset(
    {
        "not_a_list",  # the messages argument itself is not a list
        "no_messages",  # check_context only: a request needs at least one message
        "not_a_dict",
        "unknown_role",
        "empty_content",  # content missing, "", whitespace only, or []
        "empty_text_block",  # a text block (also inside a tool_result) with no non-whitespace text
        "bad_block_type",  # unknown type, wrong for the role, or a block missing its required fields
        "orphan_tool_result",
        "missing_tool_result",
        "duplicate_tool_use_id",  # a tool_use id used twice, or two results for one id
        "tool_result_not_first",  # the API wants every tool_result before any other block of the message
        "first_not_user",
        "roles_not_alternating",
        "not_json",  # message_id: content that JSON cannot encode
    }
)
"""Every ``InvalidMessagesError.reason`` the message checks raise (``not_json`` comes from ``message_id``)."""

# Blocks the API accepts per role. Server-tool blocks (web search, code execution, MCP connector) pair inside
# one assistant message, so they take no part in the cross-message pairing checks.
_SERVER_TOOL_BLOCKS = frozenset(
    {
        "server_tool_use",
        "web_search_tool_result",
        "web_fetch_tool_result",
        "code_execution_tool_result",
        "bash_code_execution_tool_result",
        "text_editor_code_execution_tool_result",
        "mcp_tool_use",
        "mcp_tool_result",
        "container_upload",
    }
)
_USER_BLOCKS = frozenset({"text", "image", "document", "search_result", "tool_result"})
_ASSISTANT_BLOCKS = frozenset({"text", "thinking", "redacted_thinking", "tool_use"}) | _SERVER_TOOL_BLOCKS
_TOOL_RESULT_BLOCKS = frozenset({"text", "image", "document", "search_result"})
_ALLOWED = {"user": _USER_BLOCKS, "assistant": _ASSISTANT_BLOCKS}
_DETAIL_IDS = 3  # tool ids quoted in an error detail, at most


def validate_messages(messages: Sequence[Message], *, allow_pending_tool_use: bool = False) -> None:
    """Check a message history in one O(n) pass; return None or raise on the first problem found.

    Checks, per message in order: it is a dict (``not_a_dict``) with role user/assistant (``unknown_role``);
    the first is ``user`` (``first_not_user``) and roles alternate (``roles_not_alternating``); content is a
    non-empty string or list (``empty_content``) of blocks valid for the role (``bad_block_type``) with no
    blank text (``empty_text_block``); tool ids are unique (``duplicate_tool_use_id``); every ``tool_result``
    answers a ``tool_use`` of the previous assistant message (``orphan_tool_result``), comes before the other
    blocks (``tool_result_not_first``), and every ``tool_use`` is answered by the next message
    (``missing_tool_result``, at the assistant's index). A trailing assistant message (prefill) is fine; one
    with ``tool_use`` only when ``allow_pending_tool_use``. An empty list passes.

    Raises ``InvalidMessagesError(index, reason, detail)``; ``index`` is -1 when ``messages`` is not a list.
    Example: ``validate_messages([{"role": "user", "content": "hi"}])`` returns None.
    """
    scan_messages(messages, allow_pending_tool_use=allow_pending_tool_use)


def check_context(messages: Sequence[Message]) -> None:
    """Assert every invariant an API request must satisfy (ENGINE.md 8.9 points 1-3), in O(n).

    That is :func:`validate_messages` with no pending ``tool_use`` allowed, plus at least one message.

    Raises ``InvalidMessagesError`` (reason ``no_messages`` with index -1 for an empty list).
    Example: ``check_context([{"role": "user", "content": "hi"}])`` returns None.
    """
    validate_messages(messages)
    if not messages:
        raise InvalidMessagesError(-1, "no_messages")


def scan_messages(messages: Sequence[Message], *, allow_pending_tool_use: bool = False) -> int:
    """:func:`validate_messages` that also returns how many ``cache_control`` breakpoints the blocks carry
    (top-level blocks and the items inside ``tool_result`` contents), in the same single pass.

    The common block shapes (non-blank text, a ``tool_result`` with string content) take a fast path that
    checks exactly what the general path checks. Raises like :func:`validate_messages`.
    """
    if not isinstance(messages, list | tuple):
        raise InvalidMessagesError(-1, "not_a_list", type(messages).__name__)
    seen_tool_ids: set[str] = set()
    pending: list[str] = []  # tool_use ids of the previous message, in order
    prev_role: object = None
    breakpoints = 0
    for index, message in enumerate(messages):
        role = _check_role(index, message, prev_role)
        content = message.get("content")
        if isinstance(content, str):
            if not content or content.isspace():
                raise InvalidMessagesError(index, "empty_content")
            blocks: Sequence[Block] = ()
        else:
            blocks = _check_content(index, role, content)
            for block in blocks:
                if "cache_control" in block:
                    breakpoints += 1
                if block["type"] == "tool_result":
                    inner = block.get("content")
                    if isinstance(inner, list | tuple):
                        breakpoints += sum(1 for item in inner if "cache_control" in item)
        if role == "assistant":
            pending = _tool_use_ids(index, blocks, seen_tool_ids) if blocks else []
        else:
            if blocks or pending:
                _check_results(index, blocks, pending)
            pending = []
        prev_role = role
    if pending and not allow_pending_tool_use:
        raise InvalidMessagesError(len(messages) - 1, "missing_tool_result", _ids_detail(pending))
    return breakpoints


def _check_role(index: int, message: object, prev_role: object) -> str:
    if type(message) is not dict and not isinstance(message, Mapping):  # exact dict first: no ABC check
        raise InvalidMessagesError(index, "not_a_dict", type(message).__name__)
    role = message.get("role")
    if role not in ("user", "assistant"):  # a tuple: an unhashable role must not raise TypeError
        raise InvalidMessagesError(index, "unknown_role", repr(role)[:40])
    if index == 0 and role != "user":
        raise InvalidMessagesError(0, "first_not_user")
    if role == prev_role:
        raise InvalidMessagesError(index, "roles_not_alternating", f"two {role} messages in a row")
    return str(role)


def _check_content(index: int, role: str, content: object) -> Sequence[Block]:
    """Shape of one message's content; returns its blocks (empty for string content)."""
    if isinstance(content, str):
        if not content or content.isspace():
            raise InvalidMessagesError(index, "empty_content")
        return ()
    if content is None or (isinstance(content, list | tuple) and not content):
        raise InvalidMessagesError(index, "empty_content")
    if not isinstance(content, list | tuple):
        raise InvalidMessagesError(index, "bad_block_type", f"content is a {type(content).__name__}")
    allowed = _ALLOWED[role]
    for pos, block in enumerate(content):
        if type(block) is dict:  # fast paths for the common shapes; anything else takes the general checks
            kind = block.get("type")
            if kind == "text":
                text = block.get("text")
                if isinstance(text, str) and text and not text.isspace():
                    continue
            elif kind == "tool_result" and role == "user":
                tool_use_id = block.get("tool_use_id")
                inner = block.get("content")
                if isinstance(tool_use_id, str) and tool_use_id and (inner is None or isinstance(inner, str)):
                    continue
        _check_block(index, pos, block, allowed)
    return content


def _check_block(index: int, pos: int, block: object, allowed: frozenset[str]) -> None:
    if not isinstance(block, Mapping):
        raise InvalidMessagesError(index, "bad_block_type", f"block {pos} is not an object")
    kind = block.get("type")
    if not isinstance(kind, str) or kind not in allowed:
        raise InvalidMessagesError(index, "bad_block_type", f"block {pos} has type {repr(kind)[:40]}")
    problem = _block_problem(kind, block)
    if problem == "empty":
        raise InvalidMessagesError(index, "empty_text_block", f"block {pos}")
    if problem:
        raise InvalidMessagesError(index, "bad_block_type", f"block {pos} ({kind}): {problem}")
    if kind == "tool_result":
        _check_result_content(index, pos, block.get("content"))


def _block_problem(kind: object, block: Mapping[str, Any]) -> str:
    """'' when the block's required fields are there, 'empty' for blank text, else what is wrong."""
    if kind == "text":
        text = block.get("text")
        if not isinstance(text, str):
            return "text is not a string"
        return "empty" if not text or text.isspace() else ""
    if kind == "tool_use":
        if not isinstance(block.get("id"), str) or not block["id"]:
            return "no id"
        if not isinstance(block.get("name"), str):
            return "no name"
        return "" if isinstance(block.get("input"), Mapping) else "input is not an object"
    if kind == "tool_result":
        tool_use_id = block.get("tool_use_id")
        return "" if isinstance(tool_use_id, str) and tool_use_id else "no tool_use_id"
    if kind == "thinking":
        return "" if isinstance(block.get("thinking"), str) else "thinking is not a string"
    if kind == "redacted_thinking":
        return "" if isinstance(block.get("data"), str) else "data is not a string"
    if kind in ("image", "document"):
        return "" if isinstance(block.get("source"), Mapping) else "no source"
    return ""


def _check_result_content(index: int, pos: int, content: object) -> None:
    if content is None or isinstance(content, str):
        return  # the API accepts a result without content
    if not isinstance(content, list | tuple):
        raise InvalidMessagesError(index, "bad_block_type", f"block {pos} (tool_result): content type")
    for inner in content:
        _check_block(index, pos, inner, _TOOL_RESULT_BLOCKS)


def _tool_use_ids(index: int, blocks: Sequence[Block], seen: set[str]) -> list[str]:
    ids: list[str] = []
    for block in blocks:
        if block["type"] in ("tool_use", "server_tool_use", "mcp_tool_use"):
            tool_id = block.get("id")
            if not isinstance(tool_id, str):
                continue
            if tool_id in seen:
                raise InvalidMessagesError(index, "duplicate_tool_use_id", tool_id[:64])
            seen.add(tool_id)
            if block["type"] == "tool_use":
                ids.append(tool_id)
    return ids


def _check_results(index: int, blocks: Sequence[Block], pending: list[str]) -> None:
    expected = set(pending)
    answered: set[str] = set()
    other_seen = False
    for pos, block in enumerate(blocks):
        if block["type"] != "tool_result":
            other_seen = True
            continue
        tool_use_id = block["tool_use_id"]
        if tool_use_id not in expected:
            raise InvalidMessagesError(index, "orphan_tool_result", f"block {pos}: {tool_use_id[:64]}")
        if tool_use_id in answered:
            raise InvalidMessagesError(index, "duplicate_tool_use_id", f"two results for {tool_use_id[:64]}")
        if other_seen:
            raise InvalidMessagesError(index, "tool_result_not_first", f"block {pos}")
        answered.add(tool_use_id)
    if len(answered) < len(expected):
        missing = [tool_id for tool_id in pending if tool_id not in answered]
        raise InvalidMessagesError(index - 1, "missing_tool_result", _ids_detail(missing))


def _ids_detail(ids: Sequence[str]) -> str:
    shown = ", ".join(tool_id[:64] for tool_id in ids[:_DETAIL_IDS])
    more = len(ids) - _DETAIL_IDS
    return shown + (f" and {more} more" if more > 0 else "")
