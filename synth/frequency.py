"""Operator frequencies: note -> log-frequency, ratio/fixed modes with Dexed's detune, and the
log-frequency -> phase-increment lookup."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .tables import coarse_table

_COARSE = coarse_table()
LOGFREQ_BASE = 50857776  # log2(440 Hz) - 69/12 octaves, Q24 (one less than MSFA: measured against dexed-py)
LOGFREQ_STEP = (1 << 24) // 12  # one semitone, Q24


@njit(cache=True, nogil=True)
def note_logfreq(note: int) -> int:
    """log2(Hz) of a MIDI note in Q24 (equal temperament, A4 = 440 Hz)."""
    return LOGFREQ_BASE + LOGFREQ_STEP * note


@njit(cache=True, nogil=True)
def osc_logfreq(note: int, fixed: int, coarse: int, fine: int, detune: int) -> int:
    """An operator's base log-frequency (Q24) for a played note; ``detune`` is the raw 0..14 value."""
    if fixed == 0:
        logfreq = note_logfreq(note)
        # Dexed's measured detune: cents per step shrink as the note rises (about 1.2 cents at C4).
        lf = np.float32(logfreq) / np.float32(1 << 24)
        ratio = 0.0209 * math.exp(-0.396 * float(lf)) / 7.0
        logfreq = int(logfreq + ratio * logfreq * (detune - 7))
        logfreq += _COARSE[coarse & 31]
        if fine != 0:
            logfreq += int(math.floor(24204406.323123 * math.log(1.0 + 0.01 * fine) + 0.5))
        return logfreq
    logfreq = (4458616 * ((coarse & 3) * 100 + fine)) >> 3
    if detune > 7:
        logfreq += 13457 * (detune - 7)
    return logfreq


@njit(cache=True, nogil=True)
def freq_lookup(logfreq: int, table: np.ndarray) -> int:
    """Phase increment per sample (Q24 cycles) for a log-frequency (Q24 octaves)."""
    ix = (logfreq & 0xFFFFFF) >> 14
    y0 = table[ix]
    y1 = table[ix + 1]
    low = logfreq & ((1 << 14) - 1)
    y = y0 + (((y1 - y0) * low) >> 14)
    shift = 20 - (logfreq >> 24)
    if shift < 0:
        return y << (-shift)
    if shift > 62:
        return 0
    return y >> shift
