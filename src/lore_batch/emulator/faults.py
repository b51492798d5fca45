"""Scripted, seeded faults: what goes wrong, on which endpoint, how many times.

::

    emu.faults.fail_next("batch_create", 429, retry_after=30)     # the next create is rate limited
    emu.faults.fail_next("batch_retrieve", 529, count=2)          # two poll failures
    emu.faults.drop_connection("batch_create")                   # created, then the connection drops
    emu.faults.item_outcomes(errored=0.2, error_type="overloaded_error")
    emu.faults.result_lines(malformed=1, dropped=1)              # the next download is corrupted
    emu.faults.truncate_results()                                # the next download stops mid-stream
"""

from __future__ import annotations

import enum
import random
from collections import deque
from dataclasses import dataclass
from typing import Final, Literal, get_args

from lore_core.errors import ConfigError

__all__ = [
    "BATCH_ENDPOINTS",
    "ENDPOINTS",
    "UNSET",
    "DownloadFaults",
    "Endpoint",
    "FaultPlan",
    "ItemFault",
    "OutcomeRates",
    "ScriptedFailure",
    "error_type_for",
]

Endpoint = Literal[
    "messages",
    "count_tokens",
    "batch_create",
    "batch_retrieve",
    "batch_list",
    "batch_cancel",
    "batch_results",
    "batch_delete",
]
ENDPOINTS: Final[tuple[Endpoint, ...]] = get_args(Endpoint)
BATCH_ENDPOINTS: Final[frozenset[Endpoint]] = frozenset(e for e in ENDPOINTS if e.startswith("batch_"))

ItemFault = Literal["errored", "expired", "canceled"]

_ERROR_TYPES: Final[dict[int, str]] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_DEFAULT_RETRY_AFTER = 1.0


class _Unset(enum.Enum):
    UNSET = "UNSET"


UNSET: Final = _Unset.UNSET
"""Default of ``retry_after``: 1 second for a 429, no header otherwise. ``None`` means no header."""


def error_type_for(status: int) -> str:
    """The Anthropic error ``type`` for an HTTP status (``api_error`` for unlisted 5xx)."""
    if status in _ERROR_TYPES:
        return _ERROR_TYPES[status]
    return "api_error" if status >= 500 else "invalid_request_error"


@dataclass(frozen=True, slots=True, kw_only=True)
class ScriptedFailure:
    """One scripted error answer."""

    status: int
    error_type: str
    retry_after: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class OutcomeRates:
    """Per-item fault probabilities, drawn with each batch's seeded generator."""

    errored: float = 0.0
    error_type: str = "api_error"
    expired: float = 0.0
    canceled: float = 0.0

    def draw(self, rng: random.Random) -> ItemFault | None:
        """The fault for one item, or ``None`` (one draw per item, always, so outcomes stay reproducible)."""
        roll = rng.random()
        bands: tuple[tuple[ItemFault, float], ...] = (
            ("errored", self.errored),
            ("expired", self.expired),
            ("canceled", self.canceled),
        )
        for fault, rate in bands:
            if roll < rate:
                return fault
            roll -= rate
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class DownloadFaults:
    """What to do to one results download."""

    malformed: int = 0
    dropped: int = 0
    truncate: bool = False
    extra: tuple[str, ...] = ()

    def apply(self, lines: list[str], rng: random.Random) -> list[str]:
        """Drop ``dropped`` lines and cut ``malformed`` others in half (distinct lines, seeded choice); the
        ``extra`` raw lines go in the middle."""
        if self.extra:
            middle = len(lines) // 2
            lines = [*lines[:middle], *self.extra, *lines[middle:]]
        if not (self.malformed or self.dropped) or not lines:
            return lines
        picked = rng.sample(range(len(lines)), min(len(lines), self.malformed + self.dropped))
        dropped = set(picked[: self.dropped])
        malformed = set(picked[self.dropped :])
        out: list[str] = []
        for index, line in enumerate(lines):
            if index in dropped:
                continue
            out.append(line[: len(line) // 2] if index in malformed else line)
        return out


class FaultPlan:
    """The emulator's fault script. Scripted failures and drops are consumed per call, in order."""

    __slots__ = (
        "_dropped_lines",
        "_drops",
        "_early_counts",
        "_extra_downloads",
        "_extra_lines",
        "_failures",
        "_malformed",
        "_rates",
        "_truncations",
        "rng",
    )

    ENDPOINTS: Final[tuple[Endpoint, ...]] = ENDPOINTS
    """The endpoint names ``fail_next`` and ``drop_connection`` accept."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(f"faults:{seed}")
        self._failures: dict[Endpoint, deque[ScriptedFailure]] = {e: deque() for e in ENDPOINTS}
        self._drops: dict[Endpoint, deque[bool]] = {e: deque() for e in ENDPOINTS}
        self._rates = OutcomeRates()
        self._malformed = 0
        self._dropped_lines = 0
        self._truncations = 0
        self._extra_lines: tuple[str, ...] = ()
        self._extra_downloads = 0
        self._early_counts = 0

    def fail_next(
        self,
        endpoint: Endpoint,
        status: int,
        *,
        count: int = 1,
        retry_after: float | _Unset | None = UNSET,
        error_type: str | None = None,
    ) -> None:
        """The next ``count`` calls to ``endpoint`` answer ``status`` with an Anthropic error body.

        ``error_type`` defaults from the status (429 ``rate_limit_error``, 529 ``overloaded_error``, …).
        ``retry_after`` (seconds) sets the ``retry-after`` header; by default a 429 sends 1 and others none.
        Poll failures are ``fail_next("batch_retrieve", ...)``.

        Raises:
            ConfigError: unknown endpoint, a status outside 400-599, or ``count < 1``.
        """
        _check_endpoint(endpoint, count)
        if not 400 <= status <= 599:
            raise ConfigError(f"fault status must be 400-599, got {status}")
        if isinstance(retry_after, _Unset):
            retry_after = _DEFAULT_RETRY_AFTER if status == 429 else None
        failure = ScriptedFailure(
            status=status, error_type=error_type or error_type_for(status), retry_after=retry_after
        )
        self._failures[endpoint].extend([failure] * count)

    def drop_connection(self, endpoint: Endpoint, *, count: int = 1, after_processing: bool = True) -> None:
        """The next ``count`` calls to ``endpoint`` lose their connection instead of getting an answer.

        With ``after_processing`` (the default) the request takes effect first (a batch IS created) and the
        client sees a network error: in process the ASGI app raises (httpx2 re-raises it; the SDK reports
        ``APIConnectionError``); over a socket the status line goes out and the connection closes before the
        body (httpx2 ``RemoteProtocolError``; the SDK reports ``APIConnectionError``).

        Raises:
            ConfigError: unknown endpoint or ``count < 1``.
        """
        _check_endpoint(endpoint, count)
        self._drops[endpoint].extend([after_processing] * count)

    def item_outcomes(
        self,
        *,
        errored: float = 0.0,
        error_type: str = "api_error",
        expired: float = 0.0,
        canceled: float = 0.0,
    ) -> None:
        """Per-item fault rates for batches created from now on (seeded per batch).

        Raises:
            ConfigError: a rate outside [0, 1], or rates adding up to more than 1.
        """
        rates = (errored, expired, canceled)
        if any(not 0.0 <= r <= 1.0 for r in rates) or sum(rates) > 1.0:
            raise ConfigError("item outcome rates must be in [0, 1] and add up to at most 1")
        self._rates = OutcomeRates(errored=errored, error_type=error_type, expired=expired, canceled=canceled)

    def result_lines(self, *, malformed: int = 0, dropped: int = 0) -> None:
        """The next results download cuts ``malformed`` lines in half and omits ``dropped`` lines.

        Raises:
            ConfigError: a negative count.
        """
        if malformed < 0 or dropped < 0:
            raise ConfigError("line fault counts must not be negative")
        self._malformed += malformed
        self._dropped_lines += dropped

    def truncate_results(self, count: int = 1) -> None:
        """The next ``count`` results downloads stop mid-stream (the connection closes inside a line).

        Raises:
            ConfigError: ``count < 1``.
        """
        if count < 1:
            raise ConfigError("count must be at least 1")
        self._truncations += count

    def extra_result_lines(self, *lines: str, downloads: int = 1) -> None:
        """The next ``downloads`` results downloads carry these raw ``lines`` (JSONL text, no newline) in the
        middle of the real ones: junk, lines for unknown custom_ids, unknown result types.

        Raises:
            ConfigError: no lines, a line holding a newline, or ``downloads < 1``.
        """
        if not lines or any("\n" in line for line in lines):
            raise ConfigError("extra result lines must be one or more single lines")
        if downloads < 1:
            raise ConfigError("downloads must be at least 1")
        self._extra_lines = tuple(lines)
        self._extra_downloads = downloads

    def early_counts(self, count: int = 1) -> None:
        """The next ``count`` retrieves of a batch still ``in_progress`` report ``request_counts`` as if every
        request had succeeded (``processing`` 0), while ``processing_status`` stays ``in_progress``: a client
        must read progress from the status alone.

        Raises:
            ConfigError: ``count < 1``.
        """
        if count < 1:
            raise ConfigError("count must be at least 1")
        self._early_counts += count

    def take_early_counts(self) -> bool:
        """Consume one scripted early-counts answer; whether there was one."""
        if self._early_counts <= 0:
            return False
        self._early_counts -= 1
        return True

    def clear(self) -> None:
        """Forget every scripted fault and reset item rates to zero."""
        for queue in self._failures.values():
            queue.clear()
        for drops in self._drops.values():
            drops.clear()
        self._rates = OutcomeRates()
        self._malformed = self._dropped_lines = self._truncations = 0
        self._extra_lines, self._extra_downloads, self._early_counts = (), 0, 0

    @property
    def outcome_rates(self) -> OutcomeRates:
        """The per-item rates a new batch snapshots."""
        return self._rates

    def take_failure(self, endpoint: Endpoint) -> ScriptedFailure | None:
        """Consume the next scripted failure for ``endpoint``, if any."""
        queue = self._failures[endpoint]
        return queue.popleft() if queue else None

    def take_drop(self, endpoint: Endpoint) -> bool | None:
        """Consume the next scripted drop for ``endpoint``: its ``after_processing`` flag, or ``None``."""
        queue = self._drops[endpoint]
        return queue.popleft() if queue else None

    def take_download_faults(self) -> DownloadFaults:
        """Consume the faults of the next results download."""
        faults = DownloadFaults(
            malformed=self._malformed,
            dropped=self._dropped_lines,
            truncate=self._truncations > 0,
            extra=self._extra_lines if self._extra_downloads > 0 else (),
        )
        self._malformed = self._dropped_lines = 0
        self._truncations = max(self._truncations - 1, 0)
        self._extra_downloads = max(self._extra_downloads - 1, 0)
        return faults

    def __repr__(self) -> str:
        pending = {e: len(q) for e, q in self._failures.items() if q}
        return f"FaultPlan(failures={pending}, rates={self._rates})"


def _check_endpoint(endpoint: str, count: int) -> None:
    if endpoint not in ENDPOINTS:
        raise ConfigError(f"unknown endpoint {endpoint!r}; expected one of {', '.join(ENDPOINTS)}")
    if count < 1:
        raise ConfigError("count must be at least 1")
