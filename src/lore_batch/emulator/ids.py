"""Seeded, realistic-looking object ids (``msgbatch_01…``, ``msg_01…``, ``req_01…``)."""

from __future__ import annotations

import random
import string

__all__ = ["IdFactory"]

_ALPHABET = string.ascii_letters + string.digits
_SUFFIX_LENGTH = 22


class IdFactory:
    """Makes ids from a seeded generator, so one seed and one call sequence give the same ids."""

    __slots__ = ("_rng",)

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(f"ids:{seed}")

    def _make(self, prefix: str) -> str:
        return prefix + "01" + "".join(self._rng.choices(_ALPHABET, k=_SUFFIX_LENGTH))

    def batch_id(self) -> str:
        """A new Message Batch id."""
        return self._make("msgbatch_")

    def message_id(self) -> str:
        """A new Message id."""
        return self._make("msg_")

    def request_id(self) -> str:
        """A new request id (the ``request-id`` header and error bodies)."""
        return self._make("req_")
