"""Reading the provider's ``usage`` into our :class:`~lore_core.llm.Usage`, in one place.

Prices, billing, the sync client and (later) batch results all need the same split of cache writes by TTL.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from lore_core.llm import Usage

__all__ = ["usage_from_api"]


def usage_from_api(usage: object, *, default_write_ttl: Literal["5m", "1h"] = "5m") -> Usage:
    """Build a :class:`Usage` from an Anthropic ``usage`` (a JSON mapping or the SDK's ``Usage`` object).

    Cache writes are split by ``cache_creation.ephemeral_5m_input_tokens`` and ``ephemeral_1h_input_tokens``;
    any part of ``cache_creation_input_tokens`` the breakdown does not explain (all of it when there is no
    breakdown) is charged at ``default_write_ttl``, the TTL the request asked for. A :class:`Usage` is
    returned unchanged; missing or non-integer fields count as 0.

    Example::

        usage_from_api({"input_tokens": 10, "output_tokens": 2}).input_tokens   # 10
    """
    if isinstance(usage, Usage):
        return usage
    write_5m = write_1h = 0
    creation = _field(usage, "cache_creation")
    if creation is not None:
        write_5m = _int_field(creation, "ephemeral_5m_input_tokens")
        write_1h = _int_field(creation, "ephemeral_1h_input_tokens")
    unexplained = max(0, _int_field(usage, "cache_creation_input_tokens") - write_5m - write_1h)
    if default_write_ttl == "5m":
        write_5m += unexplained
    else:
        write_1h += unexplained
    return Usage(
        input_tokens=_int_field(usage, "input_tokens"),
        output_tokens=_int_field(usage, "output_tokens"),
        cache_read_tokens=_int_field(usage, "cache_read_input_tokens"),
        cache_write_5m_tokens=write_5m,
        cache_write_1h_tokens=write_1h,
    )


def _field(obj: object, name: str) -> object:
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _int_field(obj: object, name: str) -> int:
    value = _field(obj, name)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
