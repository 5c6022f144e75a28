"""Helpers for the CLI tests (imported by name: a second conftest.py would shadow the root one)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from patchsmith.cli import main
from patchsmith.examples import load_examples
from patchsmith.synth.sysex import write_vmem

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.startswith("error: ")]

    def assert_clean_failure(self) -> None:
        """Exit status 2, at least one ``error:`` line, and no traceback."""
        assert self.code == 2, (self.code, self.out, self.err)
        assert self.error_lines, self.err
        assert "Traceback" not in self.err and "Traceback" not in self.out


@pytest.fixture
def cli(capsys, monkeypatch, tmp_path):
    """Run ``main([...])`` in-process, in ``tmp_path``; returns a ``Result``."""
    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> Result:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def proc(tmp_path):
    """Run ``python -m patchsmith ...`` as a real subprocess in ``tmp_path``; returns a ``Result``."""

    def run(*args: str) -> Result:
        done = subprocess.run([sys.executable, "-m", "patchsmith", *map(str, args)], cwd=tmp_path,
                              capture_output=True, text=True, timeout=300)
        return Result(done.returncode, done.stdout, done.stderr)

    return run


@pytest.fixture(scope="session")
def examples():
    return load_examples(EXAMPLES)


@pytest.fixture
def bank(tmp_path, examples) -> Path:
    """A 32-voice bank: the examples first, then init voices."""
    path = tmp_path / "examples.syx"
    path.write_bytes(write_vmem([ex.patch for ex in examples]))
    return path


@pytest.fixture
def epiano_patch() -> dict:
    return json.loads((EXAMPLES / "epiano.json").read_text())["patch"]


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())
