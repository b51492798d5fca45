"""A lazy view of the history from its tail: deduped and stripped messages with their estimates.

The gradient layers walk back from the end of the history only as far as their budgets reach. The view makes
every derived value (the dedup pre-pass of ENGINE.md 8.6, the stripped form of a message, their estimates)
cost work only for the messages actually looked at, each computed once per call and shared by the stages.
"""

from __future__ import annotations

from lore_core.config import LoreConfig
from lore_core.context.dedup import Deduper
from lore_core.context.history import History
from lore_core.context.strip import strip_message
from lore_core.messages import Message
from lore_core.tokens import TokenCounter, estimate_message

__all__ = ["TailView"]


class TailView:
    """Deduped and stripped messages of a :class:`History`, computed on demand from the tail.

    ``message(i)`` is message ``i`` after the dedup pre-pass (which never changes the current turn, index
    >= ``turn_start``), ``stripped(i)`` the same with every tool output stripped; ``tokens`` and
    ``stripped_tokens`` are their estimates. Asking for index ``i`` runs the dedup stream once over every
    message from the tail down to ``i``.
    """

    __slots__ = (
        "_changed",
        "_counter",
        "_deduper",
        "_low",
        "_stripped",
        "config",
        "current_tokens",
        "history",
        "messages",
        "turn_start",
    )

    def __init__(
        self, history: History, *, turn_start: int, config: LoreConfig, counter: TokenCounter
    ) -> None:
        self.history = history
        self.messages = history.messages
        self.turn_start = turn_start
        self.config = config
        self._counter = counter
        self._deduper = Deduper(config=config, memo=history.memo)
        self._low = len(self.messages)  # every index >= _low went through the dedup stream
        self._changed: dict[int, tuple[Message, int]] = {}  # deduped messages that differ, with estimates
        self._stripped: dict[int, tuple[Message, int]] = {}
        self.current_tokens = sum(self.tokens(i) for i in range(turn_start, len(self.messages)))

    def __len__(self) -> int:
        return len(self.messages)

    def _dedup_down_to(self, index: int) -> None:
        messages = self.messages
        while self._low > index:
            self._low -= 1
            i = self._low
            original = messages[i]
            visited = self._deduper.visit(
                original, messages[i - 1] if i > 0 else None, replace=i < self.turn_start, index=i
            )
            if visited is not original:
                self._changed[i] = (visited, estimate_message(visited, counter=self._counter))

    def message(self, index: int) -> Message:
        """Message ``index`` after the dedup pre-pass (the caller's object when unchanged)."""
        self._dedup_down_to(index)
        changed = self._changed.get(index)
        return self.messages[index] if changed is None else changed[0]

    def tokens(self, index: int) -> int:
        """The estimate of :meth:`message` ``(index)``."""
        self._dedup_down_to(index)
        changed = self._changed.get(index)
        return self.history.tokens[index] if changed is None else changed[1]

    def _strip(self, index: int) -> tuple[Message, int]:
        found = self._stripped.get(index)
        if found is None:
            deduped = self.message(index)
            previous = self.messages[index - 1] if index > 0 else None
            stripped = strip_message(deduped, previous, config=self.config)
            if stripped is deduped:
                found = (deduped, self.tokens(index))
            else:
                found = (stripped, estimate_message(stripped, counter=self._counter))
            self._stripped[index] = found
        return found

    def stripped(self, index: int) -> Message:
        """Message ``index`` after dedup with every tool output stripped (itself when it has none)."""
        return self._strip(index)[0]

    def stripped_tokens(self, index: int) -> int:
        """The estimate of :meth:`stripped` ``(index)``."""
        return self._strip(index)[1]

    def size(self, index: int, *, strip: bool) -> int:
        """:meth:`stripped_tokens` when ``strip``, else :meth:`tokens`."""
        return self.stripped_tokens(index) if strip else self.tokens(index)

    def get(self, index: int, *, strip: bool) -> Message:
        """:meth:`stripped` when ``strip``, else :meth:`message`."""
        return self.stripped(index) if strip else self.message(index)
