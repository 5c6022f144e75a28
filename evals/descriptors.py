"""Audio descriptors: numbers that stand in for ears (level, duration; more arrive with evidence)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def _db(x: float) -> float:
    return 20.0 * math.log10(x) if x > 0.0 else float("-inf")


def basic_descriptors(audio: np.ndarray, sample_rate: int) -> dict[str, Any]:
    """Peak and RMS level (dBFS, 1.0 = full scale), duration, and silence/clipping flags."""
    x = np.asarray(audio, dtype=np.float64)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    rms = float(np.sqrt(np.mean(x * x))) if x.size else 0.0
    return {
        "peak_dbfs": round(_db(peak), 2),
        "rms_dbfs": round(_db(rms), 2),
        "duration_s": round(x.size / sample_rate, 4),
        "silent": peak < 10 ** (-90 / 20),
        "over_full_scale": peak > 1.0,
    }
