"""Time for the emulator: real or injected, plus an offset that ``emu.advance`` moves.

:class:`ManualClock` is :class:`lore_batch.clock.ManualClock` (callable, so it drives the emulator directly).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from lore_batch.clock import ManualClock
from lore_core.errors import ConfigError

__all__ = ["Clock", "EmulatorClock", "ManualClock"]

Clock = Callable[[], float]
"""A callable returning the current time in epoch seconds."""


class EmulatorClock:
    """The emulator's notion of now: the base clock (``time.time`` when ``None``) plus an offset."""

    __slots__ = ("_base", "_offset")

    def __init__(self, base: Clock | None = None) -> None:
        self._base: Clock = base if base is not None else time.time
        self._offset = 0.0

    def now(self) -> float:
        """The current emulator time in epoch seconds."""
        return self._base() + self._offset

    def advance(self, seconds: float) -> None:
        """Add ``seconds`` to the offset (works with a real or an injected base clock).

        Raises:
            ConfigError: ``seconds`` is negative.
        """
        if seconds < 0:
            raise ConfigError("emulator time only moves forward")
        self._offset += seconds
