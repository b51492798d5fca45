"""Write ``docs/reference.md`` from the public API's docstrings: ``.venv/bin/python tools/gen_reference.py``.

For each module below, every name in its ``__all__``: the signature (a class's constructor), the docstring,
and for classes their public methods and properties with the first paragraph of theirs. ``--check`` exits 1
when the file on disk differs from what would be written (for CI or a pre-commit hook).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "docs" / "reference.md"
MODULES = (
    ("lore_core", "the engine: sessions, transform, workers, store, tokens, messages"),
    ("lore_batch", "batching: clients, the pool, the dispatcher, credentials"),
    ("lore_batch.pricing", "the price catalog"),
    ("lore_batch.costlog", "the request log"),
    ("lore_batch.advisor", "the batch advisor"),
    ("lore_batch.emulator", "the Anthropic API emulator"),
    ("lore_batch.replay", "lore demo and lore replay"),
    ("lore_batch.replay.simulate", "the prompt-cache cost simulator"),
    ("lore_batch.replay.baselines", "the baselines of a replay"),
    ("lore_core.transcript_formats", "reading recorded sessions"),
)


def _doc(obj: object, *, first_paragraph: bool = False) -> str:
    text = inspect.getdoc(obj) or ""
    if first_paragraph:
        text = text.split("\n\n", 1)[0]
    return text.strip()


class _Raw:
    """An annotation kept as the source text (``from __future__ import annotations``), shown unquoted."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _unquoted(annotation: object) -> object:
    return _Raw(annotation) if isinstance(annotation, str) else annotation


def _default(value: object) -> object:
    """A default shown by name when it is a function or class (their repr holds a memory address)."""
    if inspect.isfunction(value) or inspect.isclass(value) or inspect.isbuiltin(value):
        return _Raw(getattr(value, "__qualname__", repr(value)))
    return value


def _signature(name: str, obj: object) -> str | None:
    try:
        signature = inspect.signature(obj)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    parameters = [
        p.replace(
            annotation=_unquoted(p.annotation),
            default=p.default if p.default is inspect.Parameter.empty else _default(p.default),
        )
        for p in signature.parameters.values()
    ]
    returns = signature.return_annotation
    shown = signature.replace(
        parameters=parameters,
        return_annotation=inspect.Signature.empty if returns in (None, "None") else _unquoted(returns),
    )
    return f"{name}{shown}"


def _members(cls: type) -> list[str]:
    lines: list[str] = []
    for attr, value in cls.__dict__.items():
        if attr.startswith("_"):
            continue
        if isinstance(value, property):
            doc = _doc(value, first_paragraph=True)
            lines.append(f"- `{attr}` (property){': ' + doc.replace(chr(10), ' ') if doc else ''}")
        elif isinstance(value, classmethod | staticmethod) or inspect.isfunction(value):
            function = value.__func__ if isinstance(value, classmethod | staticmethod) else value
            signature = _signature(attr, function) or attr
            doc = _doc(function, first_paragraph=True)
            lines.append(f"- `{signature}`{': ' + doc.replace(chr(10), ' ') if doc else ''}")
    return lines


def _entry(module: ModuleType, name: str) -> list[str]:
    obj = getattr(module, name)
    out = [f"### `{name}`", ""]
    if inspect.isclass(obj):
        signature = _signature(name, obj)
        if signature:
            out += ["```python", f"class {signature}", "```", ""]
        doc = _doc(obj)
        if doc:
            out += [doc, ""]
        members = _members(obj)
        if members:
            out += [*members, ""]
    elif callable(obj):
        signature = _signature(name, obj)
        prefix = "async def " if inspect.iscoroutinefunction(obj) else "def "
        if signature:
            out += ["```python", prefix + signature, "```", ""]
        doc = _doc(obj)
        if doc:
            out += [doc, ""]
    else:
        out += [f"A constant: `{name} = {obj!r}`"[:300], ""]
    return out


def render() -> str:
    lines = [
        "# Reference",
        "",
        "Generated from the docstrings by `tools/gen_reference.py`; do not edit by hand (run the script instead).",
        "Every name below is in its module's `__all__`. Explanations: [concepts](concepts.md); how-to pages: the",
        "[README](../README.md#documentation).",
        "",
    ]
    for module_name, summary in MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:  # a module another change has not landed yet
            lines += [f"## `{module_name}`", "", f"(not importable here: {exc})", ""]
            continue
        lines += [f"## `{module_name}`: {summary}", ""]
        doc = _doc(module, first_paragraph=True)
        if doc:
            lines += [doc, ""]
        for name in sorted(getattr(module, "__all__", ())):
            lines += _entry(module, name)
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/reference.md is out of date")
    args = parser.parse_args()
    text = render()
    if args.check:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET.relative_to(ROOT)} is out of date: run tools/gen_reference.py", file=sys.stderr)
            sys.exit(1)
        return
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)} ({text.count(chr(10))} lines)")


if __name__ == "__main__":
    main()
