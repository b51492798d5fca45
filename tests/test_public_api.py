"""The public API is a test: sorted, complete ``__all__`` lists that really resolve."""

from __future__ import annotations

import importlib
import inspect

import pytest

PACKAGES = ["lore_core", "lore_batch", "lore_batch.emulator", "lore_core.errors", "lore_core.llm"]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_unique_and_resolves(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == sorted(exported), f"{name}.__all__ is not sorted"
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


def test_error_tree_roots_in_lore_error() -> None:
    import lore_core.errors as errors

    for attr in errors.__all__:
        assert issubclass(getattr(errors, attr), errors.LoreError)
