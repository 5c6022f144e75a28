"""Per-note scaling: keyboard level scaling, keyboard rate scaling and velocity sensitivity."""

from __future__ import annotations

import numpy as np
from numba import njit

from .tables import EXP_SCALE, VELOCITY

_EXP_SCALE = np.array(EXP_SCALE, dtype=np.int64)
_VELOCITY = np.array(VELOCITY, dtype=np.int64)


@njit(cache=True, nogil=True)
def _c_div(a: int, b: int) -> int:
    # C integer division truncates toward zero.
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


@njit(cache=True, nogil=True)
def scale_curve(group: int, depth: int, curve: int) -> int:
    """Level change (S-units, 0.75 dB) for ``group`` groups of three keys away from the break point."""
    if curve == 0 or curve == 3:
        scale = (group * depth * 329) >> 12
    else:
        g = group if group < 32 else 32
        scale = (_EXP_SCALE[g] * depth * 329) >> 15
    if curve < 2:
        scale = -scale
    return scale


@njit(cache=True, nogil=True)
def scale_level(note: int, break_pt: int, left_depth: int, right_depth: int, left_curve: int, right_curve: int) -> int:
    """Keyboard level scaling for ``note`` (centred 17 keys above the break point, as Dexed does)."""
    offset = note - break_pt - 17
    if offset >= 0:
        return scale_curve(_c_div(offset + 1, 3), right_depth, right_curve)
    return scale_curve(_c_div(1 - offset, 3), left_depth, left_curve)


@njit(cache=True, nogil=True)
def scale_rate(note: int, sensitivity: int) -> int:
    """Keyboard rate scaling: qrate offset for ``note``."""
    x = _c_div(note, 3) - 7
    if x < 0:
        x = 0
    if x > 31:
        x = 31
    return (sensitivity * x) >> 3


@njit(cache=True, nogil=True)
def scale_velocity(velocity: int, sensitivity: int) -> int:
    """Velocity offset (microsteps) added to the operator's output level."""
    v = velocity
    if v < 0:
        v = 0
    if v > 127:
        v = 127
    return ((sensitivity * (_VELOCITY[v >> 1] - 239) + 7) >> 3) << 4
