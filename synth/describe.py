"""A readable account of a patch for people and text-only models (``tools.md``: ``describe_patch``).

Everything numeric comes from the engine itself: output levels through the same scaling functions
``note_on`` uses, envelope times by running the engine's own EG (``env_advance``/``env_step``) block
by block at the requested sample rate, frequencies through ``osc_logfreq``, the pitch EG and the LFO
delay through their kernels. The structured ``PatchDescription`` carries every number that
``PatchDescription.text()`` prints (the text is built from the model's fields only).

Levels are dB re full scale: 0 dB is an operator at OL 99, EG level 99, neutral velocity (the
engine's gain 2.0, i.e. a +-2 cycle modulation or a carrier peaking at 1.0 in render units).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from numba import njit
from pydantic import BaseModel, ConfigDict

from ..schema.algorithms import algorithm_of, nearest_algorithm
from ..schema.patch import Patch
from .env import E_DOWN, E_IX, E_LEVEL, E_OUTLEVEL, E_RS, E_TARGET, ENV_STATE_SIZE, env_advance, env_step
from .frequency import osc_logfreq
from .lfo import LFO_STATE_SIZE, lfo_delay, lfo_reset
from .pitchenv import P_DOWN, P_IX, P_LEVEL, P_TARGET, PITCHENV_STATE_SIZE, pitchenv_advance, pitchenv_step
from .render import as_patch, check_request, rate_tables
from .scaling import scale_level, scale_rate, scale_velocity
from .tables import AMS_TAB, ENV_MAX, LEVEL_THRESH, LFO_SPEED_HZ, N, PITCHENV_LEVEL, PMS_TAB, scale_out_table
from .voice import engine_voice

DB_PER_DOUBLING = 20.0 * math.log10(2.0)  # 6.0206 dB
DB_PER_MICROSTEP = DB_PER_DOUBLING / 256.0  # the DX7's level unit, 0.0235 dB
FULL_SCALE_MICROSTEPS = 15 * 256  # EG level of OL 99, L 99, neutral velocity
MAX_STAGE_S = 60.0  # a stage still running after this long is reported as not finishing
MAX_CHAINS = 8
LFO_HZ_FACTOR = 4437500000.0 / 2.0**32  # the engine multiplies the table by 4437500000 instead of 2^32
_SCALE_OUT = scale_out_table()
_PITCH_LEVEL = np.array(PITCHENV_LEVEL, dtype=np.int64)
_NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_STAGE_NAMES = ("attack", "decay1", "decay2", "release")


# --- the structured description -------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Frequency(_Model):
    """An operator's oscillator: ratio or fixed, and its frequency at the described note."""

    mode: Literal["ratio", "fixed"]
    coarse: int
    fine: int
    ratio: float | None  # ratio mode: (coarse or 0.5) * (1 + fine/100)
    hz: float  # at the described note, transpose and detune included (fixed mode: the fixed frequency)
    detune: int  # -7..7
    detune_cents: float  # what the detune does at this note (Dexed's note-dependent detune)


class EnvStage(_Model):
    """One EG segment: how long it takes to reach its level, and that level."""

    name: Literal["attack", "decay1", "decay2", "release"]
    rate: int  # R1..R4, 0..99
    level: int  # L1..L4, 0..99
    target_db: float  # dB re full scale (velocity, output level and keyboard scaling included)
    silent: bool  # the target is below the engine's audibility threshold
    hold: bool  # the target equals the level the stage starts from: the EG waits (Dexed's static segment)
    time_ms: float | None  # None: does not finish within MAX_STAGE_S


class Envelope(_Model):
    """The operator EG at the described note; release is timed from the sustain level after key-up."""

    levels_re: Literal["full scale"] = "full scale"
    stages: list[EnvStage]
    sustain_db: float
    peak_db: float  # loudest level reached while the key is held
    release_from_peak_ms: float | None  # the release started from the peak instead (an early key-up)


class LevelScaling(_Model):
    """Keyboard level scaling (only when a depth is non-zero)."""

    breakpoint: int  # 0..99
    breakpoint_midi: int  # BP 0 = A-1 = MIDI 21, BP 39 = MIDI 60
    left_depth: int
    left_curve: str
    right_depth: int
    right_curve: str
    db_at_note: float  # what it changes at this note (after the engine's limit on S(OL) + scaling)


class RateScaling(_Model):
    """Keyboard rate scaling (only when non-zero)."""

    sensitivity: int  # 0..7
    qrate_offset: int  # added to every stage's rate at this note
    speed_factor: float  # EG speed relative to no rate scaling (about 2^(offset/4))


class Tremolo(_Model):
    """Amplitude modulation sensitivity (only when non-zero)."""

    ams: int  # 0..3
    always_db: float  # Dexed lowers an AMS > 0 operator this much even with no LFO depth
    depth_db: float | None  # extra LFO dip at the peak level with the patch's AMD (None when AMD is 0)


class OperatorDescription(_Model):
    """One operator: role, frequency, level, envelope and sensitivities."""

    op: int  # 1..6
    role: Literal["carrier", "modulator", "unused"]
    modulates: list[int]  # targets (operator numbers), upward loop edges included, self-feedback not
    modulated_by: list[int]  # sources, likewise
    silent: bool  # never above the engine's audibility threshold at this note and velocity
    frequency: Frequency
    output_level: int  # OL 0..99
    level_db: float  # at EG level 99, velocity and keyboard level scaling included
    peak_db: float  # loudest EG level reached while the key is held
    mod_index_rad: float | None  # modulators: peak modulation index in radians
    velocity_sensitivity: int
    velocity_db: float  # level change from velocity at the described velocity
    velocity_range_db: tuple[float, float]  # at velocity 1 and 127
    level_scaling: LevelScaling | None
    rate_scaling: RateScaling | None
    tremolo: Tremolo | None
    envelope: Envelope


class FeedbackEdge(_Model):
    """A feedback edge: a self-feedback (source == target) or an upward loop."""

    source: int
    target: int


class Topology(_Model):
    """Algorithm, carriers, modulation chains and feedback."""

    algorithm: int | None  # the DX7 algorithm, None for a custom topology
    nearest_algorithm: int
    differing_entries: int
    carriers: list[int]
    chains: list[list[int]]  # modulation paths, source first, each ending at a carrier
    more_chains: int  # paths left out of ``chains``
    unmodulated_carriers: list[int]
    unused: list[int]
    feedback_edges: list[FeedbackEdge]
    feedback: int  # 0..7, 0 = off


class PitchStage(_Model):
    """One pitch-EG segment."""

    name: Literal["attack", "decay1", "decay2", "release"]
    rate: int
    level: int
    cents: float
    time_ms: float | None  # None: does not finish within MAX_STAGE_S


class PitchEnvelope(_Model):
    """The pitch EG (applies to ratio-mode operators): starts at L4, goes to L1, L2, holds L3, releases to L4."""

    flat: bool
    start_cents: float
    stages: list[PitchStage]


class LfoDescription(_Model):
    """The voice LFO."""

    active: bool  # pitch or amplitude depth reaches an operator
    wave: str
    speed: int
    rate_hz: float
    delay: int
    delay_ms: float  # time at zero depth after key-down
    fade_ms: float  # then the depth fades in over this
    sync: bool
    pmd: int
    pms: int
    pitch_depth_cents: float  # peak deviation (+-)
    amd: int
    ams_operators: list[int]


class PatchDescription(_Model):
    """The readable account of a patch at one note and velocity."""

    name: str | None
    note: int
    velocity: int
    sample_rate: int
    transpose: int
    topology: Topology
    operators: list[OperatorDescription]
    pitch_eg: PitchEnvelope
    lfo: LfoDescription

    def text(self) -> str:
        """Plain text for people and models (compact, one or two lines per operator)."""
        return _text(self)


# --- engine helpers -------------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _eg_run(st: np.ndarray, prm: np.ndarray, outlevel: int, rs: int, srm: int, stage: int, start: int,
            max_blocks: int) -> int:
    """Blocks the EG needs to finish ``stage`` entered at level ``start`` (-1: not within max_blocks);
    leaves the stage's target in st[E_TARGET]. Stage 3 is run with the key up (the release)."""
    st[:] = 0
    st[E_OUTLEVEL] = outlevel
    st[E_RS] = rs
    st[E_DOWN] = 1 if stage < 3 else 0
    st[E_LEVEL] = start
    env_advance(st, prm, stage, srm)
    target = st[E_TARGET]
    n = 0
    while n < max_blocks:
        env_step(st, prm, srm)
        n += 1
        if st[E_IX] != stage:
            st[E_TARGET] = target
            return n
    st[E_TARGET] = target
    return -1


@njit(cache=True, nogil=True)
def _eg_stages(prm: np.ndarray, outlevel: int, rs: int, srm: int, max_blocks: int) -> np.ndarray:
    """Rows 0-3 per stage: [blocks to finish (-1: not within max_blocks), target level (Q24), start
    level (Q24)]. Stages 0-2 chain from key-down, each starting where the previous one ends; stage 3
    is the release from the sustain level after key-up; row 4 the release from the peak level."""
    out = np.zeros((5, 3), dtype=np.int64)
    st = np.zeros(ENV_STATE_SIZE, dtype=np.int64)
    start = 0
    for stage in range(4):
        # A stage that runs past the cap still says how the following ones behave: the next one
        # starts from this one's target, as it would once it finished.
        out[stage, 0] = _eg_run(st, prm, outlevel, rs, srm, stage, start, max_blocks)
        out[stage, 1] = st[E_TARGET]
        out[stage, 2] = start
        start = st[E_TARGET]
    peak = max(out[0, 1], max(out[1, 1], out[2, 1]))
    out[4, 0] = _eg_run(st, prm, outlevel, rs, srm, 3, peak, max_blocks)
    out[4, 1] = st[E_TARGET]
    out[4, 2] = peak
    return out


@njit(cache=True, nogil=True)
def _pitch_stages(rates: np.ndarray, levels: np.ndarray, unit: int, max_blocks: int) -> np.ndarray:
    """Per pitch-EG stage: blocks to finish (-1: not within max_blocks); start at L4, release from L3."""
    out = np.zeros(4, dtype=np.int64)
    st = np.zeros(PITCHENV_STATE_SIZE, dtype=np.int64)
    start = _PITCH_LEVEL[levels[3]] << 19  # as pitchenv_init
    for stage in range(4):
        st[:] = 0
        st[P_LEVEL] = start
        st[P_DOWN] = 1 if stage < 3 else 0
        pitchenv_advance(st, rates, levels, stage, unit)
        target = st[P_TARGET]
        n = 0
        done = False
        while not done and n < max_blocks:
            pitchenv_step(st, rates, levels, unit)
            n += 1
            if st[P_IX] != stage:
                done = True
        out[stage] = n if done else -1
        start = target
    return out


@njit(cache=True, nogil=True)
def _lfo_delay_blocks(delay: int, unit: int, max_blocks: int) -> np.ndarray:
    """[blocks at zero depth, blocks until full depth] for an LFO delay setting."""
    st = np.zeros(LFO_STATE_SIZE, dtype=np.int64)
    lfo_reset(st, 0, delay, 0, 0, unit)
    hold = -1
    n = 0
    while n < max_blocks:
        d = lfo_delay(st)
        n += 1
        if hold < 0 and d > 0:
            hold = n - 1
        if d >= (1 << 24):
            break
    out = np.zeros(2, dtype=np.int64)
    out[0] = hold if hold >= 0 else n
    out[1] = n
    return out


def _q24_db(level_q24: float) -> float:
    return (level_q24 / (1 << 24) - 15.0) * DB_PER_DOUBLING


def _ams_quirk(level_q24: int, ams: int, sensamp: int = 0) -> int:
    """The EG level after Dexed's amplitude modulation step for an AMS > 0 operator (as ``note_block``)."""
    if ams == 0:
        return level_q24
    pt = int(math.exp(float(np.float32(sensamp) / np.float32(262144.0)) * 0.07 + 12.2))
    return level_q24 - ((level_q24 * (pt << 4)) >> 28)


def _silent(level_q24: int) -> bool:
    # The engine skips an operator whose attenuation is above LEVEL_THRESH.
    return (level_q24 >> 14) < ENV_MAX - LEVEL_THRESH


def _blocks_ms(blocks: int, sr: int) -> float | None:
    return None if blocks < 0 else _r(blocks * N * 1000.0 / sr, 1)


def note_name(note: int) -> str:
    """MIDI note number -> name, C4 = 60."""
    return f"{_NOTE_NAMES[note % 12]}{note // 12 - 1}"


def _r(x: float, nd: int) -> float:
    y = round(float(x), nd)
    return 0.0 if y == 0 else y  # no "-0.0"


# --- topology -------------------------------------------------------------------------------------


def _topology(p: Patch) -> Topology:
    m, out = p.modmatrix, p.outmatrix
    carriers = [i for i in range(6) if out[i]]
    # Operators whose sound reaches the output: carriers and whatever modulates them (any edge but
    # the diagonal, so an upward loop edge counts too).
    used = set(carriers)
    changed = True
    while changed:
        changed = False
        for t in list(used):
            for s in range(6):
                if s != t and m[t][s] and s not in used:
                    used.add(s)
                    changed = True
    fwd = {s: [t for t in range(s) if m[t][s] and t in used] for s in range(6) if s in used}
    has_in = {t for s, ts in fwd.items() for t in ts}
    chains: list[list[int]] = []

    def walk(path: list[int]) -> None:
        nxt = fwd.get(path[-1], [])
        if not nxt:
            last = max((k for k, o in enumerate(path) if out[o]), default=-1)
            cut = path[: last + 1]
            if len(cut) >= 2 and cut not in chains:
                chains.append(cut)
            return
        for t in sorted(nxt, reverse=True):
            walk(path + [t])

    for s in sorted(used, reverse=True):
        if s not in has_in and fwd.get(s):
            walk([s])
    in_chain = {o for c in chains for o in c}
    fb = [FeedbackEdge(source=s + 1, target=t + 1) for t in range(6) for s in range(t + 1) if m[t][s]]
    fb.sort(key=lambda e: (e.source != e.target, -e.target, -e.source))
    num = algorithm_of(m, out)
    near, diff = nearest_algorithm(m, out)
    return Topology(
        algorithm=num, nearest_algorithm=near, differing_entries=diff, carriers=[c + 1 for c in carriers],
        chains=[[o + 1 for o in c] for c in chains[:MAX_CHAINS]], more_chains=max(0, len(chains) - MAX_CHAINS),
        unmodulated_carriers=[c + 1 for c in carriers if c not in in_chain],
        unused=[o + 1 for o in range(6) if o not in used], feedback_edges=fb, feedback=p.feedback,
    )


# --- per operator ---------------------------------------------------------------------------------


def _frequency(p: Patch, op: int, key: int) -> Frequency:
    fixed = p.fixed_freq[op]
    c, f, det = p.coarse[op], p.fine[op], p.detune[op]
    lf = osc_logfreq(key, fixed, c, f, det + 7)
    lf0 = osc_logfreq(key, fixed, c, f, 7)
    ratio = None if fixed else _r((0.5 if c == 0 else c) * (1 + f / 100.0), 4)
    return Frequency(mode="fixed" if fixed else "ratio", coarse=c, fine=f, ratio=ratio,
                     hz=_r(2.0 ** (lf / (1 << 24)), 2), detune=det, detune_cents=_r((lf - lf0) / (1 << 24) * 1200.0, 2))


def _operator(p: Patch, op: int, key: int, velocity: int, ops: np.ndarray, srm: int, sr: int, topo: Topology,
              am_peak: int) -> OperatorDescription:
    prm = ops[op]
    kls = int(scale_level(key, p.kls_breakpoint[op], p.kls_left_depth[op], p.kls_right_depth[op],
                          int(prm[11]), int(prm[12])))
    a = min(int(_SCALE_OUT[p.ol[op]]) + kls, 127)  # as note_on: S(OL) + level scaling, at most 127
    kls_eff = a - int(_SCALE_OUT[p.ol[op]])
    vel = int(scale_velocity(velocity, p.sensitivity[op]))
    outlevel = max((a << 5) + vel, 0)
    rs = int(scale_rate(key, p.rate_scaling[op]))
    max_blocks = int(math.ceil(MAX_STAGE_S * sr / N))
    eg = _eg_stages(prm, outlevel, rs, srm, max_blocks)
    ams = p.ams[op]
    stages = []
    for k in range(4):
        tgt = _ams_quirk(int(eg[k, 1]), ams)
        blocks = int(eg[k, 0])
        level_k = p.eg_level[k][op]
        hold = int(eg[k, 1]) == int(eg[k, 2]) or (k == 0 and level_k == 0)
        stages.append(EnvStage(
            name=_STAGE_NAMES[k], rate=p.eg_rate[k][op], level=level_k, target_db=_r(_q24_db(tgt), 1),
            silent=_silent(tgt), hold=hold, time_ms=_blocks_ms(blocks, sr)))
    held = [_ams_quirk(int(eg[k, 1]), ams) for k in range(3)]
    peak_q24 = max(held)
    full99 = _ams_quirk(max(outlevel - 4256 + (63 << 6), 16) << 16, ams)  # the EG target of L 99
    carrier = (op + 1) in topo.carriers
    role: Literal["carrier", "modulator", "unused"] = (
        "unused" if (op + 1) in topo.unused else "carrier" if carrier else "modulator")
    # Upward (loop) edges count: in algorithm 4, OP4 modulates OP6 as well as feeding the output.
    modulates = [t + 1 for t in range(6) if t != op and p.modmatrix[t][op]]
    sources = [s + 1 for s in range(6) if s != op and p.modmatrix[op][s]]
    silent = all(_silent(x) for x in held) and _silent(_ams_quirk(int(eg[3, 1]), ams))
    index = None
    if role == "modulator":
        index = _r(4.0 * math.pi * 2.0 ** (peak_q24 / (1 << 24) - 15.0), 3)
    lsc = None
    if p.kls_left_depth[op] or p.kls_right_depth[op]:
        lsc = LevelScaling(breakpoint=p.kls_breakpoint[op], breakpoint_midi=p.kls_breakpoint[op] + 21,
                           left_depth=p.kls_left_depth[op], left_curve=p.kls_left_curve[op],
                           right_depth=p.kls_right_depth[op], right_curve=p.kls_right_curve[op],
                           db_at_note=_r(kls_eff * 32 * DB_PER_MICROSTEP, 1))
    rsc = None
    if p.rate_scaling[op]:
        rsc = RateScaling(sensitivity=p.rate_scaling[op], qrate_offset=rs, speed_factor=_r(2.0 ** (rs / 4.0), 2))
    trem = None
    if ams:
        always = _q24_db(_ams_quirk(peak_q24, ams)) - _q24_db(_ams_quirk(peak_q24, 0))
        depth = None
        if p.lfo.amd:
            # Deepest point of the LFO (as note_block: amd_mod with the LFO at 0 and the delay over).
            sensamp = (am_peak * AMS_TAB[ams]) >> 24
            deep = _ams_quirk(_ams_quirk(peak_q24, 0), ams, sensamp)
            deep_db = -120.0 if deep <= 0 or _silent(deep) else _q24_db(deep)
            depth = _r(deep_db - _q24_db(_ams_quirk(peak_q24, ams)), 1)
        trem = Tremolo(ams=ams, always_db=_r(always, 1), depth_db=depth)
    vrange = tuple(_r(scale_velocity(v, p.sensitivity[op]) * DB_PER_MICROSTEP, 1) for v in (1, 127))
    return OperatorDescription(
        op=op + 1, role=role, modulates=modulates, modulated_by=sources, silent=silent, frequency=_frequency(p, op, key),
        output_level=p.ol[op], level_db=_r(_q24_db(full99), 1), peak_db=_r(_q24_db(peak_q24), 1), mod_index_rad=index,
        velocity_sensitivity=p.sensitivity[op], velocity_db=_r(vel * DB_PER_MICROSTEP, 1),
        velocity_range_db=vrange, level_scaling=lsc, rate_scaling=rsc, tremolo=trem,
        envelope=Envelope(stages=stages, sustain_db=stages[2].target_db, peak_db=_r(_q24_db(peak_q24), 1),
                          release_from_peak_ms=_blocks_ms(int(eg[4, 0]), sr)),
    )


def _pitch_eg(p: Patch, sr: int) -> PitchEnvelope:
    rates = np.array(p.pitch_eg_rate, dtype=np.int64)
    levels = np.array(p.pitch_eg_level, dtype=np.int64)
    unit = rate_tables(sr).pitchenv_unit
    blocks = _pitch_stages(rates, levels, unit, int(math.ceil(MAX_STAGE_S * sr / N)))
    cents = [PITCHENV_LEVEL[x] / 32.0 * 1200.0 for x in p.pitch_eg_level]
    stages = [PitchStage(name=_STAGE_NAMES[k], rate=p.pitch_eg_rate[k], level=p.pitch_eg_level[k], cents=_r(cents[k], 1),
                         time_ms=_blocks_ms(int(blocks[k]), sr)) for k in range(4)]
    return PitchEnvelope(flat=all(c == 0 for c in cents), start_cents=_r(cents[3], 1), stages=stages)


def _lfo(p: Patch, sr: int) -> LfoDescription:
    lfo = p.lfo
    t = rate_tables(sr)
    if lfo.delay:
        hold, full = _lfo_delay_blocks(lfo.delay, t.lfo_unit, int(math.ceil(30.0 * sr / N)))
    else:
        hold = full = 0
    pmd = (lfo.pmd * 165) >> 6
    ams_ops = [o + 1 for o in range(6) if p.ams[o]]
    return LfoDescription(
        active=bool((lfo.pmd and p.pms) or (lfo.amd and ams_ops)), wave=lfo.wave, speed=lfo.speed,
        rate_hz=_r(LFO_SPEED_HZ[lfo.speed] * LFO_HZ_FACTOR, 3), delay=lfo.delay,
        delay_ms=_r(int(hold) * N * 1000.0 / sr, 1), fade_ms=_r((int(full) - int(hold)) * N * 1000.0 / sr, 1),
        sync=lfo.sync, pmd=lfo.pmd, pms=p.pms, pitch_depth_cents=_r(pmd * PMS_TAB[p.pms] / 65536.0 * 1200.0, 1),
        amd=lfo.amd, ams_operators=ams_ops,
    )


def describe_patch(patch: Patch | dict[str, Any], note: int = 60, velocity: int = 100,
                   sample_rate: int = 48000) -> PatchDescription:
    """Describe a patch at one note and velocity: topology, operators, envelopes, pitch EG, LFO."""
    p = as_patch(patch)
    note, velocity, _, _, sr = check_request(note, velocity, 1.0, 0.0, sample_rate)
    key = note + p.transpose  # transpose moves the note before everything else, as in note_on
    voice = engine_voice(p)
    srm = rate_tables(sr).srm
    topo = _topology(p)
    am_peak = ((((p.lfo.amd * 165) >> 6) << 24) >> 8)  # note_block's amd_mod at the LFO's deepest point
    ops = [_operator(p, op, key, velocity, voice.ops, srm, sr, topo, am_peak) for op in range(6)]
    return PatchDescription(name=p.name, note=note, velocity=velocity, sample_rate=sr, transpose=p.transpose,
                            topology=topo, operators=ops, pitch_eg=_pitch_eg(p, sr), lfo=_lfo(p, sr))


# --- text -----------------------------------------------------------------------------------------


def _ops(nums: list[int]) -> str:
    return ", ".join(f"OP{n}" for n in nums)


def _ms(ms: float | None) -> str:
    if ms is None:
        return f"> {MAX_STAGE_S:g} s"
    if ms < 10:
        return f"{ms:.1f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    return f"{ms / 1000:.2f} s"


def _ratio(r: float | None) -> str:
    t = f"{r:.3f}"
    return t[:-1] if t.endswith("0") else t  # 1.00, 3.50, 0.505


def _db(x: float) -> str:
    return f"{x:+.1f} dB" if x else "0.0 dB"


def _cents(c: float) -> str:
    return f"{c:+g} c" if c else "0 c"


def _topology_lines(t: Topology) -> list[str]:
    if t.algorithm is not None:
        head = f"Algorithm {t.algorithm}"
    else:
        head = (f"Custom topology, nearest algorithm {t.nearest_algorithm} "
                f"({t.differing_entries} {'entry differs' if t.differing_entries == 1 else 'entries differ'})")
    lines = [f"{head}; carriers {_ops(t.carriers) or 'none (silent)'}"]
    paths = [" -> ".join(f"OP{o}" + (" (carrier)" if o in t.carriers else "") for o in c) for c in t.chains]
    if t.more_chains:
        paths.append(f"{t.more_chains} more paths")
    if t.unmodulated_carriers:
        paths.append(f"{_ops(t.unmodulated_carriers)} unmodulated")
    lines.append("Paths: " + ("; ".join(paths) if paths else "none"))
    if t.feedback_edges:
        edges = ", ".join(f"OP{e.source} self-feedback" if e.source == e.target else f"loop OP{e.source} -> OP{e.target}"
                          for e in t.feedback_edges)
        amount = f"amount {t.feedback}" if t.feedback else "off (amount 0)"
        lines.append(f"Feedback: {edges}, {amount}")
    elif t.feedback:
        lines.append(f"Feedback: none (amount {t.feedback} but no feedback edge)")
    else:
        lines.append("Feedback: none")
    if t.unused:
        lines.append(f"Unused (reach no carrier): {_ops(t.unused)}")
    return lines


def _env_text(e: Envelope) -> str:
    parts = []
    for s in e.stages:
        lvl = "silent" if s.silent else _db(s.target_db)
        if s.name == "decay2":
            lvl = "sustain " + lvl
        if s.name == "release" and e.peak_db != e.sustain_db:
            # A key-up before the sustain is reached releases from higher up: say both.
            early = f"{_ms(e.release_from_peak_ms)} from peak"
            if e.stages[2].silent:
                parts.append(f"release {early} to {lvl}")
            else:
                parts.append(f"release {_ms(s.time_ms)} from sustain ({early}) to {lvl}")
        elif s.hold:
            parts.append(f"{s.name} holds {_ms(s.time_ms)} at {lvl}")
        else:
            parts.append(f"{s.name} {_ms(s.time_ms)} to {lvl}")
    return "; ".join(parts)


def _operator_lines(o: OperatorDescription) -> list[str]:
    if o.role == "carrier":
        role = "carrier"
    elif o.role == "modulator":
        role = "modulates " + _ops(o.modulates)
    else:
        role = "unused"
    f = o.frequency
    if f.mode == "ratio":
        freq = f"ratio {_ratio(f.ratio)} = {f.hz:.2f} Hz"
    else:
        freq = f"fixed {f.hz:.2f} Hz"
    if f.detune:
        freq += f", detune {f.detune:+d} ({f.detune_cents:+.2f} c)"
    if o.role == "unused":
        return [f"OP{o.op} unused | {freq} | OL {o.output_level}"]
    if o.silent:
        return [f"OP{o.op} {role} | silent at this note and velocity (OL {o.output_level})"]
    level = f"level {_db(o.level_db)} (OL {o.output_level})"
    if o.peak_db != o.level_db:
        level += f", peak {_db(o.peak_db)}"
    if o.mod_index_rad is not None:
        level += f", index {o.mod_index_rad:.2f} rad"
    vel = f"vel sens {o.velocity_sensitivity}"
    if o.velocity_sensitivity:
        lo, hi = o.velocity_range_db
        vel += f" ({_db(o.velocity_db)} here, {lo:+.1f}..{hi:+.1f} dB over v1..127)"
    head = f"OP{o.op} {role} | {freq} | {level} | {vel}"
    extras = []
    if o.level_scaling:
        k = o.level_scaling
        extras.append(f"level scaling BP {k.breakpoint} (MIDI {k.breakpoint_midi}) L {k.left_curve} {k.left_depth}, "
                      f"R {k.right_curve} {k.right_depth}: {_db(k.db_at_note)} here")
    if o.rate_scaling:
        r = o.rate_scaling
        extras.append(f"rate scaling {r.sensitivity} (+{r.qrate_offset} qrate here, x{r.speed_factor:.2f} speed)")
    if o.tremolo:
        tr = o.tremolo
        am = f"AMS {tr.ams} ({_db(tr.always_db)} always"
        am += f", LFO dips {_db(tr.depth_db)})" if tr.depth_db is not None else ")"
        extras.append(am)
    lines = [head, "    env: " + _env_text(o.envelope)]
    if extras:
        lines.append("    " + "; ".join(extras))
    return lines


def _global_lines(d: PatchDescription) -> list[str]:
    lines = []
    pe = d.pitch_eg
    if pe.flat:
        lines.append("Pitch EG: flat")
    elif len({s.cents for s in pe.stages}) == 1:
        lines.append(f"Pitch EG: constant {_cents(pe.start_cents)}")
    else:
        st = pe.stages
        lines.append(f"Pitch EG (ratio-mode operators): starts {_cents(pe.start_cents)}; "
                     + "; ".join(f"{s.name} {_ms(s.time_ms)} to {_cents(s.cents)}" for s in st))
    lf = d.lfo
    if lf.pmd or lf.amd:
        parts = [f"LFO: {lf.wave} {lf.rate_hz:.2f} Hz"]
        if lf.delay:
            parts.append(f"delay {_ms(lf.delay_ms)} then fade-in {_ms(lf.fade_ms)}")
        parts.append("key sync" if lf.sync else "free-running")
        if lf.pmd:
            parts.append(f"vibrato PMD {lf.pmd} x PMS {lf.pms} = +-{lf.pitch_depth_cents:g} c")
        if lf.amd:
            parts.append(f"tremolo AMD {lf.amd} on " + (_ops(lf.ams_operators) if lf.ams_operators else "no operator (AMS 0)"))
        if not lf.active:
            parts.append("no effect")
        lines.append(", ".join(parts))
    return lines


def _text(d: PatchDescription) -> str:
    tr = "none" if d.transpose == 0 else f"{d.transpose:+d} semitones"
    head = (f"{d.name or 'Patch'!r}: note {d.note} ({note_name(d.note)}), velocity {d.velocity}, "
            f"{d.sample_rate} Hz; transpose {tr}")
    lines = [head, *_topology_lines(d.topology),
             "Operators (levels in dB re full scale; env times per stage, release from key-up):"]
    for o in d.operators:
        lines += _operator_lines(o)
    lines += _global_lines(d)
    return "\n".join(lines)
