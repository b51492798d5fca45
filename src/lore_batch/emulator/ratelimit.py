"""The batch requests-per-minute limit: a sliding 60-second window per credential, on emulator time."""

from __future__ import annotations

import math
from collections import deque

__all__ = ["RateLimiter"]

_WINDOW_SECONDS = 60.0


class RateLimiter:
    """Counts accepted requests per key over the last minute. Refused requests do not count."""

    __slots__ = ("_hits",)

    def __init__(self) -> None:
        self._hits: dict[str, deque[float]] = {}

    def admit(self, key: str, *, limit: int | None, now: float) -> int | None:
        """Record one request for ``key`` and return ``None``; when full, return the seconds to wait."""
        if limit is None:
            return None
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - _WINDOW_SECONDS:
            hits.popleft()
        if len(hits) >= limit:
            return max(1, math.ceil(hits[0] + _WINDOW_SECONDS - now))
        hits.append(now)
        return None
