"""Pure grouping and splitting of queued items into batches (BATCH.md 5.1).

Items are grouped by ``(credential fingerprint, provider, workspace)``; a group is split in enqueue order at
``max_requests`` requests or ``max_bytes`` bytes (each request counted as its params' compact JSON plus 64
bytes). A lone item over the byte cap cannot go in any batch: it goes to fallback.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Generic, Protocol, TypeVar

__all__ = ["MAX_BATCH_BYTES", "MAX_BATCH_REQUESTS", "Split", "group_by", "split"]

# The API allows 256 MB per batch; we stop short to leave room for the JSON wrapper.
MAX_BATCH_BYTES: Final = 250_000_000
# The API allows at most 100,000 requests per batch.
MAX_BATCH_REQUESTS: Final = 100_000


class _Sized(Protocol):
    @property
    def size(self) -> int: ...


_K = TypeVar("_K", bound=Hashable)
_T = TypeVar("_T")
_S = TypeVar("_S", bound=_Sized)


def group_by(items: Iterable[_T], key: Callable[[_T], _K]) -> dict[_K, list[_T]]:
    """Items by ``key(item)``, each group in its original order; groups in order of first appearance.

    Example::

        group_by(["a1", "b1", "a2"], lambda s: s[0])  # {"a": ["a1", "a2"], "b": ["b1"]}
    """
    groups: dict[_K, list[_T]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return groups


@dataclass(frozen=True, slots=True)
class Split(Generic[_S]):
    """What :func:`split` made of a group: the batches to create, and the items too big for any batch."""

    batches: tuple[tuple[_S, ...], ...]
    oversize: tuple[_S, ...]


def split(items: Sequence[_S], *, max_requests: int, max_bytes: int) -> Split[_S]:
    """Cut ``items`` (in order) into batches of at most ``max_requests`` items and ``max_bytes`` bytes.

    An item whose own ``size`` exceeds ``max_bytes`` is set aside in ``oversize``.

    Example::

        split(items, max_requests=2, max_bytes=MAX_BATCH_BYTES).batches  # pairs, in enqueue order
    """
    batches: list[tuple[_S, ...]] = []
    oversize: list[_S] = []
    current: list[_S] = []
    current_bytes = 0
    for item in items:
        if item.size > max_bytes:
            oversize.append(item)
            continue
        if current and (len(current) >= max_requests or current_bytes + item.size > max_bytes):
            batches.append(tuple(current))
            current, current_bytes = [], 0
        current.append(item)
        current_bytes += item.size
    if current:
        batches.append(tuple(current))
    return Split(batches=tuple(batches), oversize=tuple(oversize))
