"""One sounding note: its per-operator envelopes, pitch, phases and the block-by-block render.

Operators are rendered from OP6 down to OP1, each writing its whole 64-sample block before the
operators it modulates read it (the structure Dexed uses, and what makes it fast). An edge whose
source is not higher than its target is a feedback edge: the diagonal uses the operator's own
last two outputs; "upward" edges (the loops of algorithms 4 and 6, or any custom topology) are
rendered sample by sample over the range of operators they span, with Mark I's 4x weaker scaling.

Arrays (index 0 = OP1 everywhere):
- ``ops[6, 21]``: per-operator parameters in VCED field order (``O_*``);
- ``glob[18]``: voice parameters (``G_*``);
- ``mod[6, 6]``, ``outm[6]``: the topology; ``topo[4]``: feedback shifts and the loop range (``T_*``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .env import ENV_STATE_SIZE, E_LEVEL, env_finished, env_init, env_keydown, env_step
from .fm_op_kernel import mki_sin, op_block, op_block_fb
from .frequency import freq_lookup, osc_logfreq
from .pitchenv import PITCHENV_STATE_SIZE, pitchenv_init, pitchenv_keydown, pitchenv_step
from .scaling import scale_level, scale_rate, scale_velocity
from .tables import AMS_TAB, ENV_MAX, LEVEL_THRESH, LG_N, N, PMS_TAB, scale_out_table

# ops[op, field]: the DX7's per-operator fields, in VCED order.
(O_R1, O_R2, O_R3, O_R4, O_L1, O_L2, O_L3, O_L4, O_BP, O_LD, O_RD, O_LC, O_RC, O_RS, O_AMS, O_KVS, O_OL,
 O_MODE, O_COARSE, O_FINE, O_DETUNE) = range(21)
# glob[field]: pitch EG rates (0..3) and levels (4..7), then the voice's other parameters.
G_PR1, G_PL1 = 0, 4
G_FEEDBACK, G_OKS, G_LFO_SPEED, G_LFO_DELAY, G_PMD, G_AMD, G_LFO_SYNC, G_LFO_WAVE, G_PMS, G_TRANSPOSE = range(8, 18)
GLOB_SIZE = 18
# topo[field]: shift of self-feedback, shift of loop feedback (16 = off), loop range (-1 = none).
T_FB_SELF, T_FB_LOOP, T_LOOP_LO, T_LOOP_HI = range(4)
# opinfo[v, op, field] and vinfo[v, field]: per-note values computed at note-on.
I_BASEPITCH, I_FIXED, I_AMS = range(3)
V_PMD, V_PMS, V_AMD, V_ACTIVE, V_KEY, V_HELD, V_SERIAL = range(7)
VINFO_SIZE = 8

_SCALE_OUT = scale_out_table()
_AMS_TAB = np.array(AMS_TAB, dtype=np.int64)
_PMS_TAB = np.array(PMS_TAB, dtype=np.int64)
_M24 = 0xFFFFFF


class VoiceState:
    """Scratch and state arrays for ``n`` simultaneous notes of one patch."""

    def __init__(self, n: int) -> None:
        self.env = np.zeros((n, 6, ENV_STATE_SIZE), dtype=np.int64)
        self.penv = np.zeros((n, PITCHENV_STATE_SIZE), dtype=np.int64)
        self.phase = np.zeros((n, 6), dtype=np.int64)
        self.gain_out = np.zeros((n, 6), dtype=np.int64)
        self.hist = np.zeros((n, 6, 2), dtype=np.int64)
        self.opinfo = np.zeros((n, 6, 3), dtype=np.int64)
        self.vinfo = np.zeros((n, VINFO_SIZE), dtype=np.int64)


@njit(cache=True, nogil=True)
def note_on(v: int, key: int, velocity: int, ops: np.ndarray, glob: np.ndarray, env: np.ndarray, penv: np.ndarray,
            phase: np.ndarray, gain_out: np.ndarray, opinfo: np.ndarray, vinfo: np.ndarray, srm: int, pe_unit: int,
            serial: int) -> None:
    """Start note ``key`` at ``velocity`` in voice slot ``v``."""
    note = key + glob[G_TRANSPOSE] - 24  # transpose moves the note before everything else
    for op in range(6):
        p = ops[op]
        outlevel = _SCALE_OUT[p[O_OL]] + scale_level(note, p[O_BP], p[O_LD], p[O_RD], p[O_LC], p[O_RC])
        if outlevel > 127:
            outlevel = 127
        outlevel = (outlevel << 5) + scale_velocity(velocity, p[O_KVS])
        if outlevel < 0:
            outlevel = 0
        env_init(env[v, op], p, outlevel, scale_rate(note, p[O_RS]), srm)
        opinfo[v, op, I_BASEPITCH] = osc_logfreq(note, p[O_MODE], p[O_COARSE], p[O_FINE], p[O_DETUNE])
        opinfo[v, op, I_FIXED] = p[O_MODE]
        opinfo[v, op, I_AMS] = _AMS_TAB[p[O_AMS] & 3]
        if glob[G_OKS] != 0:
            phase[v, op] = 0
            gain_out[v, op] = 0
    pitchenv_init(penv[v], glob[G_PR1:G_PR1 + 4], glob[G_PL1:G_PL1 + 4], pe_unit)
    vinfo[v, V_PMD] = (glob[G_PMD] * 165) >> 6
    vinfo[v, V_PMS] = _PMS_TAB[glob[G_PMS] & 7]
    vinfo[v, V_AMD] = (glob[G_AMD] * 165) >> 6
    vinfo[v, V_ACTIVE] = 1
    vinfo[v, V_KEY] = key
    vinfo[v, V_HELD] = 1
    vinfo[v, V_SERIAL] = serial


@njit(cache=True, nogil=True)
def note_off(v: int, ops: np.ndarray, glob: np.ndarray, env: np.ndarray, penv: np.ndarray, vinfo: np.ndarray,
             srm: int, pe_unit: int) -> None:
    """Release the note in voice slot ``v``."""
    for op in range(6):
        env_keydown(env[v, op], ops[op], False, srm)
    pitchenv_keydown(penv[v], glob[G_PR1:G_PR1 + 4], glob[G_PL1:G_PL1 + 4], False, pe_unit)
    vinfo[v, V_HELD] = 0


@njit(cache=True, nogil=True)
def _quiet_for_good(v: int, op: int, env: np.ndarray) -> bool:
    # The EG level before amplitude modulation: AM can only make an operator quieter.
    return env_finished(env[v, op]) and ENV_MAX - (env[v, op, E_LEVEL] >> 14) > LEVEL_THRESH


@njit(cache=True, nogil=True)
def note_silent_forever(v: int, outm: np.ndarray, topo: np.ndarray, env: np.ndarray) -> bool:
    """True once every carrier's release has finished below audibility (the note can be dropped)."""
    lo, hi = topo[T_LOOP_LO], topo[T_LOOP_HI]
    for op in range(6):
        if outm[op] != 0:
            if not _quiet_for_good(v, op, env):
                return False
            # A feedback loop is rendered whole while its top operator sounds (see _loop_group).
            if lo >= 0 and lo <= op <= hi and not _quiet_for_good(v, hi, env):
                return False
    return True


@njit(cache=True, nogil=True)
def note_block(v: int, ops: np.ndarray, glob: np.ndarray, mod: np.ndarray, outm: np.ndarray, topo: np.ndarray,
               env: np.ndarray, penv: np.ndarray, phase: np.ndarray, gain_out: np.ndarray, hist: np.ndarray,
               opinfo: np.ndarray, vinfo: np.ndarray, lfo_val: int, lfo_dly: int, freqtab: np.ndarray, srm: int,
               pe_unit: int, outblk: np.ndarray, opblk: np.ndarray, scratch: np.ndarray, ctrl: np.ndarray,
               reuse: np.ndarray, given: np.ndarray) -> None:
    """Render one 64-sample block of voice ``v``: carriers are added to ``outblk``, every operator's
    own output is left in ``opblk[op]`` (zeros for a skipped operator). An operator with
    ``reuse[op] != 0`` is not computed: its output is taken from ``given[op]`` (the same operator's
    output in another render whose inputs to it were identical). ``scratch`` (7 x 64) and ``ctrl``
    (4 x 6) are work space."""
    # Pitch: LFO through PMD (with its delay ramp) and PMS, plus the pitch envelope.
    pmd = vinfo[v, V_PMD] * lfo_dly
    senslfo = vinfo[v, V_PMS] * (lfo_val - (1 << 23))
    pmod = abs((pmd * senslfo) >> 39)
    pitch_mod = pitchenv_step(penv[v], glob[G_PR1:G_PR1 + 4], glob[G_PL1:G_PL1 + 4], pe_unit)
    pitch_mod += -pmod if senslfo < 0 else pmod
    # Amplitude: the LFO is inverted for AM.
    amd_mod = (((vinfo[v, V_AMD] * lfo_dly) >> 8) * ((1 << 24) - lfo_val)) >> 24
    if amd_mod < 0:
        amd_mod = 0

    freq = ctrl[0]
    g1s = ctrl[1]
    g2s = ctrl[2]
    live = ctrl[3]
    for op in range(6):
        if reuse[op] != 0:
            # Copied from another render: its envelope, pitch and gain are not needed here, and
            # treating it as live is exact (a skipped operator's copied output is all zeros).
            live[op] = 1
            freq[op] = 0
            continue
        if opinfo[v, op, I_FIXED] != 0:
            freq[op] = freq_lookup(opinfo[v, op, I_BASEPITCH], freqtab)  # fixed: no pitch EG, no LFO
        else:
            freq[op] = freq_lookup(opinfo[v, op, I_BASEPITCH] + pitch_mod, freqtab)
        level = env_step(env[v, op], ops[op], srm)
        ams = opinfo[v, op, I_AMS]
        if ams != 0:
            sensamp = (amd_mod * ams) >> 24
            pt = int(math.exp(float(np.float32(sensamp) / np.float32(262144.0)) * 0.07 + 12.2))
            level -= (level * (pt << 4)) >> 28
        g2 = ENV_MAX - (level >> 14)
        g1 = gain_out[v, op] if gain_out[v, op] != 0 else ENV_MAX - 1
        gain_out[v, op] = g2
        g1s[op] = g1
        g2s[op] = g2
        live[op] = 1 if (g1 <= LEVEL_THRESH or g2 <= LEVEL_THRESH) else 0

    fb_self = topo[T_FB_SELF]
    fb_loop = topo[T_FB_LOOP]
    lo = topo[T_LOOP_LO]
    hi = topo[T_LOOP_HI]
    inp = scratch[6]
    op = 5
    while op >= 0:
        if lo >= 0 and op == hi:
            if reuse[hi] != 0:
                for o in range(hi, lo - 1, -1):
                    for i in range(N):
                        opblk[o, i] = given[o, i]
            else:
                _loop_group(v, lo, hi, mod, live, freq, g1s, g2s, phase, hist, fb_self, fb_loop, opblk, scratch)
            for o in range(hi, lo - 1, -1):
                if outm[o] != 0 and live[o] != 0:
                    for i in range(N):
                        outblk[i] += opblk[o, i]
            op = lo - 1
            continue
        if reuse[op] != 0:
            for i in range(N):
                opblk[op, i] = given[op, i]
            if outm[op] != 0:
                for i in range(N):
                    outblk[i] += opblk[op, i]
        elif live[op] != 0:
            has_input = False
            for s in range(op + 1, 6):
                if mod[op, s] != 0 and live[s] != 0:
                    if not has_input:
                        for i in range(N):
                            inp[i] = opblk[s, i]
                        has_input = True
                    else:
                        for i in range(N):
                            inp[i] += opblk[s, i]
            if mod[op, op] != 0 and fb_self < 16:
                op_block_fb(opblk[op], inp, has_input, phase[v, op], freq[op], g1s[op], g2s[op], hist[v, op], fb_self)
            else:
                op_block(opblk[op], inp, has_input, phase[v, op], freq[op], g1s[op], g2s[op])
            if outm[op] != 0:
                for i in range(N):
                    outblk[i] += opblk[op, i]
        else:
            for i in range(N):
                opblk[op, i] = 0
        op -= 1
    for op in range(6):
        phase[v, op] = (phase[v, op] + (freq[op] << LG_N)) & _M24


@njit(cache=True, nogil=True)
def _loop_group(v: int, lo: int, hi: int, mod: np.ndarray, live: np.ndarray, freq: np.ndarray, g1s: np.ndarray,
                g2s: np.ndarray, phase: np.ndarray, hist: np.ndarray, fb_self: int, fb_loop: int, opblk: np.ndarray,
                scratch: np.ndarray) -> None:
    """Render operators hi..lo sample by sample, so loop feedback reads the previous samples' outputs."""
    # Inputs from operators above the group are whole blocks already.
    for op in range(hi, lo - 1, -1):
        for i in range(N):
            scratch[op, i] = 0
        for s in range(hi + 1, 6):
            if mod[op, s] != 0 and live[s] != 0:
                for i in range(N):
                    scratch[op, i] += opblk[s, i]
    gain = np.empty(6, dtype=np.int64)
    dgain = np.empty(6, dtype=np.int64)
    ph = np.empty(6, dtype=np.int64)
    top_live = live[hi] != 0
    for op in range(lo, hi + 1):
        if top_live and op < hi:
            # Mark I renders the whole loop whenever its top operator sounds, and holds the other
            # loop operators at this block's gain instead of ramping them.
            live[op] = 1
            gain[op] = g2s[op]
            dgain[op] = 0
        else:
            gain[op] = g1s[op]
            dgain[op] = (g2s[op] - g1s[op] + (N >> 1)) >> LG_N
        ph[op] = phase[v, op]
    for i in range(N):
        for op in range(hi, lo - 1, -1):
            if live[op] == 0:
                opblk[op, i] = 0
                continue
            x = ph[op] + scratch[op, i]
            for s in range(op + 1, hi + 1):
                if mod[op, s] != 0 and live[s] != 0:
                    x += opblk[s, i]
            for s in range(lo, op + 1):
                if mod[op, s] != 0:
                    shift = fb_self if s == op else fb_loop
                    if shift < 16:
                        x += (hist[v, s, 0] + hist[v, s, 1]) >> (shift + 1)
            gain[op] += dgain[op]
            opblk[op, i] = mki_sin(x, gain[op])
            ph[op] += freq[op]
        for op in range(lo, hi + 1):
            if live[op] != 0:
                hist[v, op, 0] = hist[v, op, 1]
                hist[v, op, 1] = opblk[op, i]
