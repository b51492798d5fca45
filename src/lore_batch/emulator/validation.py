"""Request validation, following the real service where it matters to a client.

Every check returns a problem message (``str``) or ``None``. What is checked:

* ``model``: a string naming a known Claude family (:data:`KNOWN_MODEL_FAMILIES`), optionally followed
  by ``-``-separated suffixes such as a version or a date (``claude-sonnet-4-5-20250929``).
* ``max_tokens``: an integer ≥ 1.
* ``messages``: a non-empty list; roles ``user``/``assistant`` alternating and starting with ``user``;
  content a string or a list of blocks with a string ``type``; every ``tool_result`` answers a ``tool_use``
  id of the assistant message just before it.
* ``system``: absent, a string, or a list of ``text`` blocks.
* Batch items additionally refuse ``stream: true`` and any ``speed``.

The sync endpoint refuses ``stream: true`` too: the emulator does not stream.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "CUSTOM_ID_PATTERN",
    "KNOWN_MODEL_FAMILIES",
    "MAX_BATCH_BYTES",
    "MAX_BATCH_REQUESTS",
    "MAX_MESSAGE_BYTES",
    "batch_item_problem",
    "batch_requests_problem",
    "count_tokens_problem",
    "is_known_model",
    "message_problem",
]

CUSTOM_ID_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MAX_BATCH_REQUESTS = 100_000
MAX_BATCH_BYTES = 256 * 1024 * 1024
MAX_MESSAGE_BYTES = 32 * 1024 * 1024

KNOWN_MODEL_FAMILIES: tuple[str, ...] = (
    "claude-opus-4",
    "claude-sonnet-4",
    "claude-haiku-4",
    "claude-3-5-haiku",
)
"""Model families the emulator serves; an id is known if it is a family or a family plus ``-suffix`` parts."""

_SUFFIX = re.compile(r"(?:-[a-z0-9]+)*")


def is_known_model(model: object) -> bool:
    """Whether ``model`` is a string naming a known Claude model (see :data:`KNOWN_MODEL_FAMILIES`)."""
    if not isinstance(model, str):
        return False
    return any(
        model.startswith(family) and _SUFFIX.fullmatch(model[len(family) :]) is not None
        for family in KNOWN_MODEL_FAMILIES
    )


def _model_problem(params: Mapping[str, Any]) -> str | None:
    if "model" not in params:
        return "model: field required"
    if not is_known_model(params["model"]):
        return f"model: unknown model {params['model']!r}"
    return None


def _max_tokens_problem(params: Mapping[str, Any]) -> str | None:
    value = params.get("max_tokens")
    if value is None:
        return "max_tokens: field required"
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return "max_tokens: must be an integer greater than or equal to 1"
    return None


def _system_problem(params: Mapping[str, Any]) -> str | None:
    system = params.get("system")
    if system is None or isinstance(system, str):
        return None
    if not isinstance(system, list):
        return "system: must be a string or a list of text blocks"
    for index, block in enumerate(system):
        if (
            not isinstance(block, Mapping)
            or block.get("type") != "text"
            or not isinstance(block.get("text"), str)
        ):
            return f"system.{index}: must be a text block"
    return None


def _blocks(content: object) -> Sequence[Mapping[str, Any]] | None:
    if isinstance(content, str):
        return ()
    if isinstance(content, list) and all(
        isinstance(block, Mapping) and isinstance(block.get("type"), str) for block in content
    ):
        return content
    return None


def _messages_problem(params: Mapping[str, Any]) -> str | None:
    messages = params.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    expected = "user"
    open_tool_uses: set[str] = set()
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            return f"messages.{index}: must be an object"
        role = message.get("role")
        if role not in ("user", "assistant"):
            return f"messages.{index}.role: must be 'user' or 'assistant'"
        if role != expected:
            return "messages: roles must alternate between 'user' and 'assistant', starting with 'user'"
        blocks = _blocks(message.get("content"))
        if blocks is None:
            return f"messages.{index}.content: must be a string or a list of content blocks"
        if role == "user":
            answered = {b.get("tool_use_id") for b in blocks if b["type"] == "tool_result"}
            if not answered <= open_tool_uses:
                return f"messages.{index}: tool_result blocks must answer a tool_use in the previous message"
            open_tool_uses = set()
        else:
            open_tool_uses = {str(b.get("id")) for b in blocks if b["type"] == "tool_use"}
        expected = "assistant" if role == "user" else "user"
    return None


def message_problem(params: object) -> str | None:
    """Why ``POST /v1/messages`` refuses ``params`` (a 400), or ``None``."""
    if not isinstance(params, Mapping):
        return "request body must be a JSON object"
    if params.get("stream") is True:
        return "stream: the emulator does not stream; send stream=false"
    for check in (_model_problem, _max_tokens_problem, _messages_problem, _system_problem):
        problem = check(params)
        if problem is not None:
            return problem
    return None


def count_tokens_problem(params: object) -> str | None:
    """Why ``POST /v1/messages/count_tokens`` refuses ``params`` (a 400), or ``None``."""
    if not isinstance(params, Mapping):
        return "request body must be a JSON object"
    for check in (_model_problem, _messages_problem, _system_problem):
        problem = check(params)
        if problem is not None:
            return problem
    return None


def batch_item_problem(params: object) -> str | None:
    """Why a batch item's ``params`` end as an ``invalid_request_error`` result, or ``None``.

    Checked when processing ends, as the real service validates params asynchronously.
    """
    if not isinstance(params, Mapping):
        return "params: must be an object"
    if params.get("stream") is True:
        return "stream: streaming is not supported in Message Batches"
    if params.get("speed") is not None:
        return "speed: not supported in Message Batches"
    return message_problem(params)


def batch_requests_problem(requests: object) -> str | None:
    """Why ``POST /v1/messages/batches`` refuses its ``requests`` at once (a 400), or ``None``.

    Checks the count (1 to 100,000), that each item is ``{"custom_id", "params"}`` with an object
    ``params``, and that every custom_id matches ``^[a-zA-Z0-9_-]{1,64}$`` and is unique within the batch.
    """
    if not isinstance(requests, list):
        return "requests: field required (a list)"
    if not 1 <= len(requests) <= MAX_BATCH_REQUESTS:
        return f"requests: a batch holds 1 to {MAX_BATCH_REQUESTS} requests, got {len(requests)}"
    seen: set[str] = set()
    for index, item in enumerate(requests):
        if not isinstance(item, Mapping):
            return f"requests.{index}: must be an object"
        custom_id = item.get("custom_id")
        if not isinstance(custom_id, str) or CUSTOM_ID_PATTERN.fullmatch(custom_id) is None:
            return f"requests.{index}.custom_id: must match ^[a-zA-Z0-9_-]{{1,64}}$"
        if custom_id in seen:
            return f"requests.{index}.custom_id: duplicate custom_id {custom_id!r} in this batch"
        seen.add(custom_id)
        if not isinstance(item.get("params"), Mapping):
            return f"requests.{index}.params: must be an object"
    return None
