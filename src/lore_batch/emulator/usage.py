"""Deterministic token counts and a simple prompt-cache model.

Counting: the prompt is the compact JSON (``separators=(",", ":")``, ``ensure_ascii=False``) of
``{"system", "messages", "tools"}`` (keys present in the request only); its tokens are
``ceil(utf8_bytes / 4)``.
``count_tokens`` returns exactly that number, and a message's ``input_tokens + cache_creation_input_tokens +
cache_read_input_tokens`` always adds up to it. Output tokens are ``ceil(utf8_bytes / 4)`` of the text blocks
(other blocks count as their compact JSON), at least 1.

Prompt cache: when ``system`` is a list of blocks and one carries ``cache_control``, the cached prefix is
the system blocks up to and including the last such block (its identity also covers ``model`` and ``tools``).
Its tokens are ``ceil(bytes of the blocks' compact JSON / 4)``, capped at the prompt's tokens. The first time
a credential sends
that exact prefix for a model it is reported as a cache write (``cache_creation_input_tokens`` and
``cache_creation.ephemeral_5m_input_tokens`` or ``ephemeral_1h_input_tokens`` by the block's ``ttl``, default
``5m``); later sends within the TTL (refreshed on each hit) are cache reads. There is no minimum cacheable
length and ``cache_control`` on messages or tools is ignored.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from lore_core.llm import Usage

__all__ = [
    "CachePrefix",
    "PromptCache",
    "cache_prefix",
    "count_output_tokens",
    "count_prompt_tokens",
    "token_count",
    "usage_json",
]

_TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def token_count(text: str) -> int:
    """``ceil(utf8_bytes / 4)``."""
    return math.ceil(len(text.encode()) / 4)


def count_prompt_tokens(params: Mapping[str, Any]) -> int:
    """Tokens of the prompt: compact JSON of system, messages and tools (those present)."""
    prompt = {key: params[key] for key in ("system", "messages", "tools") if key in params}
    return token_count(_compact(prompt))


def count_output_tokens(content: Sequence[Mapping[str, Any]]) -> int:
    """Tokens of generated content blocks (at least 1, as the real service reports)."""
    total = 0
    for block in content:
        text = block.get("text") if block.get("type") == "text" else None
        total += token_count(text if isinstance(text, str) else _compact(block))
    return max(total, 1)


@dataclass(frozen=True, slots=True)
class CachePrefix:
    """The cacheable prefix of one request: its identity, size and TTL."""

    key: str
    tokens: int
    ttl: Literal["5m", "1h"]


def cache_prefix(params: Mapping[str, Any]) -> CachePrefix | None:
    """The request's cacheable prefix, or ``None`` when no system block carries ``cache_control``."""
    system = params.get("system")
    if not isinstance(system, list):
        return None
    marked = [
        i for i, block in enumerate(system) if isinstance(block, Mapping) and block.get("cache_control")
    ]
    if not marked:
        return None
    last = marked[-1]
    blocks = system[: last + 1]
    control = system[last]["cache_control"]
    ttl: Literal["5m", "1h"] = "1h" if isinstance(control, Mapping) and control.get("ttl") == "1h" else "5m"
    prefix_json = _compact({"model": params.get("model"), "tools": params.get("tools"), "system": blocks})
    key = hashlib.sha256(prefix_json.encode()).hexdigest()
    tokens = min(token_count(_compact(blocks)), count_prompt_tokens(params))
    return CachePrefix(key=key, tokens=tokens, ttl=ttl)


class PromptCache:
    """Which prefixes each credential has cached, and until when (emulator time)."""

    __slots__ = ("_expiry",)

    def __init__(self) -> None:
        self._expiry: dict[tuple[str, str], float] = {}

    def usage(self, params: Mapping[str, Any], output_tokens: int, *, credential_fp: str, at: float) -> Usage:
        """The usage of one call at ``at``, updating the cache as a real call would."""
        total = count_prompt_tokens(params)
        prefix = cache_prefix(params)
        if prefix is None:
            return Usage(input_tokens=total, output_tokens=output_tokens)
        slot = (credential_fp, prefix.key)
        hit = self._expiry.get(slot, -math.inf) > at
        self._expiry[slot] = at + _TTL_SECONDS[prefix.ttl]
        rest = total - prefix.tokens
        if hit:
            return Usage(input_tokens=rest, output_tokens=output_tokens, cache_read_tokens=prefix.tokens)
        if prefix.ttl == "1h":
            return Usage(input_tokens=rest, output_tokens=output_tokens, cache_write_1h_tokens=prefix.tokens)
        return Usage(input_tokens=rest, output_tokens=output_tokens, cache_write_5m_tokens=prefix.tokens)


def usage_json(usage: Usage, *, service_tier: Literal["standard", "batch"]) -> dict[str, Any]:
    """The wire ``usage`` object of a message."""
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": usage.cache_write_5m_tokens + usage.cache_write_1h_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": usage.cache_write_5m_tokens,
            "ephemeral_1h_input_tokens": usage.cache_write_1h_tokens,
        },
        "service_tier": service_tier,
    }
