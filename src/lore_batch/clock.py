"""Time as an injected dependency: :class:`Clock`, :class:`SystemClock` and :class:`ManualClock`.

They live in :mod:`lore_core.clock` (the engine needs them too, and ``lore_core`` never imports
``lore_batch``); this module re-exports them for the batching code and its users.
"""

from lore_core.clock import Clock, ManualClock, SystemClock

__all__ = ["Clock", "ManualClock", "SystemClock"]
