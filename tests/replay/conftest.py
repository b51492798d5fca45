"""Fixtures for replays: where the shared real session lives (``../shared/data`` or ``LORE_SHARED_DATA``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(
    os.environ.get("LORE_SHARED_DATA") or Path(__file__).resolve().parents[3] / "shared" / "data"
)
SHARED_SESSION = SHARED_DATA / "session-cli-sentry-issue.json"


@pytest.fixture
def shared_session_path() -> Path:
    if not SHARED_SESSION.exists():
        pytest.skip(
            f"the shared real session is absent: expected {SHARED_SESSION} (set LORE_SHARED_DATA to its folder)"
        )
    return SHARED_SESSION
