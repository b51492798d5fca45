"""The package's public surface: a sorted, complete ``__all__``, and docstrings on every public name."""

from __future__ import annotations

import importlib
import inspect

import pytest

MODULES = [
    "lore_core.context",
    "lore_core.context.assemble",
    "lore_core.context.blocks",
    "lore_core.context.budgets",
    "lore_core.context.cut",
    "lore_core.context.dedup",
    "lore_core.context.fit",
    "lore_core.context.history",
    "lore_core.context.prefix",
    "lore_core.context.strip",
    "lore_core.context.terminal",
    "lore_core.context.turns",
    "lore_core.context.view",
]


def _isort_key(name: str) -> tuple[int, str]:
    """ruff's RUF022 order: CONSTANTS, then Classes, then functions, each alphabetical."""
    if name.isupper():
        return (0, name)
    return (1 if name[:1].isupper() else 2, name)


@pytest.mark.parametrize("name", MODULES)
def test_all_is_sorted_and_resolves_and_documented(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == sorted(exported, key=_isort_key)
    assert len(exported) == len(set(exported))
    assert module.__doc__
    for attr in exported:
        value = getattr(module, attr)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), f"{name}.{attr} has no docstring"


def test_package_exports_every_public_function_and_class_it_imports() -> None:
    module = importlib.import_module("lore_core.context")
    public = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_") and (inspect.isclass(value) or inspect.isfunction(value))
    }
    assert public <= set(module.__all__)


def test_contract_names_are_exported() -> None:
    import lore_core.context as context

    for name in (
        "History",
        "AssemblyInput",
        "Assembly",
        "PrefixCache",
        "assemble",
        "is_human",
        "turn_start",
        "window_start_at_or_after",
        "strip_tool_outputs",
        "dedup_outputs",
        "render_rows",
        "select_rows",
        "prefix_pair",
        "update_prefix_cache",
        "Budgets",
        "budgets",
        "fits",
        "NOTICE_TEXT",
    ):
        assert hasattr(context, name)
