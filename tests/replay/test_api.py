"""The replay modules' public names: sorted, complete ``__all__`` lists that resolve."""

from __future__ import annotations

import importlib

import pytest

from tests.test_public_api import _isort_key

MODULES = [
    "lore_batch.replay",
    "lore_batch.replay.agent",
    "lore_batch.replay.backend",
    "lore_batch.replay.baselines",
    "lore_batch.replay.offline",
    "lore_batch.replay.plot",
    "lore_batch.replay.prompts",
    "lore_batch.replay.report",
    "lore_batch.replay.runner",
    "lore_batch.replay.simulate",
    "lore_batch.replay.stepping",
    "lore_batch.replay.synthetic",
    "lore_batch.replay.workers",
    "lore_core.transcript_formats",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_is_sorted_unique_and_resolves(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == sorted(exported, key=_isort_key), f"{name}.__all__ is not sorted"
    assert len(exported) == len(set(exported))
    for attr in exported:
        assert hasattr(module, attr), f"{name}.{attr} is listed in __all__ but missing"
