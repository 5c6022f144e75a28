"""The FM operator: a log-sine / exponential oscillator as in Dexed's Mark I engine.

An operator's gain is an attenuation in 1/1024-doubling units (0 = loudest, 16384 = silent),
ramped linearly across the 64-sample block. Phase is Q24 (2^24 = one cycle); an operator's output
(full scale about +-2^25, i.e. +-2 cycles) is added to its targets' phase.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .tables import LG_N, N, sin_exp_table, sin_log_table


def _full_wave_log_table() -> np.ndarray:
    # The quarter-wave log-sine unfolded to a whole cycle (4096 steps), with the sign in bit 15,
    # so the per-sample path is one lookup instead of a quadrant switch.
    q = sin_log_table()
    idx = np.arange(1024)
    return np.concatenate([q[idx], q[idx ^ 1023], q[idx] | 0x8000, q[idx ^ 1023] | 0x8000]).astype(np.int64)


def _mantissa_table() -> np.ndarray:
    # 4096 + exp[1023 - frac]: the linear magnitude for the fractional part of an attenuation.
    e = sin_exp_table()
    return (4096 + e[np.arange(1024) ^ 1023]).astype(np.int64)


_LOGSIN = _full_wave_log_table()
_MANTISSA = _mantissa_table()


@njit(cache=True, nogil=True, inline="always")
def mki_sin(phase: int, att: int) -> int:
    """One sample of sin(phase) at attenuation ``att``, through the log-sine and exp tables."""
    e = _LOGSIN[(phase >> 12) & 4095]
    expval = (e + att) & 0xFFFF
    result = _MANTISSA[expval & 0x3FF] >> ((expval & 0x7FFF) >> 10)
    if expval & 0x8000:
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
