"""The session's incremental view of the caller's history: ids, estimates and running sums, extended
only by the messages a turn adds.

The caller passes its full history every turn. Which messages are new is decided by object identity: the
cache holds strong references to the previous turn's message objects, so an identity match is never a
recycled id. A prefix that changed (the host rewrote or trimmed its history) rebuilds the cache once.
Callers must not mutate a message object in place after passing it (a changed message must be a new
object), which is what every agent loop built on the SDK does.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate

from lore_core.errors import InvalidMessagesError
from lore_core.invariants import check_context
from lore_core.messages import Message, message_id, message_kind
from lore_core.tokens import EstimatorConfig, MessageTokenCache, TokenCounter, count_tokens

__all__ = ["HistoryCache", "Update", "plain_message"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Update:
    """What one turn changed: ``start`` is the first new position; ``rewrite`` means the prefix changed."""

    start: int
    rewrite: bool
    new_human: int


@dataclass(slots=True)
class HistoryCache:
    """Per-session ids, token estimates, kinds and cumulative token sums of the caller's history."""

    counter: TokenCounter = count_tokens
    estimator: EstimatorConfig = field(default_factory=EstimatorConfig)
    originals: list[Message] = field(default_factory=list)
    """The caller's message objects, for the identity check of the next turn."""
    messages: list[Message] = field(default_factory=list)
    """The same messages as plain dicts (SDK block objects converted); what the engine works on."""
    ids: list[str] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    cumulative: list[int] = field(default_factory=lambda: [0])
    token_cache: MessageTokenCache = field(default_factory=lambda: MessageTokenCache(maxsize=65_536))

    def __len__(self) -> int:
        return len(self.messages)

    def tokens_between(self, start: int, stop: int) -> int:
        """Sum of the estimates of positions ``start`` to ``stop - 1`` (O(1))."""
        return self.cumulative[stop] - self.cumulative[start]

    def update(self, messages: Sequence[Message]) -> Update:
        """Bring the cache to ``messages`` and validate what is new.

        Raises:
            InvalidMessagesError: the list breaks an API invariant (index in the caller's list); the cache is
                left as it was.
        """
        old = self.originals
        keep = _common_prefix(old, messages)
        rewrite = keep < len(old)
        if rewrite:
            keep = 0
        plain = self.messages[:keep] + [plain_message(m) for m in messages[keep:]]
        _validate_suffix(plain, keep)
        ids = self.ids[:keep]
        tokens = self.tokens[:keep]
        kinds = self.kinds[:keep]
        for position in range(keep, len(plain)):
            message = plain[position]
            mid = message_id(str(message.get("role")), position, message.get("content", ""))
            ids.append(mid)
            tokens.append(
                self.token_cache.estimate(mid, message, counter=self.counter, config=self.estimator)
            )
            kinds.append(message_kind(message))
        new_human = sum(1 for kind in kinds[keep:] if kind == "human")
        self.originals = list(messages)
        self.messages = plain
        self.ids, self.tokens, self.kinds = ids, tokens, kinds
        if rewrite or keep == 0:
            self.cumulative = [0, *accumulate(tokens)]
        else:
            del self.cumulative[keep + 1 :]
            running = self.cumulative[-1]
            for value in tokens[keep:]:
                running += value
                self.cumulative.append(running)
        return Update(start=keep, rewrite=rewrite, new_human=new_human)


def plain_message(message: Message) -> Message:
    """The message itself when its content is a string or plain dicts; otherwise a copy whose SDK block
    objects (pydantic models, e.g. ``response.content`` appended as is) are dumped to dicts without ``None``
    fields, which is how the API's JSON reads."""
    content = message.get("content") if isinstance(message, Mapping) else None
    if not isinstance(content, list) or all(isinstance(block, Mapping) for block in content):
        return message
    blocks = [_plain_block(block) for block in content]
    return {**message, "content": blocks}


def _plain_block(block: object) -> object:
    dump = getattr(block, "model_dump", None)
    if isinstance(block, Mapping) or dump is None:
        return block
    return dump(exclude_none=True, mode="json")


def _common_prefix(old: Sequence[Message], new: Sequence[Message]) -> int:
    """How many leading messages are the same objects (C-speed scan; a Python loop only after a mismatch)."""
    limit = min(len(old), len(new))
    if all(map(operator.is_, old[:limit], new[:limit])):
        return limit
    for index in range(limit):
        if old[index] is not new[index]:
            return index
    return limit


def _validate_suffix(messages: Sequence[Message], keep: int) -> None:
    """Check the invariants where they can have changed: from the last human message before the first new
    one (tool pairing and alternation are local), or the whole list after a rewrite."""
    if keep == 0:
        check_context(messages)
        return
    start = keep - 1
    while start > 0 and message_kind(messages[start]) != "human":
        start -= 1
    try:
        check_context(messages[start:])
    except InvalidMessagesError as exc:
        index = exc.index + start if exc.index >= 0 else exc.index
        raise InvalidMessagesError(index, exc.reason, exc.detail) from None
