"""Checks shared by every worker output (ENGINE.md section 7a): the ``<observations>`` block and the typed
rejection that makes a worker call count as failed."""

from __future__ import annotations

import re

from lore_core.errors import LoreError

__all__ = ["OutputRejected", "observations_block"]

_OPEN_RE = re.compile(r"<observations>", re.IGNORECASE)
_CLOSE_RE = re.compile(r"</observations>", re.IGNORECASE)


class OutputRejected(LoreError):
    """A worker's output failed its deterministic checks; nothing is written and the failure is recorded.

    ``reason`` is a short code (``no_observations_block``, ``expansion``, ``not_json`` ...).
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"worker output rejected: {reason}" + (f" ({detail})" if detail else ""))


def observations_block(text: str) -> str:
    """The body of the single ``<observations>...</observations>`` block in ``text``, stripped.

    Raises:
        OutputRejected: no block (``no_observations_block``), more than one (``several_observations_blocks``),
            or an empty one (``empty_observations``).

    Example::

        observations_block("<observations>\\nDate: Feb 25, 2026\\n</observations>")   # 'Date: Feb 25, 2026'
    """
    opens = list(_OPEN_RE.finditer(text))
    if not opens:
        raise OutputRejected("no_observations_block")
    if len(opens) > 1:
        raise OutputRejected("several_observations_blocks")
    close = _CLOSE_RE.search(text, opens[0].end())
    if close is None:
        raise OutputRejected("no_observations_block", "unclosed")
    body = text[opens[0].end() : close.start()].strip()
    if not body:
        raise OutputRejected("empty_observations")
    return body
