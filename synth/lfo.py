"""The voice LFO: six waves, delay with fade-in, key sync. One per instrument, advanced per block.

Output is unipolar Q24 (0..2^24). The delay counter returns the depth ramp (0..2^24).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .tables import lfo_sine_table

L_PHASE, L_DELTA, L_DELAY, L_DELAYINC, L_DELAYINC2, L_WAVE, L_SYNC, L_RAND = range(8)
LFO_STATE_SIZE = 8
_M32 = 0xFFFFFFFF
_SINE = lfo_sine_table()


@njit(cache=True, nogil=True)
def _sine(phase: int) -> int:
    # Q24 phase -> Q24 sine, linear interpolation in a 1024-step table.
    low = phase & ((1 << 14) - 1)
    i = (phase >> 13) & (1023 << 1)
    return _SINE[i + 1] + ((_SINE[i] * low) >> 14)


@njit(cache=True, nogil=True)
def lfo_reset(st: np.ndarray, speed_delta: int, delay: int, sync: int, wave: int, unit: int) -> None:
    """Set up the LFO for a voice (speed given as a per-block phase increment)."""
    st[:] = 0
    st[L_DELTA] = speed_delta
    a = 99 - delay
    if a == 99:
        st[L_DELAYINC] = _M32
        st[L_DELAYINC2] = _M32
    else:
        a = (16 + (a & 15)) << (1 + (a >> 4))
        st[L_DELAYINC] = (unit * a) & _M32
        a &= 0xFF80
        if a < 0x80:
            a = 0x80
        st[L_DELAYINC2] = (unit * a) & _M32
    st[L_WAVE] = wave
    st[L_SYNC] = sync


@njit(cache=True, nogil=True)
def lfo_keydown(st: np.ndarray) -> None:
    """Note-on: restart the phase (when synced) and the delay."""
    if st[L_SYNC] != 0:
        st[L_PHASE] = (1 << 31) - 1
    st[L_DELAY] = 0


@njit(cache=True, nogil=True)
def lfo_sample(st: np.ndarray) -> int:
    """Advance one block and return the LFO value (Q24, 0..2^24)."""
    phase = (st[L_PHASE] + st[L_DELTA]) & _M32
    st[L_PHASE] = phase
    w = st[L_WAVE]
    if w == 0:  # triangle
        x = phase >> 7
        if phase >> 31:
            x = ~x
        return x & 0xFFFFFF
    if w == 1:  # saw down
        return ((~phase ^ (1 << 31)) & _M32) >> 8
    if w == 2:  # saw up
        return ((phase ^ (1 << 31)) & _M32) >> 8
    if w == 3:  # square
        return (((~phase) & _M32) >> 7) & (1 << 24)
    if w == 4:  # sine
        return (1 << 23) + (_sine(phase >> 8) >> 1)
    # sample and hold: a new value once per cycle from an 8-bit LCG
    if phase < st[L_DELTA]:
        st[L_RAND] = (st[L_RAND] * 179 + 17) & 0xFF
    x = st[L_RAND] ^ 0x80
    return (x + 1) << 16


@njit(cache=True, nogil=True)
def lfo_delay(st: np.ndarray) -> int:
    """Advance the delay counter one block and return the depth ramp (Q24, 0..2^24)."""
    delta = st[L_DELAYINC] if st[L_DELAY] < (1 << 31) else st[L_DELAYINC2]
    d = st[L_DELAY] + delta
    if d > _M32:
        return 1 << 24
    st[L_DELAY] = d
    if d < (1 << 31):
        return 0
    return (d >> 7) & 0xFFFFFF


def lfo_state() -> np.ndarray:
    """A fresh LFO state array."""
    return np.zeros(LFO_STATE_SIZE, dtype=np.int64)
