"""Patch -> engine arrays: the bridge between the schema's ``Patch`` and the numba kernels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..schema.algorithms import algorithm
from ..schema.params import KLS_CURVES, LFO_WAVES
from ..schema.patch import Patch
from .dx7note import GLOB_SIZE

_ALG32 = algorithm(32)


@dataclass(frozen=True)
class EngineVoice:
    """A patch as the engine reads it (index 0 = OP1 everywhere)."""

    ops: np.ndarray  # int64[6, 21], VCED field order per operator
    glob: np.ndarray  # int64[18]
    mod: np.ndarray  # int64[6, 6]
    outm: np.ndarray  # int64[6]
    topo: np.ndarray  # int64[4]: self-feedback shift, loop shift, loop range lo, hi


def feedback_shifts(p: Patch) -> tuple[int, int]:
    """(self-feedback shift, loop-feedback shift); 16 disables. Mark I scales loops, and algorithm
    32's self-feedback, 4x weaker."""
    if p.feedback == 0:
        return 16, 16
    base = 8 - p.feedback
    is_alg32 = tuple(map(tuple, p.modmatrix)) == _ALG32.modmatrix and tuple(p.outmatrix) == _ALG32.outmatrix
    return (base + 2 if is_alg32 else base), base + 2


def loop_range(p: Patch) -> tuple[int, int]:
    """Operators spanned by "upward" feedback edges (source lower than target), or (-1, -1)."""
    if p.feedback == 0:
        return -1, -1
    lo, hi = 6, -1
    for t in range(6):
        for s in range(t):
            if p.modmatrix[t][s]:
                lo, hi = min(lo, s), max(hi, t)
    return (lo, hi) if hi >= 0 else (-1, -1)


def engine_voice(p: Patch) -> EngineVoice:
    """Convert a validated ``Patch`` to the engine's arrays."""
    ops = np.zeros((6, 21), dtype=np.int64)
    for op in range(6):
        ops[op, 0:4] = [p.eg_rate[k][op] for k in range(4)]
        ops[op, 4:8] = [p.eg_level[k][op] for k in range(4)]
        ops[op, 8:21] = [
            p.kls_breakpoint[op], p.kls_left_depth[op], p.kls_right_depth[op],
            KLS_CURVES.index(p.kls_left_curve[op]), KLS_CURVES.index(p.kls_right_curve[op]),
            p.rate_scaling[op], p.ams[op], p.sensitivity[op], p.ol[op], p.fixed_freq[op],
            p.coarse[op], p.fine[op], p.detune[op] + 7,
        ]
    glob = np.zeros(GLOB_SIZE, dtype=np.int64)
    glob[0:4] = p.pitch_eg_rate
    glob[4:8] = p.pitch_eg_level
    glob[8:18] = [
        p.feedback, int(p.osc_sync), p.lfo.speed, p.lfo.delay, p.lfo.pmd, p.lfo.amd, int(p.lfo.sync),
        LFO_WAVES.index(p.lfo.wave), p.pms, p.transpose + 24,
    ]
    fb_self, fb_loop = feedback_shifts(p)
    lo, hi = loop_range(p)
    return EngineVoice(
        ops=ops,
        glob=glob,
        mod=np.array(p.modmatrix, dtype=np.int64),
        outm=np.array(p.outmatrix, dtype=np.int64),
        topo=np.array([fb_self, fb_loop, lo, hi], dtype=np.int64),
    )
