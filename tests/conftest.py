"""Shared test fixtures: where the third-party data lives, and a skip when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
YAMAHA = SHARED / "data" / "dx7" / "yamaha"
ALLTHEWEB = SHARED / "data" / "dx7" / "alltheweb.zip"
CAPTIONS = SHARED / "data" / "captions"
FACTORY_BANKS = ("rom1a", "rom1b", "rom2a", "rom2b", "rom3a", "rom3b", "rom4a", "rom4b")


def need(path: Path) -> Path:
    """Skip the calling test, with the reason, when a piece of ../shared data is absent (fresh clone)."""
    if not path.exists():
        pytest.skip(f"needs third-party data at {path} (present in the developers' and CI's ../shared, absent in a fresh clone)")
    return path


@pytest.fixture
def yamaha_dir() -> Path:
    return need(YAMAHA)
