"""The Alembic script directory ships inside the package, and every source package is in the wheel list."""

from __future__ import annotations

import tomllib
from pathlib import Path

from setuptools import find_packages

from lore_core.store.migrate import MIGRATIONS_PACKAGE, alembic_config

ROOT = Path(__file__).resolve().parents[2]


def _setuptools_config() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as handle:
        config: dict[str, object] = tomllib.load(handle)["tool"]["setuptools"]
    return config


def test_every_package_under_src_is_listed_for_the_wheel() -> None:
    # `packages` is an explicit list (the migrations mapping rules out `packages.find`): a new package under
    # src/ must be added there or it silently goes missing from installed wheels.
    listed = set(_setuptools_config()["packages"])  # type: ignore[call-overload]
    assert set(find_packages(ROOT / "src")) | {MIGRATIONS_PACKAGE} == listed


def test_migrations_package_is_the_top_level_directory() -> None:
    config = _setuptools_config()
    assert config["package-dir"] == {"": "src", MIGRATIONS_PACKAGE: "migrations"}
    script_location = Path(alembic_config().get_main_option("script_location") or "")
    assert script_location.resolve() == (ROOT / "migrations").resolve()
    assert (script_location / "env.py").is_file()
    assert (script_location / "script.py.mako").is_file()
    assert any((script_location / "versions").glob("*.py"))
