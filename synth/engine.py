"""The render loops: one held-and-released note, and a polyphonic event list (MIDI).

Small typed numba kernels; ``synth/render.py`` owns validation, conversion from ``Patch`` and I/O.
Output units are dexed-py's: 1.0 = one full-scale carrier (sums of carriers are not clipped).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .dx7note import (G_LFO_DELAY, G_LFO_SPEED, G_LFO_SYNC, G_LFO_WAVE, V_ACTIVE, V_HELD, V_KEY, V_SERIAL,
                      note_block, note_off, note_on, note_silent_forever)
from .lfo import LFO_STATE_SIZE, lfo_delay, lfo_keydown, lfo_reset, lfo_sample
from .tables import N

OUT_SCALE = 1.0 / (1 << 25)  # one full-scale carrier (+-2^25) -> +-1.0


@njit(cache=True, nogil=True)
def render_note_kernel(ops: np.ndarray, glob: np.ndarray, mod: np.ndarray, outm: np.ndarray, topo: np.ndarray,
                       key: int, velocity: int, n_hold: int, out: np.ndarray, capture: bool, opout: np.ndarray,
                       freqtab: np.ndarray, srm: int, pe_unit: int, lfo_delta: int, lfo_unit: int,
                       env: np.ndarray, penv: np.ndarray, phase: np.ndarray, gain_out: np.ndarray,
                       hist: np.ndarray, opinfo: np.ndarray, vinfo: np.ndarray, reuse: np.ndarray,
                       given: np.ndarray) -> int:
    """Render one note held for ``n_hold`` samples into ``out`` (zeroed by the caller); returns the
    number of samples actually computed (the rest is silence). With ``capture``, every operator's
    own output is left in ``opout`` (int64 engine units, whole blocks: multiply by ``OUT_SCALE``).
    Operators with ``reuse[op] != 0`` are copied from ``given`` (an earlier capture, whole blocks)."""
    n_total = out.shape[0]
    lfo = np.zeros(LFO_STATE_SIZE, dtype=np.int64)
    lfo_reset(lfo, lfo_delta, glob[G_LFO_DELAY], glob[G_LFO_SYNC], glob[G_LFO_WAVE], lfo_unit)
    lfo_keydown(lfo)
    note_on(0, key, velocity, ops, glob, env, penv, phase, gain_out, opinfo, vinfo, srm, pe_unit, 0)
    outblk = np.zeros(N, dtype=np.int64)
    opblk = np.zeros((6, N), dtype=np.int64)
    scratch = np.zeros((7, N), dtype=np.int64)
    ctrl = np.zeros((4, 6), dtype=np.int64)
    reusing = False
    for op in range(6):
        if reuse[op] != 0:
            reusing = True
    no_given = np.zeros((6, N), dtype=np.int64)
    pos = 0
    released = False
    while pos < n_total:
        if not released and pos >= n_hold:
            note_off(0, ops, glob, env, penv, vinfo, srm, pe_unit)
            released = True
        if released and not capture and not reusing and note_silent_forever(0, outm, topo, env):
            break
        lv = lfo_sample(lfo)
        ld = lfo_delay(lfo)
        outblk[:] = 0
        note_block(0, ops, glob, mod, outm, topo, env, penv, phase, gain_out, hist, opinfo, vinfo, lv, ld,
                   freqtab, srm, pe_unit, outblk, opblk, scratch, ctrl, reuse,
                   given[:, pos:pos + N] if reusing else no_given)
        m = min(N, n_total - pos)
        for i in range(m):
            out[pos + i] = outblk[i] * OUT_SCALE
        if capture:
            for op in range(6):
                for i in range(N):
                    opout[op, pos + i] = opblk[op, i]
        pos += N
    return min(pos, n_total)


@njit(cache=True, nogil=True)
def render_events_kernel(ops: np.ndarray, glob: np.ndarray, mod: np.ndarray, outm: np.ndarray, topo: np.ndarray,
                         events: np.ndarray, out: np.ndarray, freqtab: np.ndarray, srm: int, pe_unit: int,
                         lfo_delta: int, lfo_unit: int, env: np.ndarray, penv: np.ndarray, phase: np.ndarray,
                         gain_out: np.ndarray, hist: np.ndarray, opinfo: np.ndarray, vinfo: np.ndarray) -> int:
    """Play ``events`` (rows: sample, 1 = on / 0 = off, key, velocity; sorted by sample) polyphonically
    with as many voices as the state arrays hold, stealing the oldest note; an event takes effect at the
    first 64-sample block boundary at or after its time (as a held note's release does in
    ``render_note_kernel``). Returns the number of notes stolen."""
    n_total = out.shape[0]
    n_voices = vinfo.shape[0]
    lfo = np.zeros(LFO_STATE_SIZE, dtype=np.int64)
    lfo_reset(lfo, lfo_delta, glob[G_LFO_DELAY], glob[G_LFO_SYNC], glob[G_LFO_WAVE], lfo_unit)
    outblk = np.zeros(N, dtype=np.int64)
    opblk = np.zeros((6, N), dtype=np.int64)
    scratch = np.zeros((7, N), dtype=np.int64)
    ctrl = np.zeros((4, 6), dtype=np.int64)
    no_reuse = np.zeros(6, dtype=np.int64)
    no_given = np.zeros((6, N), dtype=np.int64)
    ev = 0
    n_ev = events.shape[0]
    serial = 1
    stolen = 0
    pos = 0
    while pos < n_total:
        while ev < n_ev and events[ev, 0] <= pos:
            key = events[ev, 2]
            if events[ev, 1] == 1:
                keys_down = 0
                for v in range(n_voices):
                    if vinfo[v, V_ACTIVE] != 0 and vinfo[v, V_HELD] != 0:
                        keys_down += 1
                if keys_down == 0:
                    lfo_keydown(lfo)
                slot = -1
                for v in range(n_voices):
                    if vinfo[v, V_ACTIVE] == 0:
                        slot = v
                        break
                if slot < 0:
                    oldest = 0
                    for v in range(1, n_voices):
                        if vinfo[v, V_SERIAL] < vinfo[oldest, V_SERIAL]:
                            oldest = v
                    slot = oldest
                    stolen += 1
                note_on(slot, key, events[ev, 3], ops, glob, env, penv, phase, gain_out, opinfo, vinfo, srm,
                        pe_unit, serial)
                serial += 1
            else:
                for v in range(n_voices):
                    if vinfo[v, V_ACTIVE] != 0 and vinfo[v, V_HELD] != 0 and vinfo[v, V_KEY] == key:
                        note_off(v, ops, glob, env, penv, vinfo, srm, pe_unit)
            ev += 1
        lv = lfo_sample(lfo)
        ld = lfo_delay(lfo)
        outblk[:] = 0
        for v in range(n_voices):
            if vinfo[v, V_ACTIVE] == 0:
                continue
            if vinfo[v, V_HELD] == 0 and note_silent_forever(v, outm, topo, env):
                vinfo[v, V_ACTIVE] = 0
                continue
            note_block(v, ops, glob, mod, outm, topo, env, penv, phase, gain_out, hist, opinfo, vinfo, lv, ld,
                       freqtab, srm, pe_unit, outblk, opblk, scratch, ctrl, no_reuse, no_given)
        m = min(N, n_total - pos)
        for i in range(m):
            out[pos + i] = outblk[i] * OUT_SCALE
        pos += N
    return stolen
