"""The pitch envelope: four rates and levels, linear in octaves, advanced once per block.

Level 50 is no shift. Starts at L4, moves to L1, L2, L3, holds L3 while the key is down and
goes to L4 on release. No attack shaping, no holds. Output is a log-frequency offset (Q24 octaves).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .tables import PITCHENV_LEVEL, PITCHENV_RATE

P_LEVEL, P_TARGET, P_RISING, P_INC, P_IX, P_DOWN = range(6)
PITCHENV_STATE_SIZE = 6

_LEVEL = np.array(PITCHENV_LEVEL, dtype=np.int64)
_RATE = np.array(PITCHENV_RATE, dtype=np.int64)


@njit(cache=True, nogil=True)
def pitchenv_advance(st: np.ndarray, rates: np.ndarray, levels: np.ndarray, newix: int, unit: int) -> None:
    """Enter stage ``newix`` (4 = finished)."""
    st[P_IX] = newix
    if newix < 4:
        st[P_TARGET] = _LEVEL[levels[newix]] << 19
        st[P_RISING] = 1 if st[P_TARGET] > st[P_LEVEL] else 0
        st[P_INC] = _RATE[rates[newix]] * unit


@njit(cache=True, nogil=True)
def pitchenv_init(st: np.ndarray, rates: np.ndarray, levels: np.ndarray, unit: int) -> None:
    """Start a note at level L4, key down."""
    st[:] = 0
    st[P_LEVEL] = _LEVEL[levels[3]] << 19
    st[P_DOWN] = 1
    pitchenv_advance(st, rates, levels, 0, unit)


@njit(cache=True, nogil=True)
def pitchenv_step(st: np.ndarray, rates: np.ndarray, levels: np.ndarray, unit: int) -> int:
    """Advance one block and return the pitch offset (Q24 octaves)."""
    ix = st[P_IX]
    if ix < 3 or (ix < 4 and st[P_DOWN] == 0):
        if st[P_RISING] != 0:
            st[P_LEVEL] += st[P_INC]
            if st[P_LEVEL] >= st[P_TARGET]:
                st[P_LEVEL] = st[P_TARGET]
                pitchenv_advance(st, rates, levels, ix + 1, unit)
        else:
            st[P_LEVEL] -= st[P_INC]
            if st[P_LEVEL] <= st[P_TARGET]:
                st[P_LEVEL] = st[P_TARGET]
                pitchenv_advance(st, rates, levels, ix + 1, unit)
    return st[P_LEVEL]


@njit(cache=True, nogil=True)
def pitchenv_keydown(st: np.ndarray, rates: np.ndarray, levels: np.ndarray, down: bool, unit: int) -> None:
    """Key down restarts at stage 0; key up goes to L4 at R4."""
    d = 1 if down else 0
    if st[P_DOWN] != d:
        st[P_DOWN] = d
        pitchenv_advance(st, rates, levels, 0 if down else 3, unit)
