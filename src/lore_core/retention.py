"""Artefact retention of gen-0 rows and the one ``validate`` repair (ENGINE.md section 7b).

:func:`extract_artifacts` (in :mod:`lore_core.artifacts`, re-exported here) lists what the observer input
holds; :func:`score_retention` says which of it the observations kept; :func:`needs_validation` decides on the
repair call that :func:`build_validate_prompt` prepares, and :func:`merge_validation` appends the useful new
bullets of its reply. Everything is pure and deterministic.

Presence rules: case-insensitive, whitespace-normalised substring; a path also counts by its last two
components; a number also by value + unit (``250ms`` is ``250 ms``); an assertion also when at least 60% of
its content words appear.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from lore_core.artifacts import (
    Artifact,
    ArtifactKind,
    artifact_key,
    extract_artifacts,
    normalize,
    number_keys,
)
from lore_core.config import LoreConfig
from lore_core.outputs import OutputRejected, observations_block
from lore_core.prompting import Prompt, render

__all__ = [
    "ASSERTION_SHARE",
    "Artifact",
    "ArtifactKind",
    "Retention",
    "build_validate_prompt",
    "extract_artifacts",
    "is_present",
    "merge_validation",
    "needs_validation",
    "score_retention",
    "validate_budget",
]

ASSERTION_SHARE: Final = 0.6
"""Share of an assertion's content words the observations must hold for it to count as present."""

_WORD_RE = re.compile(r"[^\W_]+(?:['’][^\W_]+)?")
# Function words and instruction fillers: they carry no content of an assertion ("make sure to", "I want").
_STOPWORDS: Final = frozenset((
    "a", "an", "the", "to", "of", "and", "or", "in", "on", "at", "for", "with", "by", "from", "as", "into",
    "onto", "over", "about", "than", "then", "so", "if", "but", "is", "are", "be", "been", "being", "was",
    "were", "am", "it", "its", "this", "that", "these", "those", "there", "here", "i", "me", "my", "mine",
    "we", "us", "our", "you", "your", "he", "she", "him", "her", "they", "them", "their", "do", "does",
    "did", "done", "will", "would", "shall", "should", "can", "could", "may", "might", "must", "let",
    "lets", "let's", "please", "make", "sure", "want", "wants", "need", "needs", "like", "just", "also",
    "really", "very", "too", "forget", "remember", "i'd", "i'm", "i've", "we'd", "we're", "we've", "you're",
    "it's",
))  # fmt: skip


@dataclass(frozen=True, slots=True)
class Retention:
    """What the observations kept: ``score = len(present) / (len(present) + len(missing))``, 1.0 when empty.

    Example: ``Retention(score=0.5, present=(a,), missing=(b,))``.
    """

    score: float
    present: tuple[Artifact, ...]
    missing: tuple[Artifact, ...]


def _stem(word: str) -> str:
    word = word.replace("’", "'").removesuffix("'s")
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _content_words(normalized: str) -> list[str]:
    words = (_stem(word) for word in _WORD_RE.findall(normalized))
    return list(dict.fromkeys(word for word in words if word not in _STOPWORDS))


class _Observations:
    """One observations text prepared for presence checks (word and number sets built on first need)."""

    __slots__ = ("_numbers", "_words", "text")

    def __init__(self, observations: str) -> None:
        self.text = normalize(observations)
        self._words: set[str] | None = None
        self._numbers: set[str] | None = None

    def words(self) -> set[str]:
        if self._words is None:
            self._words = {_stem(word) for word in _WORD_RE.findall(self.text)}
        return self._words

    def numbers(self) -> set[str]:
        if self._numbers is None:
            self._numbers = number_keys(self.text)
        return self._numbers

    def has(self, artifact: Artifact) -> bool:
        value = normalize(artifact.value)
        if value and value in self.text:
            return True
        if artifact.kind == "path":
            key = artifact_key("path", artifact.value)
            parts = key.split("/")
            return key in self.text or (len(parts) > 2 and "/".join(parts[-2:]) in self.text)
        if artifact.kind == "number":
            return artifact_key("number", artifact.value) in self.numbers()
        if artifact.kind == "assertion":
            content = _content_words(value)
            if not content:
                return False
            kept = sum(1 for word in content if word in self.words())
            return kept >= ASSERTION_SHARE * len(content)
        return False


def is_present(artifact: Artifact, observations: str) -> bool:
    """Whether ``observations`` retains ``artifact`` by the presence rules of the module docstring.

    Example: ``is_present(Artifact("number", "250ms"), "* yellow (09:30) p99 is 250 ms") is True``.
    """
    return _Observations(observations).has(artifact)


def score_retention(artifacts: Sequence[Artifact], observations: str) -> Retention:
    """Split ``artifacts`` into present and missing in ``observations``; the score is the present share.

    Order is kept within each tuple. Never raises.

    Example::

        score_retention([Artifact("path", "src/app/main.py")], "* yellow (09:30) edited app/main.py")
        # Retention(score=1.0, present=(Artifact('path', 'src/app/main.py', False),), missing=())
    """
    checker = _Observations(observations)
    present: list[Artifact] = []
    missing: list[Artifact] = []
    for artifact in artifacts:
        (present if checker.has(artifact) else missing).append(artifact)
    total = len(present) + len(missing)
    score = len(present) / total if total else 1.0
    return Retention(score=score, present=tuple(present), missing=tuple(missing))


def needs_validation(retention: Retention, config: LoreConfig) -> bool:
    """Whether a ``validate`` call is due: score under ``retention_threshold`` or a pinned assertion missing.

    ``config.validate_enabled`` is the caller's to check. Example: with the defaults, a score of 0.75 -> True.
    """
    if retention.score < config.retention_threshold:
        return True
    return any(artifact.kind == "assertion" for artifact in retention.missing)


def validate_budget(n_missing: int, config: LoreConfig) -> int:
    """``max_tokens`` of a ``validate`` call: clamp(ceil(64 x missing), 256, 1024) with the defaults.

    Example: ``validate_budget(10, LoreConfig()) == 640``.
    """
    factor, floor, cap = config.validate_budget
    return max(floor, min(cap, math.ceil(factor * max(0, n_missing))))


def _missing_lines(missing: Sequence[Artifact]) -> str:
    lines = [f"- {artifact.kind}: {' '.join(artifact.value.split())}" for artifact in missing]
    return "\n".join(lines) if lines else "(none)"


def build_validate_prompt(
    missing: Sequence[Artifact], *, transcript: str, observations: str, config: LoreConfig
) -> Prompt:
    """The ``validate`` call: the missing artefacts (one ``- <kind>: <value>`` line each), the transcript the
    observer read and the current observations; ``max_tokens`` is :func:`validate_budget`.

    Raises:
        ConfigError: the prompt templates are not installed with the package.

    Example::

        prompt = build_validate_prompt(retention.missing, transcript=observer_input,
                                       observations=row.observations, config=LoreConfig())
        prompt.worker   # 'validate'
    """
    return Prompt(
        worker="validate",
        system=render("validate_system"),
        user=render(
            "validate_user",
            missing=_missing_lines(missing),
            transcript=transcript.strip("\n"),
            observations=observations.strip("\n"),
        ),
        max_tokens=validate_budget(len(missing), config),
    )


def merge_validation(observations: str, reply: str, missing: Sequence[Artifact]) -> str | None:
    """``observations`` with the reply's useful new bullets appended, or None when there are none.

    From the reply's one ``<observations>`` block (an invalid reply gives None), bullet lines (``* ...``) are
    kept when they carry at least one ``missing`` artefact (same presence rules) and are not already in
    ``observations`` (or earlier in the reply), whitespace and case aside.

    Example::

        merge_validation("Date: Feb 25, 2026\\n* red (09:30) user wants speed",
                         "<observations>\\n* yellow (09:31) p99 is 250 ms\\n</observations>",
                         [Artifact("number", "250ms")])
        # 'Date: Feb 25, 2026\\n* red (09:30) user wants speed\\n* yellow (09:31) p99 is 250 ms'
    """
    try:
        block = observations_block(reply)
    except OutputRejected:
        return None
    existing = normalize(observations)
    seen: set[str] = set()
    kept: list[str] = []
    for raw in block.splitlines():
        line = raw.strip()
        if not line.startswith("* "):
            continue
        key = normalize(line)
        if key in seen or key in existing:
            continue
        bullet = _Observations(line)
        if any(bullet.has(artifact) for artifact in missing):
            seen.add(key)
            kept.append(line)
    if not kept:
        return None
    return observations.rstrip() + "\n" + "\n".join(kept)
