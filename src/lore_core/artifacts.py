"""The artefacts of an observer input: technical details a distillation must keep verbatim (ENGINE.md 7b).

Five kinds, each capped at ``config.artifacts_per_kind`` (errors also at 10), user-message artefacts first,
then the most recent ones:

- ``path``: ``dir/.../name.ext`` with a 1-5 character extension (:func:`lore_core.annotations.find_paths`,
  which only scans text containing ``/`` and only its first 64 KB);
- ``identifier``: backticked spans without spaces (3-80 chars), snake_case, camelCase / PascalCase with an
  inner capital, dotted names of >= 2 identifier parts; plain words, paths, URLs, numbers and JSON keys are
  not identifiers;
- ``number``: numbers with a unit (``250 ms``, ``1.5 GB``, ``20%``, ``3x``, ``$0.10`` ...) and versions
  (``v1.2``, ``1.2.3``);
- ``error``: the key token of each line with an error word: an ``...Error`` / ``...Exception`` name, else an
  error code (``E501``, ``ERR_X``, ``ENOENT``, ``HTTP 404``), else the line's first 60 characters;
- ``assertion``: the pinned user assertions, passed in.

The input is read line by line, the render markers (``[user] (09:30)``, ``[result:bash error]``) set aside.
Scans are bounded (pitfall 30): only the first :data:`SCAN_CHARS` of the input and of the user texts are
read, an error key is looked for in a line's first :data:`LINE_CHARS`, cheap substring prechecks skip lines,
and every pattern is linear (each alternative ends on a fixed character class; no nested free quantifiers).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from lore_core.annotations import ERROR_WORDS, find_paths
from lore_core.config import LoreConfig

__all__ = [
    "KINDS",
    "LINE_CHARS",
    "MAX_ERRORS",
    "SCAN_CHARS",
    "Artifact",
    "ArtifactKind",
    "artifact_key",
    "extract_artifacts",
    "normalize",
    "number_keys",
]

ArtifactKind = Literal["path", "identifier", "number", "error", "assertion"]
KINDS: Final[tuple[ArtifactKind, ...]] = ("path", "identifier", "number", "error", "assertion")

SCAN_CHARS: Final = 256 * 1024
"""Characters read from the observer input (and, in total, from the user texts): a whole observer input at its
60,000-token cap fits, a pathological one costs no more."""
LINE_CHARS: Final = 4 * 1024
"""Characters of one error line searched for its key token (names and codes come early in a line)."""
MAX_ERRORS: Final = 10
"""Error lines kept per segment (ENGINE.md 7b), below ``artifacts_per_kind``."""
_PATHS_PER_LINE: Final = 64
_PATH_CHARS: Final = 255  # a longer "path" is noise, not something to quote back
_ERROR_HEAD: Final = 60  # the fallback key of an error line: its first 60 characters
_OMITTED: Final = "[output omitted:"  # the loss annotation says "had errors"; it is not an error line
_TRACEBACK_HEAD: Final = "traceback (most recent call last)"  # carries nothing; its last line does

# Render markers at the start of a line: "[user] (09:30) ", "[tool:bash] ", "[result:bash error] ", "[date] ",
# the observer's "[... 3 of 90 lines cut: ...]" note. Annotations and paths (with "," or "/") are not markers.
_MARKERS_RE = re.compile(r"[\s\x1f]*(?:(?:\[[\w:. -]{1,80}\]|\(\d{1,2}:\d{2}\))[ \t]*){0,4}", re.ASCII)
_WORD_RE = re.compile(r"(?<![\w.@/\\-])[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*", re.ASCII)
_BACKTICK_RE = re.compile(r"`([^`\s]{3,80})`")
_NUMBERISH_RE = re.compile(r"[-+~$]?[vV]?\d[\d.,_:]*[A-Za-z%]{0,8}", re.ASCII)
_UNITS: Final = (
    "tokens|token|ms|us|ns|seconds|second|secs|sec|s|minutes|minute|mins|min|hours|hour|hrs|hr|h|days|day|"
    "weeks|week|KiB|MiB|GiB|TiB|KB|kB|kb|MB|mb|GB|gb|TB|bytes|byte|B|px|fps|rps|qps|%|x"
)
_VALUE: Final = r"\d{1,15}(?:,\d{3})*(?:\.\d{1,12})?"
_NUMBER_RE = re.compile(
    r"(?<![\w.$])(?:"
    rf"\$(?P<usd>{_VALUE})(?P<usd_mag>[kKM])?(?![\w.]?\d)"
    r"|(?P<ver>v\d{1,6}(?:\.\d{1,6}){1,3}|\d{1,6}(?:\.\d{1,6}){2,3})(?!\w|\.\d)"
    rf"|(?P<num>{_VALUE})(?P<mag>[kKM])?[ \t]?(?P<unit>{_UNITS})(?!\w)"
    r")",
    re.ASCII,
)
_UNIT_ALIASES: Final = {
    "token": "tokens", "second": "s", "seconds": "s", "sec": "s", "secs": "s", "minute": "min",
    "minutes": "min", "mins": "min", "hour": "h", "hours": "h", "hr": "h", "hrs": "h", "day": "days",
    "week": "weeks", "byte": "b", "bytes": "b",
}  # fmt: skip
_ERROR_NAME_RE = re.compile(r"(?<!\w)[A-Z]\w{0,80}?(?:Error|Exception)(?!\w)", re.ASCII)
_ERRNO: Final = (
    "ENOENT|EACCES|EPERM|EEXIST|ENOTDIR|EISDIR|ENOTEMPTY|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EADDRINUSE|EPIPE|"
    "ENOSPC|EMFILE|EAGAIN|ENOMEM|EINVAL|EBUSY|EHOSTUNREACH"
)
_ERROR_CODE_RE = re.compile(
    r"(?<![\w-])(?:HTTP(?:/\d(?:\.\d)?)?[ ]?(?P<http>[1-5]\d\d)|" + _ERRNO + r"|[A-Z]{1,5}\d{2,5}"
    r"|[A-Z][A-Z0-9]{0,30}_[A-Z0-9_]{0,40}[A-Z0-9])(?![\w-])",
    re.ASCII,
)


@dataclass(frozen=True, slots=True)
class Artifact:
    """One detail the observations should carry verbatim; ``from_user`` when a user message has it too.

    Example: ``Artifact("path", "src/app/main.py", from_user=True)``.
    """

    kind: ArtifactKind
    value: str
    from_user: bool = False


def normalize(text: str) -> str:
    """``text`` case-folded with runs of whitespace turned into one space (the presence comparison form).

    Example: ``normalize("  Use\\n  UV ") == "use uv"``.
    """
    return " ".join(text.split()).casefold()


def _number_key(match: re.Match[str]) -> str:
    if match.group("ver") is not None:
        return match.group("ver").lstrip("v")
    usd = match.group("usd")
    if usd is not None:
        return "$" + _plain_value(usd) + (match.group("usd_mag") or "").casefold()
    unit = match.group("unit").casefold()
    unit = _UNIT_ALIASES.get(unit, unit)
    return _plain_value(match.group("num")) + (match.group("mag") or "").casefold() + unit


def _plain_value(value: str) -> str:
    """``1,000.50`` -> ``1000.5``: no grouping commas, no trailing fractional zeros."""
    plain = value.replace(",", "")
    if "." in plain:
        plain = plain.rstrip("0").rstrip(".")
    return plain or "0"


def number_keys(text: str) -> set[str]:
    """The value + unit keys of every number with a unit, and every version, in ``text``.

    Reads at most the first :data:`SCAN_CHARS` characters. ``250ms``, ``250 ms`` and ``250.0 ms`` share
    the key ``250ms``; ``v1.2.3`` and ``1.2.3`` share ``1.2.3``.

    Example: ``number_keys("took 1,500 ms on v2.0.1") == {"1500ms", "2.0.1"}``.
    """
    return {_number_key(match) for match in _NUMBER_RE.finditer(text, 0, SCAN_CHARS)}


def artifact_key(kind: ArtifactKind, value: str) -> str:
    """The identity of an artefact within its kind: normalized text; numbers by value + unit.

    Example: ``artifact_key("number", "250 ms") == artifact_key("number", "250ms") == "250ms"``.
    """
    if kind == "number":
        match = _NUMBER_RE.fullmatch(value.strip())
        if match is not None:
            return _number_key(match)
    if kind == "path":
        return normalize(value).removeprefix("./")
    return normalize(value)


class _Found:
    """Candidates per kind: key -> value, ordered by last occurrence (a repeat moves to the end)."""

    __slots__ = ("by_kind",)

    def __init__(self) -> None:
        self.by_kind: dict[ArtifactKind, dict[str, str]] = {kind: {} for kind in KINDS}

    def add(self, kind: ArtifactKind, value: str, key: str | None = None) -> None:
        bucket = self.by_kind[kind]
        key = artifact_key(kind, value) if key is None else key
        bucket.pop(key, None)
        bucket[key] = value

    def keys(self, kind: ArtifactKind) -> set[str]:
        return set(self.by_kind[kind])


def _is_identifier(word: str) -> bool:
    if not 3 <= len(word) <= 80:
        return False
    if "." in word:  # a dotted name; "e.g" and "i.e" are not
        return any(len(part) > 1 for part in word.split("."))
    if "_" in word:
        return any(char.isalpha() for char in word)
    return any(char.isupper() for char in word[1:]) and any(char.islower() for char in word)


def _is_plain_word(span: str) -> bool:
    return span.isalpha() and (span.islower() or span.istitle())


def _scan_identifiers(line: str, found: _Found) -> None:
    for match in _WORD_RE.finditer(line):
        start, end = match.span()
        after = line[end : end + 2]
        if after[:1] in ("/", "\\", "@") or (after[:1] == "." and after[1:].isalnum()):
            continue  # a piece of a path, an e-mail address or a version
        if line[start - 1 : start] == '"' and after == '":':
            continue  # a JSON key of a tool call's input
        if _is_identifier(match.group()):
            found.add("identifier", match.group())
    if "`" in line:
        for match in _BACKTICK_RE.finditer(line):
            span = match.group(1)
            if "/" in span or "\\" in span or _is_plain_word(span) or _NUMBERISH_RE.fullmatch(span):
                continue
            found.add("identifier", span)


def _scan_numbers(line: str, found: _Found) -> None:
    for match in _NUMBER_RE.finditer(line):
        found.add("number", " ".join(match.group().split()), _number_key(match))


def _error_key(content: str) -> str:
    head = content[:LINE_CHARS]
    name = _ERROR_NAME_RE.search(head)
    if name is not None:
        return name.group()
    code = _ERROR_CODE_RE.search(head)
    if code is not None:
        return f"HTTP {code.group('http')}" if code.group("http") else code.group()
    return " ".join(content[:_ERROR_HEAD].split())


def _scan_error(content: str, found: _Found) -> None:
    lowered = content[:LINE_CHARS].lower()
    if not any(word in lowered for word in ERROR_WORDS):
        return
    if lowered.startswith((_OMITTED, _TRACEBACK_HEAD)):
        return
    key = _error_key(content)
    if key:
        found.add("error", key)


def _scan_line(line: str, found: _Found) -> None:
    markers = _MARKERS_RE.match(line)
    cut = markers.end() if markers is not None else 0
    content = line[cut:]
    if not content.strip():
        return
    if "/" in content:
        for path in find_paths(content, limit=_PATHS_PER_LINE):
            name = path.rsplit("/", 1)[-1]
            if len(path) <= _PATH_CHARS and any(char.isalpha() for char in name):  # not "HTTP/1.1"
                found.add("path", path)
    _scan_identifiers(content, found)
    _scan_numbers(content, found)
    if "[tool:" not in line[:cut]:  # a call's arguments are not an error report
        _scan_error(content, found)


def _scan(texts: Iterable[str], found: _Found) -> None:
    """Scan ``texts`` in order, reading no more than :data:`SCAN_CHARS` characters of them in total."""
    budget = SCAN_CHARS
    for text in texts:
        if budget <= 0:
            return
        window = text[:budget]
        budget -= len(window)
        if len(window) < len(text) and "\n" in window:
            window = window[: window.rindex("\n")]  # a line cut by the cap could yield a false artefact
        for line in window.split("\n"):
            _scan_line(line, found)


def _select(
    kind: ArtifactKind, found: _Found, user_keys: set[str], claimed: set[str], limit: int
) -> list[Artifact]:
    """User artefacts first (the most recent ``limit``), then the most recent others; each in input order."""
    mine = [(key, value) for key, value in found.by_kind[kind].items() if normalize(value) not in claimed]
    user = [value for key, value in mine if key in user_keys][-limit:] if limit > 0 else []
    room = limit - len(user)
    other = [value for key, value in mine if key not in user_keys][-room:] if room > 0 else []
    claimed.update(normalize(value) for value in user + other)
    return [Artifact(kind, value, True) for value in user] + [Artifact(kind, value, False) for value in other]


def extract_artifacts(
    observer_input: str, *, user_texts: Sequence[str], assertions: Sequence[str], config: LoreConfig
) -> list[Artifact]:
    """The artefacts the observations of ``observer_input`` should retain, kinds in :data:`KINDS` order.

    ``user_texts`` are the segment's user messages: an artefact found there too is ``from_user`` and is kept
    before the others. ``assertions`` are the pinned assertion texts (all ``from_user``). A value already
    kept under a kind of higher priority (assertion, error, path, identifier, number) is not repeated. Pure,
    bounded (see the module docstring) and deterministic; never raises.

    Example::

        extract_artifacts("[assistant] (09:30) fixed src/app.py: 250 ms", user_texts=[], assertions=[],
                          config=LoreConfig())
        # [Artifact('path', 'src/app.py', False), Artifact('number', '250 ms', False)]
    """
    limit = config.artifacts_per_kind
    found = _Found()
    _scan([observer_input], found)
    mine = _Found()
    _scan(user_texts, mine)
    for text in assertions:
        if text.strip():
            found.add("assertion", " ".join(text.split()))
    claimed: set[str] = set()
    chosen: dict[ArtifactKind, list[Artifact]] = {}
    for kind in ("assertion", "error", "path", "identifier", "number"):
        user_keys = found.keys("assertion") if kind == "assertion" else mine.keys(kind)
        cap = min(limit, MAX_ERRORS) if kind == "error" else limit
        chosen[kind] = _select(kind, found, user_keys, claimed, cap)
    return [artifact for kind in KINDS for artifact in chosen[kind]]
