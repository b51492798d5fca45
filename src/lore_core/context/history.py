"""``History``: the caller's full message list with the per-message data the assembly reads (ENGINE.md 8).

The session builds one per transform. :meth:`History.build` reuses the ids and estimates of a previous
``History`` for every leading message that is the *same object* at the same position, so a turn only hashes
and counts its new messages; the identity scan itself is one C-level pass of pointer compares.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass, field

from lore_core.context.dedup import DedupMemo
from lore_core.errors import ConfigError
from lore_core.messages import Message, message_id
from lore_core.tokens import TokenCounter, count_tokens, estimate_message

__all__ = ["History"]


@dataclass(frozen=True, slots=True)
class History:
    """The caller's full history: messages (their objects, never modified), ids and estimates, same length.

    ``tokens[i]`` is :func:`~lore_core.tokens.estimate_message` of ``messages[i]`` with the counter the
    assembly is given (overhead-free, ENGINE.md 3.1). ``total_tokens`` is their sum when the builder knows it
    (it keeps layer 0 O(1)); ``None`` makes :attr:`total` sum ``tokens`` on demand.

    Raises ``ConfigError`` when the three sequences differ in length.
    Example: ``History.build([{"role": "user", "content": "hi"}], counter=len).tokens == (9,)``.
    """

    messages: Sequence[Message]
    ids: Sequence[str]
    tokens: Sequence[int]
    total_tokens: int | None = None
    memo: DedupMemo | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not len(self.messages) == len(self.ids) == len(self.tokens):
            raise ConfigError(
                f"History: {len(self.messages)} messages, {len(self.ids)} ids, {len(self.tokens)} estimates"
            )

    def __len__(self) -> int:
        return len(self.messages)

    @property
    def total(self) -> int:
        """The estimate of every message: ``total_tokens``, else the sum of ``tokens``."""
        return self.total_tokens if self.total_tokens is not None else sum(self.tokens)

    @classmethod
    def build(
        cls,
        messages: Sequence[Message],
        *,
        counter: TokenCounter = count_tokens,
        previous: History | None = None,
    ) -> History:
        """A ``History`` of ``messages``, reusing ``previous`` for its leading same-object messages.

        Ids and estimates of ``previous`` are kept for the longest run of leading positions holding the very
        same message objects (the caller passes its full list again with new messages appended); everything
        after is hashed and counted. ``previous`` must have been built with the same ``counter``. ``ids`` and
        ``tokens`` are tuples, so a returned slice of them never changes under the caller.

        Raises ``InvalidMessagesError(i, "not_json")`` for content JSON cannot encode.
        Example::

            first = History.build(history, counter=count_tokens)
            history.append(reply); history.append(question)
            second = History.build(history, counter=count_tokens, previous=first)   # counts 2 messages
        """
        keep = _shared_prefix(previous.messages, messages) if previous is not None else 0
        ids: tuple[str, ...] = ()
        tokens: tuple[int, ...] = ()
        total = 0
        if previous is not None and keep:
            ids = tuple(previous.ids[:keep])
            tokens = tuple(previous.tokens[:keep])
            dropped = previous.tokens[keep:]
            total = previous.total - sum(dropped)
        fresh = range(keep, len(messages))
        new_ids = [message_id(str(messages[i]["role"]), i, messages[i]["content"]) for i in fresh]
        new_tokens = [estimate_message(messages[i], counter=counter) for i in fresh]
        return cls(
            messages=messages,
            ids=ids + tuple(new_ids),
            tokens=tokens + tuple(new_tokens),
            total_tokens=total + sum(new_tokens),
        )


def _shared_prefix(old: Sequence[Message], new: Sequence[Message]) -> int:
    """How many leading positions hold the same objects in both lists (C-level compares)."""
    same = list(map(operator.is_, old, new))
    try:
        return same.index(False)
    except ValueError:
        return len(same)
