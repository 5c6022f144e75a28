"""The FM operator: a log-sine / exponential oscillator as in Dexed's Mark I engine.

An operator's gain is an attenuation in 1/1024-doubling units (0 = loudest, 16384 = silent),
ramped linearly across the 64-sample block. Phase is Q24 (2^24 = one cycle); an operator's output
(full scale about +-2^25, i.e. +-2 cycles) is added to its targets' phase.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .tables import LG_N, N, sin_exp_table, sin_log_table

_SINLOG = sin_log_table()
_SINEXP = sin_exp_table()


@njit(cache=True, nogil=True, inline="always")
def mki_sin(phase: int, att: int) -> int:
    """One sample of sin(phase) at attenuation ``att``, through the log-sine and exp tables."""
    phi = (phase >> 12) & 0xFFFF
    idx = phi & 1023
    quadrant = phi & 3072
    if quadrant == 0:
        e = _SINLOG[idx]
    elif quadrant == 1024:
        e = _SINLOG[idx ^ 1023]
    elif quadrant == 2048:
        e = _SINLOG[idx] | 0x8000
    else:
        e = _SINLOG[idx ^ 1023] | 0x8000
    expval = (e + att) & 0xFFFF
    negative = expval & 0x8000
    expval &= 0x7FFF
    result = (4096 + _SINEXP[(expval & 0x3FF) ^ 0x3FF]) >> (expval >> 10)
    if negative:
        return (-result - 1) << 13
    return result << 13


@njit(cache=True, nogil=True)
def op_block(out: np.ndarray, inp: np.ndarray, has_input: bool, phase: int, freq: int, g1: int, g2: int) -> None:
    """Render one block of a (possibly modulated) operator into ``out``."""
    dgain = (g2 - g1 + (N >> 1)) >> LG_N
    gain = g1
    if has_input:
        for i in range(N):
            gain += dgain
            out[i] = mki_sin(phase + inp[i], gain)
            phase += freq
    else:
        for i in range(N):
            gain += dgain
            out[i] = mki_sin(phase, gain)
            phase += freq


@njit(cache=True, nogil=True)
def op_block_fb(out: np.ndarray, inp: np.ndarray, has_input: bool, phase: int, freq: int, g1: int, g2: int,
                hist: np.ndarray, shift: int) -> None:
    """Render one block of an operator that feeds back on itself (mean of its last two outputs)."""
    dgain = (g2 - g1 + (N >> 1)) >> LG_N
    gain = g1
    y0 = hist[0]
    y = hist[1]
    for i in range(N):
        gain += dgain
        fb = (y0 + y) >> (shift + 1)
        y0 = y
        if has_input:
            y = mki_sin(phase + inp[i] + fb, gain)
        else:
            y = mki_sin(phase + fb, gain)
        out[i] = y
        phase += freq
    hist[0] = y0
    hist[1] = y
