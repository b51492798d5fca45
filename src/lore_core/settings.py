"""Environment reading, in one place. Public constructors call :meth:`Settings.from_env` for their defaults;
nothing else in the library reads ``os.environ``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import platformdirs

__all__ = ["APP_NAME", "Settings", "default_db_url"]

APP_NAME = "lore-memory"


def default_db_url() -> str:
    """The SQLite file in the user data dir, e.g. ``~/.local/share/lore-memory/lore.db`` on Linux."""
    path = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "lore.db"
    return f"sqlite+aiosqlite:///{path}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Values the environment may set. ``db_url`` falls back to :func:`default_db_url`."""

    db_url: str
    batch_disabled: bool

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            db_url=env.get("LORE_DB_URL") or default_db_url(),
            # Only the exact value "1" disables batching: "0", "true" and unset do not (BATCH.md 3.1).
            batch_disabled=env.get("LORE_BATCH_DISABLED") == "1",
        )
