"""The one loss convention: what replaces a tool output that was stripped or truncated.

The transform (when it strips old tool outputs) and the observer (when a result is too long to show) use the
same annotation, so the model sees one convention everywhere (ENGINE.md 8.6):

``[output omitted: <tool>, <N> lines[, had errors][, paths: a, b, c]]`` followed by the configured hint.

Scans over tool output are bounded (pitfall 30): paths are looked for only when the text contains ``/``, and
only in its first 64 KB.

When the request offers the model a ``recall`` tool (:func:`offers_recall`; ``lore_core.recall_tool()``
defines it), the transform appends :data:`RECALL_HINT` to every annotation (unless ``strip_hint`` is set) and
the layer note says the same: what was left out can be searched with the recall tool.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

__all__ = [
    "ERROR_WORDS",
    "RECALL_HINT",
    "RECALL_TOOL",
    "find_paths",
    "has_errors",
    "line_count",
    "offers_recall",
    "strip_annotation",
]

ERROR_WORDS: Final = ("error", "fail", "failed", "failure", "exception", "panic", "traceback")
"""Words that mark an output as having had errors (ENGINE.md section 7, error lines)."""

RECALL_TOOL: Final = "recall"
"""The name of the recall tool (``lore_core.recall_tool()``)."""

RECALL_HINT: Final = " (search the full history with the recall tool)"
"""Appended to each loss annotation when the model has the recall tool; the layer note uses the same words."""

# Regex scans over tool output look at no more than this much text (quadratic backtracking was seen upstream).
SCAN_LIMIT: Final = 64 * 1024
MAX_PATHS: Final = 5

_ERROR_RE = re.compile(r"\b(?:" + "|".join(ERROR_WORDS) + r")", re.IGNORECASE)
# dir/.../name.ext with a 1-5 character extension; no spaces, quotes or brackets inside.
_PATH_RE = re.compile(r"(?<![\w./-])((?:\.{0,2}/)?(?:[\w.@+-]+/)+[\w.@+-]*\.[A-Za-z0-9]{1,5})(?![\w/])")


def line_count(text: str) -> int:
    """Lines in ``text`` (an empty text has 0, a text without newline has 1)."""
    if not text:
        return 0
    return text.count("\n") + (0 if text.endswith("\n") else 1)


def has_errors(text: str) -> bool:
    """Whether the first 64 KB of ``text`` contains an error word (error, fail, exception, panic, ...)."""
    return _ERROR_RE.search(text, 0, SCAN_LIMIT) is not None


def find_paths(text: str, *, limit: int = MAX_PATHS) -> list[str]:
    """The first ``limit`` unique file paths in the first 64 KB of ``text`` (only scanned when it has ``/``).

    Example::

        find_paths("edited src/app/main.py and tests/t.py")   # ['src/app/main.py', 'tests/t.py']
    """
    if "/" not in text:
        return []
    found: list[str] = []
    for match in _PATH_RE.finditer(text, 0, SCAN_LIMIT):
        path = match.group(1)
        if path not in found:
            found.append(path)
            if len(found) >= limit:
                break
    return found


def strip_annotation(tool: str, text: str, *, hint: str = "") -> str:
    """The text that replaces a stripped tool output: never empty, never longer than a few hundred chars.

    Example::

        strip_annotation("bash", "FAILED tests/test_x.py\\n2 failed")
        # '[output omitted: bash, 2 lines, had errors, paths: tests/test_x.py]'
    """
    parts = [f"output omitted: {tool or 'tool'}", f"{line_count(text)} lines"]
    if has_errors(text):
        parts.append("had errors")
    paths = find_paths(text)
    if paths:
        parts.append("paths: " + ", ".join(paths))
    return "[" + ", ".join(parts) + "]" + hint


def offers_recall(tools: Iterable[Mapping[str, Any]] | None) -> bool:
    """Whether a request's ``tools`` include the recall tool (by name). Example: ``offers_recall([recall_tool()])``."""
    return any(isinstance(tool, Mapping) and tool.get("name") == RECALL_TOOL for tool in tools or ())
