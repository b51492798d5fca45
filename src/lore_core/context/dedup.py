"""The dedup pre-pass (ENGINE.md 8.6) as a backward stream: :class:`Deduper` visits messages from the tail.

Whether an output is replaced depends only on *later* messages, so visiting the history from its end and
stopping wherever the window stops gives exactly the result of a whole-history pass on that window, at a cost
proportional to the messages visited. Two rules, file reads first:

* a read of a file (``file_read_tools``) is superseded when a later successful read of the same path covers
  it: ``[earlier read of <path>[ lines a-b | from line a]: superseded by a later read]``;
* an output of ``dedup_min_chars`` (600) or more whose (tool name, content hash) occurs again later:
  ``[duplicate output: same as a later <tool> result]``.

Replacement keeps the ``tool_result`` block's keys (``tool_use_id``, ``is_error``, ``cache_control``) and
never removes a block; images inside a replaced output go with it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from lore_core.config import LoreConfig
from lore_core.context.blocks import has_output, replace_blocks, result_text, tool_calls, with_content
from lore_core.messages import Block, Message, canonical_json

__all__ = ["DedupMemo", "Deduper", "ReadRange", "read_range"]

_PATH_KEYS = ("path", "file_path", "filePath", "file")


@dataclass(frozen=True, slots=True)
class ReadRange:
    """The lines a file read returned: ``start`` (1-based, default 1) to ``end`` (None: to the end)."""

    path: str
    start: int
    end: int | None

    @property
    def whole(self) -> bool:
        """A read of the whole file (no offset past line 1, no limit)."""
        return self.start == 1 and self.end is None

    def covers(self, earlier: ReadRange) -> bool:
        """Whether this (later) read returned every line of ``earlier`` (same path assumed).

        A whole-file read covers all; a ranged read never covers a whole file; an open-ended read covers when
        its start is <= the earlier start; a bounded read must contain the earlier (bounded) range.
        """
        if self.whole:
            return True
        if earlier.whole:
            return False
        if self.end is None:
            return self.start <= earlier.start
        return earlier.end is not None and self.start <= earlier.start and earlier.end <= self.end

    def label(self) -> str:
        """``<path>``, ``<path> lines a-b`` or ``<path> from line a``."""
        if self.end is not None:
            return f"{self.path} lines {self.start}-{self.end}"
        return self.path if self.start == 1 else f"{self.path} from line {self.start}"


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def read_range(call: Block) -> ReadRange | None:
    """The :class:`ReadRange` of a file-read ``tool_use`` block, or None when its input names no file.

    Input keys: ``path`` / ``file_path`` / ``filePath`` / ``file``, ``offset`` (default 1), ``limit`` (none:
    to the end). An offset or limit that is not a whole number, or a limit < 1, makes the read unknown (None).
    Example: ``read_range({"type": "tool_use", "input": {"path": "a.py", "offset": 5}}).label() ==
    "a.py from line 5"``.
    """
    arguments = call.get("input")
    if not isinstance(arguments, Mapping):
        return None
    path = next((v for k in _PATH_KEYS if isinstance(v := arguments.get(k), str) and v), None)
    if path is None:
        return None
    start, limit = 1, None
    if arguments.get("offset") is not None:
        offset = _as_int(arguments["offset"])
        if offset is None:
            return None
        start = max(1, offset)
    if arguments.get("limit") is not None:
        limit = _as_int(arguments["limit"])
        if limit is None or limit < 1:
            return None
    return ReadRange(path, start, None if limit is None else start + limit - 1)


def _content_key(content: object) -> str | None:
    """A hash of a tool output: of the text itself for a string, else of its canonical JSON."""
    if isinstance(content, str):
        return "s" + hashlib.sha256(content.encode("utf-8", "surrogatepass")).hexdigest()
    try:
        payload = canonical_json(content)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return "j" + hashlib.sha256(payload).hexdigest()


_Fact = tuple[int, str, "ReadRange | None", bool, "str | None"]
"""One ``tool_result`` with output, as the dedup rules read it: (block position, tool name, the file read it
answers (only for a ``file_read_tools`` call), whether it is an error, its content hash (only for an output of
``dedup_min_chars`` or more)). A message's facts are listed from its last block to its first."""

DedupMemo = dict[int, tuple[Message, "Message | None", tuple[str, ...], int, tuple[_Fact, ...]]]
"""Per-index facts kept across calls by the session (:attr:`History.memo`), valid while the message and the one
before it are the very same objects and the config's dedup settings are the same."""


def _facts(message: Message, previous: Message | None, config: LoreConfig) -> tuple[_Fact, ...]:
    """The dedup facts of ``message`` (empty when it is not a user message with tool outputs)."""
    content = message.get("content")
    if message.get("role") != "user" or not isinstance(content, list | tuple):
        return ()
    calls: dict[str, Block] | None = None
    facts: list[_Fact] = []
    read_tools = config.file_read_tools
    min_chars = config.dedup_min_chars
    for position in reversed(range(len(content))):
        block = content[position]
        if not isinstance(block, Mapping) or block.get("type") != "tool_result":
            continue
        output = block.get("content")
        if not has_output(output):
            continue
        if calls is None:
            calls = tool_calls(previous)
        call = calls.get(str(block.get("tool_use_id")))
        name = str(call.get("name", "")) if call is not None else ""
        current = read_range(call) if call is not None and name in read_tools else None
        key = _content_key(output) if len(result_text(output)) >= min_chars else None
        facts.append((position, name, current, bool(block.get("is_error")), key))
    return tuple(facts)


class Deduper:
    """Backward-streaming dedup state: call :meth:`visit` on messages from the last one towards the first.

    ``memo`` (optional) keeps each message's dedup facts between calls, by index (see :data:`DedupMemo`); the
    results are the same with or without it.

    Example::

        deduper = Deduper(config=LoreConfig())
        for i in reversed(range(len(messages))):
            out = deduper.visit(messages[i], messages[i - 1] if i else None, replace=i < stop)
    """

    __slots__ = ("_config", "_memo", "_read_tools", "_reads", "_seen")

    def __init__(self, *, config: LoreConfig, memo: DedupMemo | None = None) -> None:
        self._config = config
        self._memo = memo
        self._read_tools = tuple(config.file_read_tools)
        self._seen: set[tuple[str, str]] = set()  # (tool, content hash) of large outputs met later
        self._reads: dict[str, list[ReadRange]] = {}  # successful later reads, none covering another

    def visit(
        self, message: Message, previous: Message | None, *, replace: bool, index: int | None = None
    ) -> Message:
        """Record ``message``'s outputs; with ``replace``, return it with the superseded ones replaced.

        ``previous`` is the message before it (the assistant whose ``tool_use`` blocks name the tools). The
        message itself is returned when nothing changed. ``index`` (the message's position) lets the memo
        keep its facts.
        """
        memo = self._memo
        if memo is not None and index is not None:
            entry = memo.get(index)
            config = self._config
            if (
                entry is not None
                and entry[0] is message
                and entry[1] is previous
                and entry[3] == config.dedup_min_chars
                and entry[2] == self._read_tools
            ):
                facts = entry[4]
            else:
                facts = _facts(message, previous, config)
                memo[index] = (message, previous, self._read_tools, config.dedup_min_chars, facts)
        else:
            facts = _facts(message, previous, self._config)
        if not facts:
            return message
        replacements: dict[int, Block] = {}
        for position, name, current, is_error, key in facts:
            note = self._note_from(name, current, is_error, key)
            if note is not None and replace:
                replacements[position] = with_content(message["content"][position], note)
        return replace_blocks(message, replacements)

    def _note_from(self, name: str, current: ReadRange | None, is_error: bool, key: str | None) -> str | None:
        note: str | None = None
        if current is not None:
            later = self._reads.setdefault(current.path, [])
            if any(read.covers(current) for read in later):
                note = f"[earlier read of {current.label()}: superseded by a later read]"
            elif not is_error:
                later.append(current)
        if key is not None:
            if note is None and (name, key) in self._seen:
                note = f"[duplicate output: same as a later {name or 'tool'} result]"
            self._seen.add((name, key))
        return note
