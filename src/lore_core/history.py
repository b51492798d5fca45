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

from lore_core.context.dedup import DedupMemo
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
    dedup_memo: DedupMemo = field(default_factory=dict)
    """Dedup facts per index, kept between turns for the assembly (:attr:`History.memo`)."""

    def __len__(self) -> int:
        return len(self.messages)

    def tokens_between(self, start: int, stop: int) -> int:
        """Sum of the estimates of positions ``start`` to ``stop - 1`` (O(1))."""
        return self.cumulative[stop] - self.cumulative[start]

    def update(self, messages: Sequence[Message]) -> Update:
        """Bring the cache to ``messages`` and validate what is new.

        When the history only grew, the lists are extended in place (work proportional to the new messages,
        plus one C-level identity scan); a rewrite rebuilds them.

        Raises:
            InvalidMessagesError: the list breaks an API invariant (index in the caller's list); the cache is
                left as it was.
        """
        old = self.originals
        keep = _common_prefix(old, messages)
        rewrite = keep < len(old)
        if rewrite:
            keep = 0
        added = [plain_message(m) for m in messages[keep:]]
        _validate_suffix(self.messages, keep, added)
        new_ids: list[str] = []
        new_tokens: list[int] = []
        new_kinds: list[str] = []
        estimate, counter, estimator = self.token_cache.estimate, self.counter, self.estimator
        for offset, message in enumerate(added):
            mid = message_id(str(message.get("role")), keep + offset, message.get("content", ""))
            new_ids.append(mid)
            new_tokens.append(estimate(mid, message, counter=counter, config=estimator))
            new_kinds.append(message_kind(message))
        new_human = new_kinds.count("human")
        if keep == 0:
            self.originals = list(messages)
            self.messages = added
            self.ids, self.tokens, self.kinds = new_ids, new_tokens, new_kinds
            self.cumulative = [0, *accumulate(new_tokens)]
            self.dedup_memo.clear()
        else:
            self.originals.extend(messages[keep:])
            self.messages.extend(added)
            self.ids.extend(new_ids)
            self.tokens.extend(new_tokens)
            self.kinds.extend(new_kinds)
            running = self.cumulative[-1]
            for value in new_tokens:
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
    if all(map(operator.is_, old, new)):  # map stops at the shorter list: no slice copies
        return limit
    for index in range(limit):
        if old[index] is not new[index]:
            return index
    return limit


def _validate_suffix(kept: Sequence[Message], keep: int, added: list[Message]) -> None:
    """Check the invariants where they can have changed: from the last human message before the first new
    one (tool pairing and alternation are local), or the whole list after a rewrite. ``kept`` holds the
    first ``keep`` messages (maybe more), ``added`` the messages from ``keep`` on."""
    if keep == 0:
        check_context(added)
        return
    start = keep - 1
    while start > 0 and message_kind(kept[start]) != "human":
        start -= 1
    try:
        check_context([*kept[start:keep], *added])
    except InvalidMessagesError as exc:
        index = exc.index + start if exc.index >= 0 else exc.index
        raise InvalidMessagesError(index, exc.reason, exc.detail) from None
