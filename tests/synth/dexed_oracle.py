"""dexed-py as a test oracle (GPL-3, a test-only dependency; never imported by the package)."""

from __future__ import annotations

import numpy as np
import pytest

from patchsmith.schema.patch import Patch
from patchsmith.synth.sysex import patch_to_vced

dexed = pytest.importorskip("dexed", reason="dexed-py (the dev extra) is the engine's test oracle")


def dexed_patch(patch: Patch) -> "dexed.Patch":
    """The same voice as a dexed-py Patch, loaded from our own VCED bytes."""
    return dexed.Patch.from_sysex(bytes(patch_to_vced(patch)) + b"\x3f")


def dexed_render(patch: Patch, note: int = 60, velocity: int = 100, hold_s: float = 3.0, release_s: float = 1.0,
                 sample_rate: int = 48000) -> np.ndarray:
    """dexed-py's rendering of a patch: note held ``hold_s`` then released for ``release_s``."""
    synth = dexed.DexedSynth(float(sample_rate))
    synth.load_patch(dexed_patch(patch))
    return synth.render(note, velocity, hold_s, hold_s + release_s)


def dexed_render_all_ops(patch: Patch, note: int = 60, velocity: int = 100, hold_s: float = 3.0,
                         release_s: float = 1.0, sample_rate: int = 48000) -> np.ndarray:
    """dexed-py's per-operator outputs (rows OP1..OP6, then the mix)."""
    synth = dexed.DexedSynth(float(sample_rate))
    synth.load_patch(dexed_patch(patch))
    return synth.render_all_ops(note, velocity, hold_s, hold_s + release_s)
