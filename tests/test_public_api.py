"""The public API is a test: sorted, complete ``__all__`` lists that really resolve."""

from __future__ import annotations

import importlib
import inspect

import pytest

PACKAGES = [
    "lore_batch",
    "lore_batch.advisor",
    "lore_batch.auth",
    "lore_batch.client",
    "lore_batch.emulator",
    "lore_batch.errors",
    "lore_batch.limits",
    "lore_batch.pricing",
    "lore_batch.registry",
    "lore_batch.segments",
    "lore_batch.costlog",
    "lore_batch.sync_client",
    "lore_core",
    "lore_core.errors",
    "lore_core.flatten",
    "lore_core.invariants",
    "lore_core.llm",
    "lore_core.messages",
    "lore_core.ranking",
    "lore_core.recall",
    "lore_core.recall_tool",
    "lore_core.tokens",
]


def _isort_key(name: str) -> tuple[int, str]:
    """ruff's RUF022 order: CONSTANTS, then Classes, then functions, each alphabetical."""
    if name.isupper():
        return (0, name)
    return (1 if name[:1].isupper() else 2, name)


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_unique_and_resolves(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == sorted(exported, key=_isort_key), f"{name}.__all__ is not sorted"
    assert len(exported) == len(set(exported))
    for attr in exported:
        assert hasattr(module, attr), f"{name}.{attr} is listed in __all__ but missing"


@pytest.mark.parametrize("name", ["lore_core", "lore_batch"])
def test_package_exports_every_public_class_it_imports(name: str) -> None:
    module = importlib.import_module(name)
    public = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_") and (inspect.isclass(value) or inspect.isfunction(value))
    }
    assert public <= set(module.__all__)


@pytest.mark.parametrize("name", ["lore_core.errors", "lore_batch.errors"])
def test_error_tree_roots_in_lore_error(name: str) -> None:
    from lore_core.errors import LoreError

    module = importlib.import_module(name)
    for attr in module.__all__:
        assert issubclass(getattr(module, attr), LoreError)
