"""The emulator package's shape: public names, frozen records, small modules."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from pathlib import Path

import pytest

import lore_batch.emulator as emulator
from lore_batch.emulator import BatchSnapshot, BillingRecord, RequestCounts, RequestRecord, is_known_model
from lore_batch.emulator.auth import Credential, extract_credential
from lore_batch.pricing import PriceRow
from lore_core.llm import Usage


def test_all_is_sorted_complete_and_documented() -> None:
    assert emulator.__all__ == sorted(emulator.__all__)
    public = {
        name
        for name, value in vars(emulator).items()
        if not name.startswith("_") and (inspect.isclass(value) or inspect.isfunction(value))
    }
    assert public <= set(emulator.__all__)
    for name in emulator.__all__:
        value = getattr(emulator, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), name


@pytest.mark.parametrize(
    "record", [RequestRecord, BillingRecord, RequestCounts, BatchSnapshot, PriceRow, Usage]
)
def test_records_are_frozen_and_slotted(record: type) -> None:
    assert dataclasses.is_dataclass(record)
    assert "__slots__" in vars(record)
    assert record.__dataclass_params__.frozen


def test_modules_stay_small() -> None:
    package = Path(emulator.__file__).parent
    for path in [*package.glob("*.py"), package.parent / "pricing.py"]:
        lines = path.read_text().count("\n")
        assert lines < 400, f"{path.name} has {lines} lines"
        importlib.import_module(
            f"lore_batch.emulator.{path.stem}" if path.parent == package else "lore_batch.pricing"
        )


def test_credential_repr_hides_the_value() -> None:
    credential = extract_credential({"x-api-key": "sk-ant-api03-hidden"})
    assert isinstance(credential, Credential)
    assert "hidden" not in repr(credential)
    assert "hidden" not in str(credential)
    assert credential.fingerprint in repr(credential)


@pytest.mark.parametrize(
    ("model", "known"),
    [
        ("claude-opus-4-6", True),
        ("claude-opus-4-20250514", True),
        ("claude-sonnet-4-5-20250929", True),
        ("claude-haiku-4-5", True),
        ("claude-3-5-haiku-latest", True),
        ("claude-sonnet-4", True),
        ("claude-sonnet-40", False),
        ("claude-3-opus-20240229", False),
        ("claude-opus-4-6-", False),
        ("Claude-opus-4-6", False),
        (None, False),
    ],
)
def test_known_models_by_family_prefix(model: object, known: bool) -> None:
    assert is_known_model(model) is known
