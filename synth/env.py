"""The operator envelope generator (EG), as Dexed's Mark I engine runs it.

One EG per operator, advanced once per 64-sample block. Level is in Q24 log2 units (2^24 = one
doubling); targets come from the stage levels, the operator's output level, keyboard level
scaling and velocity. Attack jumps to about -50 dB and then rises fast-then-slowing; decays are
linear in dB. Dexed's "static" holds (a segment whose target equals the current level, or an
L1 = 0 attack, waits a measured time before the next stage) are included.

State is a small int64 array per operator (indices ``E_*``); ``prm`` is the operator's row of the
voice's operator table (rates at 0..3, levels at 4..7, as in the DX7's VCED order).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .tables import JUMP_TARGET, LG_N, N, STATIC_HOLD, scale_out_table

E_LEVEL, E_TARGET, E_RISING, E_INC, E_IX, E_DOWN, E_STATIC, E_OUTLEVEL, E_RS = range(9)
ENV_STATE_SIZE = 9

_SCALE_OUT = scale_out_table()
_STATIC_HOLD = np.array(STATIC_HOLD, dtype=np.int64)


@njit(cache=True, nogil=True)
def env_advance(st: np.ndarray, prm: np.ndarray, newix: int, srm: int) -> None:
    """Enter stage ``newix`` (0..3; 4 = finished): set its target, direction, increment and hold."""
    st[E_IX] = newix
    if newix >= 4:
        return
    newlevel = prm[4 + newix]
    actual = ((_SCALE_OUT[newlevel] >> 1) << 6) + st[E_OUTLEVEL] - 4256
    if actual < 16:
        actual = 16
    st[E_TARGET] = actual << 16
    st[E_RISING] = 1 if st[E_TARGET] > st[E_LEVEL] else 0
    qrate = ((prm[newix] * 41) >> 6) + st[E_RS]
    if qrate > 63:
        qrate = 63
    if st[E_TARGET] == st[E_LEVEL] or (newix == 0 and newlevel == 0):
        staticrate = prm[newix] + st[E_RS]
        if staticrate > 99:
            staticrate = 99
        if staticrate < 77:
            count = _STATIC_HOLD[staticrate]
            if newix == 0 and newlevel == 0:
                count = count // 20  # an L1 = 0 attack holds 20x shorter
        else:
            count = 20 * (99 - staticrate)
        st[E_STATIC] = (count * srm) >> 24
    else:
        st[E_STATIC] = 0
    inc = (4 + (qrate & 3)) << (2 + LG_N + (qrate >> 2))
    st[E_INC] = (inc * srm) >> 24


@njit(cache=True, nogil=True)
def env_init(st: np.ndarray, prm: np.ndarray, outlevel: int, rate_scaling: int, srm: int) -> None:
    """Start a note: level at silence, key down, stage 0."""
    st[:] = 0
    st[E_OUTLEVEL] = outlevel
    st[E_RS] = rate_scaling
    st[E_DOWN] = 1
    env_advance(st, prm, 0, srm)


@njit(cache=True, nogil=True)
def env_step(st: np.ndarray, prm: np.ndarray, srm: int) -> int:
    """Advance one block and return the level (Q24 log2)."""
    if st[E_STATIC] != 0:
        st[E_STATIC] -= N
        if st[E_STATIC] <= 0:
            st[E_STATIC] = 0
            env_advance(st, prm, st[E_IX] + 1, srm)
    ix = st[E_IX]
    if ix < 3 or (ix < 4 and st[E_DOWN] == 0):
        if st[E_STATIC] != 0:
            pass
        elif st[E_RISING] != 0:
            jump = JUMP_TARGET << 16
            if st[E_LEVEL] < jump:
                st[E_LEVEL] = jump
            st[E_LEVEL] += (((17 << 24) - st[E_LEVEL]) >> 24) * st[E_INC]
            if st[E_LEVEL] >= st[E_TARGET]:
                st[E_LEVEL] = st[E_TARGET]
                env_advance(st, prm, ix + 1, srm)
        else:
            st[E_LEVEL] -= st[E_INC]
            if st[E_LEVEL] <= st[E_TARGET]:
                st[E_LEVEL] = st[E_TARGET]
                env_advance(st, prm, ix + 1, srm)
    return st[E_LEVEL]


@njit(cache=True, nogil=True)
def env_keydown(st: np.ndarray, prm: np.ndarray, down: bool, srm: int) -> None:
    """Key down restarts at stage 0; key up jumps to the release stage from the current level."""
    d = 1 if down else 0
    if st[E_DOWN] != d:
        st[E_DOWN] = d
        env_advance(st, prm, 0 if down else 3, srm)


@njit(cache=True, nogil=True)
def env_finished(st: np.ndarray) -> bool:
    """True once the release has reached its level and nothing will change any more."""
    return st[E_IX] >= 4 and st[E_STATIC] == 0 and st[E_DOWN] == 0
