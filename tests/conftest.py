"""Shared test fixtures: where the third-party data lives, and a skip when it is absent."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# mido registers its meta messages by iterating its module's globals() at import time. If a garbage
# collection during that loop finalises an unclosed socket or pipe left by an earlier test, the
# ResourceWarning lands in mido's globals as __warningregistry__ and the import fails with
# "dictionary changed size during iteration". Importing it here, before any test runs, avoids that.
import mido  # noqa: F401,E402

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


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel of the project built once from a clean copy of the source (no stale build/ folder)."""
    src = tmp_path_factory.mktemp("source") / "patchsmith"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(
        ".venv", ".git", "build", "dist", "demo-out", ".npm-tools", "__pycache__", "*.egg-info", ".pytest_cache",
        ".hypothesis"))
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(src)], check=True, capture_output=True)
    return next(out.glob("patchsmith-*.whl"))
