"""Stored text and meta of a message (ENGINE.md section 2, "Stored text").

Blocks become chunks joined by :data:`CHUNK_SEPARATOR` (tool payloads contain newlines and bracket text, so a
plain newline would be ambiguous): text verbatim; thinking as ``[thinking] <text>`` (signature not stored);
redacted thinking not stored; ``tool_use`` as ``[tool:<name>] <compact JSON input>``; ``tool_result`` as
``[result:<name>] <text>`` or ``[result:<name> error] <text>``; image / document as ``[image <media_type>]`` /
``[document <title or media_type>]``. Base64 payloads, signatures and encrypted blobs are never stored.

A ``tool_result`` names its tool only by ``tool_use_id``; the name comes from the preceding assistant message,
through :func:`tool_names_by_id`. Pure functions, no I/O, the caller's dicts are never modified.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lore_core.messages import Block, Content, Message, compact_json

__all__ = [
    "CHUNK_SEPARATOR",
    "flatten_messages",
    "flatten_text",
    "message_meta",
    "tool_names_by_id",
]

CHUNK_SEPARATOR = "\n\x1f"
"""Joins the chunks of one message's stored text (a unit separator after a newline: unambiguous)."""

UNKNOWN_TOOL = "unknown"
"""The tool name shown for a result whose ``tool_use`` is not in the mapping given."""

_TOOL_CALLS = frozenset({"tool_use", "server_tool_use", "mcp_tool_use"})
# Keys whose values are opaque (base64, signatures, encrypted blobs): dropped from server-tool results.
_OPAQUE_KEYS = frozenset({"cache_control", "data", "encrypted_content", "encrypted_index", "signature"})
_NO_NAMES: Mapping[str, str] = {}


def tool_names_by_id(content: Content) -> dict[str, str]:
    """Map each tool call id of an (assistant) message's content to its tool name.

    Covers ``tool_use``, ``server_tool_use`` and ``mcp_tool_use`` blocks; string content gives ``{}``.
    Example: ``tool_names_by_id([{"type": "tool_use", "id": "t1", "name": "read", "input": {}}]) == {"t1":
    "read"}``.
    """
    if isinstance(content, str):
        return {}
    return {
        str(block["id"]): str(block.get("name", UNKNOWN_TOOL))
        for block in content
        if isinstance(block, Mapping) and block.get("type") in _TOOL_CALLS and "id" in block
    }


def flatten_text(content: Content, *, tool_names: Mapping[str, str] | None = None) -> str:
    """The stored text of one message's content.

    ``tool_names`` maps ``tool_use_id`` to tool name for ``tool_result`` blocks (build it with
    :func:`tool_names_by_id` on the preceding assistant message); a missing id shows as ``unknown``. Never
    raises on odd blocks: an unknown block type becomes ``[<type>]``.

    Example: ``flatten_text([{"type": "text", "text": "a"}, {"type": "thinking", "thinking": "b"}])
    == "a\\n\\x1f[thinking] b"``.
    """
    if isinstance(content, str):
        return content
    names = _NO_NAMES if tool_names is None else tool_names
    chunks = [chunk for block in content if (chunk := _block_text(block, names))]
    return CHUNK_SEPARATOR.join(chunks)


def flatten_messages(messages: Sequence[Message]) -> list[str]:
    """:func:`flatten_text` of every message, each ``tool_result`` named from the message before it, in O(n).

    Example: ``flatten_messages([{"role": "user", "content": "hi"}]) == ["hi"]``.
    """
    out: list[str] = []
    names: Mapping[str, str] = _NO_NAMES
    for message in messages:
        content = message["content"]
        if message.get("role") == "assistant":
            out.append(flatten_text(content))
            names = tool_names_by_id(content)
        else:
            out.append(flatten_text(content, tool_names=names))
            names = _NO_NAMES
    return out


def message_meta(content: Content, *, tool_names: Mapping[str, str] | None = None) -> dict[str, list[str]]:
    """Small facts for the ``meta`` column: ``tools`` used and ``media`` carried, each deduplicated in order.

    ``tools`` lists tool call names and, through ``tool_names``, the tools whose results the message holds;
    ``media`` lists media types (``image/png``, ``application/pdf``), or ``<kind>/<source type>`` when the
    source has none (``image/url``), also inside tool results. Empty keys are left out.

    Example: ``message_meta([{"type": "tool_use", "id": "t", "name": "ls", "input": {}}]) == {"tools":
    ["ls"]}``.
    """
    if isinstance(content, str):
        return {}
    names = _NO_NAMES if tool_names is None else tool_names
    tools: dict[str, None] = {}
    media: dict[str, None] = {}
    for block in content:
        kind = _type(block)
        if kind in _TOOL_CALLS:
            tools[str(block.get("name", UNKNOWN_TOOL))] = None
        elif kind == "tool_result":
            tools[names.get(str(block.get("tool_use_id")), UNKNOWN_TOOL)] = None
            inner = block.get("content")
            for item in inner if isinstance(inner, list | tuple) else ():
                if isinstance(item, Mapping) and item.get("type") in ("image", "document"):
                    media[_media_label(item)] = None
        elif kind in ("image", "document"):
            media[_media_label(block)] = None
    meta: dict[str, list[str]] = {}
    if tools:
        meta["tools"] = list(tools)
    if media:
        meta["media"] = list(media)
    return meta


def _type(block: object) -> str:
    return str(block.get("type")) if isinstance(block, Mapping) else ""


def _block_text(block: Block, names: Mapping[str, str]) -> str:
    kind = _type(block)
    if kind == "text":
        return str(block.get("text", ""))
    if kind == "thinking":
        return f"[thinking] {block.get('thinking', '')}"
    if kind == "redacted_thinking":
        return ""
    if kind in _TOOL_CALLS:
        return f"[tool:{block.get('name', UNKNOWN_TOOL)}] {compact_json(block.get('input'))}"
    if kind == "tool_result":
        name = names.get(str(block.get("tool_use_id")), UNKNOWN_TOOL)
        flag = " error" if block.get("is_error") else ""
        return _labelled(f"[result:{name}{flag}]", _result_text(block.get("content")))
    if kind.endswith("_tool_result"):  # server tools: web search, code execution, MCP connector
        return _labelled(f"[result:{kind}]", compact_json(_visible(block.get("content"))))
    return _media_or_other(block, kind)


def _media_or_other(block: Block, kind: str) -> str:
    if kind == "image":
        return f"[image {_source_label(block)}]"
    if kind == "document":
        title = block.get("title")
        return f"[document {title if isinstance(title, str) and title else _source_label(block)}]"
    if kind == "search_result":
        title = block.get("title")
        head = f"[search_result {title}]" if isinstance(title, str) and title else "[search_result]"
        return _labelled(head, _result_text(block.get("content")))
    return f"[{kind or 'block'}]"


def _result_text(content: object) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list | tuple):
        return compact_json(_visible(content))
    return "\n".join(chunk for item in content if (chunk := _block_text(item, _NO_NAMES)))


def _labelled(label: str, body: str) -> str:
    return f"{label} {body}" if body else label


def _source_label(block: Block) -> str:
    source = block.get("source")
    if not isinstance(source, Mapping):
        return "unknown"
    media_type = source.get("media_type")
    if isinstance(media_type, str) and media_type:
        return media_type
    return str(source.get("type", "unknown"))


def _media_label(block: Block) -> str:
    label = _source_label(block)
    return label if "/" in label else f"{block.get('type')}/{label}"


def _visible(value: Any) -> Any:
    """A copy of a server-tool payload without opaque values (base64, signatures, encrypted content)."""
    if isinstance(value, Mapping):
        return {k: _visible(v) for k, v in value.items() if k not in _OPAQUE_KEYS}
    if isinstance(value, list | tuple):
        return [_visible(v) for v in value]
    return value
