"""A seeded generator of realistic coding sessions, the input of ``lore demo``.

A session is a series of human requests. Each one starts a chain of assistant steps: a thinking block (most
steps), a line of text (some), one tool call (``grep``, ``read_file``, ``edit_file``, ``bash`` running the
tests), and the tool's result in the next user message; a chain ends with an answer. Tool results are what an
agent sees: numbered file contents (the same file read again later), test runs with tracebacks and failures,
failed edits (``is_error``). Times move a few seconds per step, longer for test runs, a minute or two between
requests, and now and then an idle gap of 6-40 minutes (the prompt cache goes cold, the idle work runs).

Deterministic: the same ``turns``, ``seed`` and ``start`` give the same transcript, byte for byte.

Example::

    transcript = coding_session(turns=10, seed=1)
    validate_messages(transcript.anthropic_messages)   # passes
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from lore_core.transcripts import TimedMessage, Transcript

__all__ = ["DEMO_START", "DEMO_SYSTEM", "DEMO_TOOLS", "coding_session"]

DEMO_START: Final = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
DEMO_SYSTEM: Final = (
    "You are a careful coding agent working in the repository of a small Python web service. Use the tools "
    "to read files, search, edit and run the test suite. Keep changes minimal and explain what you changed."
)
DEMO_TOOLS: Final[tuple[dict[str, Any], ...]] = (
    {
        "name": "read_file",
        "description": "Read a file of the repository; lines come back numbered.",
        "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
    },
    {
        "name": "edit_file",
        "description": "Replace one exact occurrence of old_string with new_string in a file.",
        "input_schema": {
            "type": "object",
            "properties": {
                "path": {"type": "string"},
                "old_string": {"type": "string"},
                "new_string": {"type": "string"},
            },
            "required": ["path", "old_string", "new_string"],
        },
    },
    {
        "name": "grep",
        "description": "Search the repository for a regular expression.",
        "input_schema": {
            "type": "object",
            "properties": {"pattern": {"type": "string"}},
            "required": ["pattern"],
        },
    },
    {
        "name": "bash",
        "description": "Run a shell command in the repository and return its output.",
        "input_schema": {
            "type": "object",
            "properties": {"command": {"type": "string"}},
            "required": ["command"],
        },
    },
)

_MODULES: Final = ("store", "api", "cli", "models", "config", "auth", "cache", "jobs", "billing", "search")
_NOUNS: Final = ("session", "user", "invoice", "token", "order", "record", "job", "event", "cursor", "quota")
_VERBS: Final = (
    "load",
    "save",
    "resolve",
    "render",
    "validate",
    "refresh",
    "expire",
    "merge",
    "parse",
    "sync",
)
_ERRORS: Final = (
    ("KeyError", "'{noun}_id'"),
    ("IntegrityError", "UNIQUE constraint failed: {noun}s.id"),
    ("AssertionError", "assert 3 == 2"),
    ("TypeError", "{verb}_{noun}() missing 1 required positional argument: 'now'"),
    ("AttributeError", "'NoneType' object has no attribute '{noun}_id'"),
    ("TimeoutError", "{verb}_{noun} took longer than 5.0 s"),
)
_REQUESTS: Final = (
    "The test {test} fails with {error}. Can you find out why and fix it?",
    "Add a `--{flag}` option to the `{verb}` command in {path} and cover it with a test.",
    "`{func}` in {path} is getting too long; split it up without changing behaviour.",
    "Why is `{func}` slow when the cache is cold? Measure it and make it faster if you can.",
    "Rename `{func}` to `{verb}_{noun}_v2` everywhere and keep the old name as a deprecated alias.",
    "Add type hints to {path} and make `mypy --strict` pass on it.",
    "From now on, never touch the migrations folder without asking me first. Now: {path} logs secrets "
    "at debug level, please fix that.",
    "Users report a {error} when they {verb} a {noun} twice in a row. Reproduce it with a test, then fix it.",
)
_THOUGHTS: Final = (
    "The failure points at {path}; I should read it before guessing.",
    "The traceback ends in `{func}`, so the bug is probably in how it handles a missing {noun}.",
    "Editing without re-running the tests would hide a regression: run them after the change.",
    "The old behaviour must stay for callers that pass a {noun} id, so keep the signature.",
    "Grep first: `{func}` may be called from more places than the test shows.",
    "This edit failed because the file changed; read it again and retry with the current text.",
)


@dataclass
class _Repo:
    rng: random.Random
    files: dict[str, list[str]] = field(default_factory=dict)

    def path(self) -> str:
        return self.rng.choice(sorted(self.files))

    def func(self, path: str) -> str:
        names = [line.split("(")[0][4:] for line in self.files[path] if line.startswith("def ")]
        return self.rng.choice(names) if names else "main"


def _make_repo(rng: random.Random) -> _Repo:
    repo = _Repo(rng=rng)
    for module in _MODULES:
        for folder, prefix in (("src/app", ""), ("tests", "test_")):
            lines = [f'"""The {module} {"tests" if prefix else "module"} of the service."""', ""]
            lines += ["from __future__ import annotations", "", "import logging", ""]
            for _ in range(rng.randint(5, 16)):
                noun, verb = rng.choice(_NOUNS), rng.choice(_VERBS)
                name = f"{prefix}{verb}_{noun}"
                lines.append(f"def {name}({noun}_id: str, *, now: float | None = None) -> dict[str, object]:")
                lines.append(
                    f'    """{verb.capitalize()} one {noun} of the {module} {"suite" if prefix else "store"}."""'
                )
                for _ in range(rng.randint(3, 14)):
                    other = rng.choice(_NOUNS)
                    lines.append(
                        f"    {other} = {module}_{rng.choice(_VERBS)}({noun}_id, limit={rng.randint(1, 500)})"
                    )
                    if rng.random() < 0.3:
                        lines.append(f"    if {other} is None:")
                        lines.append(f"        raise KeyError({noun}_id)")
                lines.append(f'    return {{"{noun}": {noun}_id, "ok": True}}')
                lines.append("")
            repo.files[f"{folder}/{prefix}{module}.py"] = lines
    return repo


class _Writer:
    """Appends messages with their times and keeps tool ids unique."""

    def __init__(self, rng: random.Random, start: datetime) -> None:
        self.rng = rng
        self.now = start
        self.items: list[TimedMessage] = []
        self.tool_ids = 0

    def add(self, role: str, content: str | list[dict[str, Any]], *, seconds: float) -> None:
        self.now += timedelta(seconds=round(seconds, 3))
        self.items.append(TimedMessage(message={"role": role, "content": content}, at=self.now))

    def step(self, blocks: list[dict[str, Any]], name: str, tool_input: dict[str, Any]) -> str:
        self.tool_ids += 1
        tool_id = f"toolu_{self.tool_ids:05d}"
        blocks.append({"type": "tool_use", "id": tool_id, "name": name, "input": tool_input})
        self.add("assistant", blocks, seconds=self.rng.uniform(2.0, 14.0))
        return tool_id

    def result(self, tool_id: str, text: str, *, seconds: float, error: bool = False) -> None:
        block: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_id, "content": text}
        if error:
            block["is_error"] = True
        self.add("user", [block], seconds=seconds)


def _fill(template: str, rng: random.Random, **known: str) -> str:
    error, detail = rng.choice(_ERRORS)
    values = {
        "noun": rng.choice(_NOUNS),
        "verb": rng.choice(_VERBS),
        "flag": rng.choice(("dry-run", "verbose", "since", "limit", "json")),
        "test": f"tests/test_{rng.choice(_MODULES)}.py::test_{rng.choice(_VERBS)}_{rng.choice(_NOUNS)}",
        **known,
    }
    values["error"] = f"{error}: {detail.format(**values)}"
    return template.format(**values)


def _thinking(writer: _Writer, blocks: list[dict[str, Any]], **known: str) -> None:
    rng = writer.rng
    if rng.random() < 0.7:
        text = " ".join(_fill(rng.choice(_THOUGHTS), rng, **known) for _ in range(rng.randint(1, 3)))
        blocks.append({"type": "thinking", "thinking": text, "signature": f"sig-{rng.getrandbits(64):016x}"})


def _test_output(rng: random.Random, repo: _Repo, path: str, func: str, *, passing: bool) -> str:
    module = path.rsplit("/", 1)[-1].removesuffix(".py").removeprefix("test_")
    total = rng.randint(40, 160)
    lines = ["============================= test session starts ==============================", ""]
    lines += [
        f"tests/test_{m}.py {'.' * rng.randint(3, 12)}" for m in _MODULES[: rng.randint(4, len(_MODULES))]
    ]
    if passing:
        lines.append(f"{'=' * 20} {total} passed in {rng.uniform(0.8, 9.0):.2f}s {'=' * 20}")
        return "\n".join(lines)
    error, detail = rng.choice(_ERRORS)
    noun, verb = rng.choice(_NOUNS), rng.choice(_VERBS)
    lines += ["", "=================================== FAILURES ===================================", ""]
    lines.append(f"____________________ test_{verb}_{noun} ____________________")
    for number in range(rng.randint(8, 30)):
        lines.append(f"src/app/{module}.py:{rng.randint(10, 300)}: in {func}")
        lines.append(f"    {noun} = {module}_{rng.choice(_VERBS)}({noun}_id, limit={number})")
    lines.append(f"E   {error}: {detail.format(noun=noun, verb=verb)}")
    lines.append(f"FAILED tests/test_{module}.py::test_{verb}_{noun} - {error}")
    lines.append(f"{'=' * 10} 1 failed, {total - 1} passed in {rng.uniform(0.8, 9.0):.2f}s {'=' * 10}")
    return "\n".join(lines)


def _read(writer: _Writer, repo: _Repo, path: str, func: str) -> None:
    blocks: list[dict[str, Any]] = []
    _thinking(writer, blocks, path=path, func=func)
    tool_id = writer.step(blocks, "read_file", {"path": path})
    text = "\n".join(f"{n:>4}  {line}" for n, line in enumerate(repo.files[path], start=1))
    writer.result(tool_id, text, seconds=writer.rng.uniform(0.1, 0.6))


def _edit(writer: _Writer, repo: _Repo, path: str, func: str) -> bool:
    rng = writer.rng
    blocks: list[dict[str, Any]] = []
    _thinking(writer, blocks, path=path, func=func)
    if rng.random() < 0.4:
        blocks.append({"type": "text", "text": f"Changing `{func}` in {path}."})
    lines = repo.files[path]
    index = rng.randrange(len(lines))
    old = lines[index]
    new = old.replace("limit=", "limit=max(1, ") + ")" if "limit=" in old else old + "  # checked"
    tool_id = writer.step(
        blocks, "edit_file", {"path": path, "old_string": old.strip(), "new_string": new.strip()}
    )
    if rng.random() < 0.15:
        writer.result(tool_id, f"Error: old_string not found in {path}", seconds=0.2, error=True)
        return False
    lines[index] = new
    writer.result(tool_id, f"Applied 1 edit to {path} (line {index + 1}).", seconds=0.2)
    return True


def _run_tests(writer: _Writer, repo: _Repo, path: str, func: str, *, passing: bool) -> None:
    rng = writer.rng
    blocks: list[dict[str, Any]] = []
    _thinking(writer, blocks, path=path, func=func)
    command = rng.choice(("pytest -x -q", f"pytest -q tests/test_{path.rsplit('/', 1)[-1]}", "pytest -q"))
    tool_id = writer.step(blocks, "bash", {"command": command})
    writer.result(
        tool_id, _test_output(rng, repo, path, func, passing=passing), seconds=rng.uniform(3.0, 40.0)
    )


def _turn(writer: _Writer, repo: _Repo, gap: float) -> None:
    rng = writer.rng
    path = repo.path()
    func = repo.func(path)
    writer.add("user", _fill(rng.choice(_REQUESTS), rng, path=path, func=func), seconds=gap)
    if rng.random() < 0.35:
        blocks: list[dict[str, Any]] = []
        _thinking(writer, blocks, path=path, func=func)
        tool_id = writer.step(blocks, "grep", {"pattern": f"def {func}"})
        hits = [p for p in sorted(repo.files) if rng.random() < 0.25] or [path]
        writer.result(tool_id, "\n".join(f"{p}:{rng.randint(5, 200)}:def {func}(" for p in hits), seconds=0.3)
    for _ in range(rng.randint(1, 3)):
        _read(writer, repo, rng.choice((path, repo.path())), func)
    _run_tests(writer, repo, path, func, passing=False)
    for attempt in range(rng.randint(1, 3)):
        if not _edit(writer, repo, path, func):
            _read(writer, repo, path, func)
            _edit(writer, repo, path, func)
        _run_tests(writer, repo, path, func, passing=attempt > 0 or rng.random() < 0.5)
    answer = (
        f"Fixed: `{func}` in {path} now checks its limit before the lookup, and the suite passes. "
        f"I touched only {path}; the migrations folder is unchanged."
    )
    writer.add("assistant", answer, seconds=rng.uniform(3.0, 12.0))


def coding_session(*, turns: int = 40, seed: int = 0, start: datetime = DEMO_START) -> Transcript:
    """A synthetic coding session of ``turns`` human requests (see the module docstring).

    Raises:
        ValueError: ``turns`` is below 1.
    """
    if turns < 1:
        raise ValueError("a session needs at least one turn")
    rng = random.Random(seed)
    repo = _make_repo(rng)
    writer = _Writer(rng, start)
    for number in range(turns):
        if number == 0:
            gap = 0.0
        elif rng.random() < 0.18:
            gap = rng.uniform(6 * 60, 40 * 60)  # a meeting, lunch: the cache goes cold
        else:
            gap = rng.uniform(15.0, 150.0)
        _turn(writer, repo, gap)
    return Transcript(
        session_id=f"demo-{seed}", label="synthetic coding session", messages=tuple(writer.items)
    )
