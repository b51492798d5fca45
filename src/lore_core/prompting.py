"""Worker prompts: package data files written in our own words, and the shape every worker call takes.

Each prompt file in ``lore_core/prompts/`` is a :class:`string.Template`. The system prompt of every worker
starts with a marker line, ``[lore-memory:<worker>]``, so tools (the emulator's responders, logs, request
filters) can tell worker traffic apart without reading the rest. User prompts put their inputs in XML-style
sections (``<transcript>...</transcript>``) that :func:`section` reads back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from string import Template
from typing import Final, Literal

from lore_core.errors import ConfigError

__all__ = [
    "WORKERS",
    "Prompt",
    "WorkerName",
    "load_template",
    "marker",
    "render",
    "section",
    "worker_of",
]

WorkerName = Literal["distill", "meta-distill", "curate", "validate", "recall"]
WORKERS: Final[tuple[WorkerName, ...]] = ("distill", "meta-distill", "curate", "validate", "recall")

_MARKER_RE = re.compile(r"^\[lore-memory:([a-z-]+)\]")


@dataclass(frozen=True, slots=True, kw_only=True)
class Prompt:
    """One worker call, fully decided by pure code: the texts, the worker label and the output budget."""

    worker: WorkerName
    system: str
    user: str
    max_tokens: int


def marker(worker: WorkerName) -> str:
    """The first line of every system prompt of ``worker``."""
    return f"[lore-memory:{worker}]"


def worker_of(system: str) -> WorkerName | None:
    """The worker a system prompt belongs to, from its marker line; None for anything else."""
    match = _MARKER_RE.match(system)
    if match is None:
        return None
    name = match.group(1)
    for worker in WORKERS:
        if worker == name:
            return worker
    return None


@cache
def load_template(name: str) -> Template:
    """The prompt template ``lore_core/prompts/<name>.md``.

    Raises:
        ConfigError: the file is not part of the installed package.
    """
    try:
        text = resources.files("lore_core").joinpath("prompts", f"{name}.md").read_text(encoding="utf-8")
    except (FileNotFoundError, OSError) as exc:
        raise ConfigError(f"prompt template {name!r} is missing from the lore_core package") from exc
    return Template(text)


def render(name: str, **values: str) -> str:
    """Fill template ``name``; every placeholder must be given (a missing one raises ``ConfigError``)."""
    try:
        return load_template(name).substitute(values).strip() + "\n"
    except KeyError as exc:
        raise ConfigError(f"prompt template {name!r} needs a value for {exc.args[0]!r}") from exc


def section(text: str, name: str) -> str | None:
    """The body of the first ``<name>...</name>`` section in ``text`` (stripped), or None if absent."""
    start_tag, end_tag = f"<{name}>", f"</{name}>"
    start = text.find(start_tag)
    if start < 0:
        return None
    end = text.find(end_tag, start + len(start_tag))
    if end < 0:
        return None
    return text[start + len(start_tag) : end].strip("\n")
