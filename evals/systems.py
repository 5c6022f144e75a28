"""What the evaluation runners evaluate: a ``System`` turns one caption into a patch and/or audio.

The runners (``evals.runner``, ``evals.bench``, ``evals.refine_eval``) only see this protocol, so
``evals`` never imports ``agent``: the systems that need a model or the offline designer live in
``agent/systems.py`` (``make_system(spec)``). The one system that needs nothing above ``evals`` is
here: ``WavFolderSystem``, the audio of any text-to-audio model, one WAV per caption id, and
``GroundTruthSystem``, the caption's own patch (the ceiling every metric is read against).

A system answers with a ``SystemOutput``: the patch it produced (canonical, OP1-first) or None, audio
when it makes audio itself (a WAV folder) or None (the runner renders the patch), and how it got
there: whether it called the tool, whether the patch was valid, after how many corrections, the raw
text of the model's last answer and the error when it failed. A failure of one caption is an output
with ``error`` set, never an exception; an exception means the system as a whole cannot go on (an
unreachable endpoint).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

RAW_TEXT_LIMIT = 4000  # characters of a model's answer kept per item: enough to see what went wrong


class SystemUnavailable(RuntimeError):
    """A system that cannot run at all (bad spec, unreachable endpoint, missing folder)."""


class EvalRow(BaseModel):
    """One caption to evaluate: its id in the source CSVs, the text, and the ground-truth patch if known."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    caption: str
    name: str = ""
    patch: dict[str, Any] | None = None  # canonical (OP1-first) ground truth, from the patch CSV


class RenderSpec(BaseModel):
    """How every patch of a run is played: the source research's convention by default (note 60, ~9.6 s)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    note: int = Field(60, ge=0, le=127)
    velocity: int = Field(100, ge=1, le=127)
    hold_s: float = Field(6.4, gt=0, le=30)
    release_s: float = Field(3.2, ge=0, le=30)
    sample_rate: int = 48000

    @property
    def seconds(self) -> float:
        """Length of one render in seconds."""
        return self.hold_s + self.release_s

    def render_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``synth.render.render`` (and ``render_and_describe``) for these settings."""
        return self.model_dump()


class SystemOutput(BaseModel):
    """What a system made of one caption, and how."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    patch: dict[str, Any] | None = None
    audio: Any = Field(None, exclude=True)  # float mono numpy array when the system makes audio itself
    sample_rate: int | None = None
    valid: bool = False  # a patch that passed validation (the server accepted it); for audio systems: audio present
    tool_called: bool = False  # the model called the render tool at least once
    corrections: int = 0  # tool errors before the accepted patch (the model fixed them)
    attempts: int = 0  # patch-bearing tool calls (or answers) in all
    turns: int = 0
    error: str | None = None
    raw: str = ""  # the model's last answer text (cut to RAW_TEXT_LIMIT)
    elapsed_s: float = 0.0


@runtime_checkable
class System(Protocol):
    """Caption in, ``SystemOutput`` out; ``describe()`` says what it is (recorded in every result)."""

    name: str
    makes_patches: bool  # False for audio-only systems (no validity rate, no patch scores)

    def describe(self) -> dict[str, Any]:
        """What the system is: kind, model, endpoint (never a key), settings."""
        ...

    def generate(self, row: EvalRow, render: RenderSpec) -> SystemOutput:
        """The system's answer for one caption (failures as ``error``, never raised)."""
        ...

    def close(self) -> None:
        """Release what the system holds (connections, subprocesses)."""
        ...


def cut(text: str | None, limit: int = RAW_TEXT_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, with a mark when it was cut."""
    text = text or ""
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more characters]"


class WavFolderSystem:
    """The audio of any text-to-audio model: ``DIR/<caption id>.wav`` for each caption."""

    makes_patches = False

    def __init__(self, folder: str | os.PathLike[str]):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise SystemUnavailable(f"wavs:{folder}: no such folder")
        if not any(self.folder.glob("*.wav")):
            raise SystemUnavailable(f"wavs:{folder}: the folder holds no .wav files (expected one <caption id>.wav "
                                    "per caption)")
        self.name = f"wavs:{self.folder.name}"

    def describe(self) -> dict[str, Any]:
        """The folder (its name, not the machine's path layout, goes into shared results)."""
        return {"kind": "wavs", "name": self.name, "folder": self.folder.name}

    def generate(self, row: EvalRow, render: RenderSpec) -> SystemOutput:
        """The WAV named after the caption's id, as float mono."""
        from ..synth.wav import WavError, read_wav

        path = self.folder / f"{row.id}.wav"
        if not path.is_file():
            return SystemOutput(error=f"no file {path.name} in {self.folder}")
        try:
            audio, sr = read_wav(path)
        except (WavError, OSError, RuntimeError) as err:
            return SystemOutput(error=f"{path.name}: {err}")
        x = np.asarray(audio, dtype=np.float32)
        if x.ndim == 2:
            x = x.mean(axis=1).astype(np.float32)  # metrics take mono, as the published ones did
        return SystemOutput(audio=x, sample_rate=int(sr), valid=x.size > 0)

    def close(self) -> None:
        """Nothing to release."""


class GroundTruthSystem:
    """The ground-truth patch itself: the published table's "Test data" row, a ceiling for every metric."""

    makes_patches = True
    name = "ground-truth"

    def describe(self) -> dict[str, Any]:
        """Kind and name."""
        return {"kind": "truth", "name": self.name}

    def generate(self, row: EvalRow, render: RenderSpec) -> SystemOutput:
        """The caption's own patch (an error when the patch CSV has none)."""
        if row.patch is None:
            return SystemOutput(error="no ground-truth patch for this caption (give --patches)")
        return SystemOutput(patch=dict(row.patch), valid=True)

    def refine(self, patch: dict[str, Any], instruction: str, render: RenderSpec) -> SystemOutput:
        """No edit at all: the floor of eval-refine (accuracy 0, cost 0)."""
        return SystemOutput(patch=dict(patch), valid=True)

    def close(self) -> None:
        """Nothing to release."""


__all__ = ["EvalRow", "GroundTruthSystem", "RenderSpec", "System", "SystemOutput", "SystemUnavailable",
           "WavFolderSystem", "cut"]
