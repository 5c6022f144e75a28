"""Semantic and explicit patch edits: "brighter", "shorter decay", or ``/eg_rate/3/0 = 60``.

``adjust(patch, quality, amount)`` makes one deterministic, minimal change that moves a sound the way a
word asks (``design/tools.md``, ``edit_patch``; issue 3 §4). Each rule touches only the parameters that
carry the quality in the engine (``reference/dx7.md`` §2) and steps them by a fixed amount per unit of
``amount`` (-3..3, positive = more of the quality), judged at middle C and velocity 100:

* brightness: output level of the modulators feeding the carriers (modulation index, 4.5 dB a unit);
  a voice without modulators tilts its carriers' balance; then feedback; then the modulators' own
  modulators, when the first choice is at its limit;
* attack: the rising envelope stages (up to the envelope's highest level) of the carriers and every
  operator modulating them, about 3x longer a unit; shorter: the carriers and the modulators already
  open when their carrier reaches 90% (a modulator opening later is a swell of brightness, not the
  onset), about 3x a unit, declined when the loudest carriers rise 10%-90% within 5 ms (a click);
* decay: the falling R2/R3 of the carriers, 2.5x a unit; release: R4 of the carriers, 2.5x a unit;
* sustain: L3 of the carriers (and L2 when the first decay would fall past it), 6 dB a unit;
* metallic: the modulators' frequency ratios 0.08 off (or back onto) the grid of half harmonics (onto
  it at the nearest fine value that lands there); less metal only retunes a modulator that can make a
  difference: audible (index 0.3 rad or more, and still so after the attack, next to its carrier), on
  a carrier that is itself on the grid, and for a fixed-frequency one, above 30 Hz (below, it only
  wobbles the pitch); and only when that takes at least 1% of a held note's energy off the inharmonic
  part (a model of the carriers' power and their modulators' sidebands, J0 of the index, over 2 s);
* vibrato: LFO pitch depth (and sensitivity), x1.8 a unit, started as a +-20 cent sine near 5.8 Hz;
* detune: more widens the mismatch of the partials that beat (carriers in unison or at a simple
  interval, a carrier and a modulator whose folded sidebands meet its own), so that slow beats get
  faster, the carriers' first; without such partials, a symmetric detune spread of the carriers (or
  of one carrier and its 1:1-like modulator); less
  detune pulls the detune values together when that brings the partials that beat (carriers within 30
  cents of each other, a modulator whose folded sidebands land within 30 cents of its carrier's) closer,
  and declines when they are already within 2 cents or set apart by their fine settings;
* level: the carriers' output levels (then their envelope levels), 3 dB a unit.

Every value stays in range and the result always validates. When nothing can move, or the quality is
not in the voice (no vibrato to reduce, a note that never decays 20 dB, a sustain already at its
peak), the patch comes back unchanged with a note that says why.

``apply_edits`` runs the tool's edit list (``set`` and ``adjust`` steps) in order and all-or-nothing;
a bad edit is reported with a JSON pointer into the list (``/edits/2/value``) and what is allowed, in
the patch validator's own words.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..schema.params import ALL_PARAMS, Param
from ..schema.patch import Patch
# _short renders a "found" value exactly as the patch validator does, so edit errors read the same.
from ..schema.validate import Problem, _short, escape_pointer_token, parse_patch, validate

QUALITIES: tuple[str, ...] = ("brightness", "attack", "decay", "release", "sustain", "metallic", "vibrato", "detune",
                              "level")
Quality = Literal["brightness", "attack", "decay", "release", "sustain", "metallic", "vibrato", "detune", "level"]
MAX_AMOUNT = 3
MAX_EDITS = 64

REF_NOTE, REF_VELOCITY = 60, 100  # timings and levels are judged for middle C at a neutral velocity
SIGNIFICANT_DB = 30.0  # carriers within 30 dB of the loudest one are the ones an edit moves

# brightness (and the index side of metallic)
OL_STEP = 6            # output level steps per unit: 4.5 dB, a modulation index x1.68
BRIGHT_FLOOR = 50      # brightening starts a weaker modulator from OL 50 (index ~0.2 rad, sidebands ~ -20 dB)
FEEDBACK_FLOOR = 3     # feedback 1-2 is inaudible: switching it on starts at 3
AUDIBLE_INDEX = 0.3    # below a 0.3 rad index the sidebands are 16 dB or more under the carrier
# attack, decay, release
ATTACK_FACTOR = 3.0    # each unit makes the rise 3x longer (or shorter)
ATTACK_BASE_S = 0.01   # lengthening an instant attack starts from 10 ms, so +1 is a soft 30 ms onset
ATTACK_MIN_S = 0.005   # an attack (10% to 90% of the level) within 5 ms is a click: it cannot get audibly sharper
ONSET_OPEN_DB = 6.0    # a modulator within 6 dB of its peak when its carrier reaches 90% shapes the onset
TIME_FACTOR = 2.5      # decay and release: each unit makes the segment 2.5x longer (or shorter)
RELEASE_BASE_S = 0.02  # lengthening an instant release starts from 20 ms
DECAY_MIN_FALL_DB = 20.0  # a note that never falls this far below its peak has no decay time (decay20) to change
# sustain and level
SUSTAIN_STEP = 8       # L3 steps per unit: 6 dB
SUSTAIN_FLOOR = 40     # raising a sustain from below L40 (-44 dB) starts from there, where it is audible
SUSTAIN_REF_S = 1.5    # the level a note has settled to after 1.5 s held is its audible sustain
LEVEL_STEP = 4         # carrier output level steps per unit: 3 dB
# metallic: ratios against the grid of half harmonics (the played note's and its sub-octave's)
RATIO_STEP = 0.08      # each unit moves a ratio 0.08 (of the played note's frequency) off the grid
RATIO_MAX_OFF = 0.22   # ... up to near the middle between two grid points (0.25 away)
HARMONIC_TOL = 0.05    # this close to the grid, sidebands stay within 5% of f0 of a harmonic: roughness, not metal
INHARMONIC_OFF = 0.12  # a ratio this far off the grid is already inharmonic: more metal is a deeper index
RATIO_MIN_MOVE = 0.005  # less metal must bring a ratio at least this much closer to the grid
METAL_MIN_SHARE = 0.01  # ... and take at least 1% of the held note's energy (-20 dB) off the inharmonic part
METAL_HOLD_S = 2.0      # judged over a note held this long
# vibrato
VIBRATO_START_CENTS = 20.0  # +1 from no vibrato is +-20 cents
VIBRATO_FACTOR = 1.8        # each further unit deepens (or lessens) it x1.8
VIBRATO_MIN_CENTS = 3.0     # under +-3 cents a vibrato is inaudible: reducing below switches it off
VIBRATO_SPEED = 35          # 5.8 Hz, for a new vibrato whose LFO runs far outside a vibrato's 4-8 Hz
VIBRATO_MAX_DELAY = 60      # a new vibrato's LFO delay is capped here (about 0.5 s before it fades in)
# detune
DETUNE_STEP = 4        # each unit moves each side 4 steps (about 5 cents at middle C) further apart
DETUNE_NEAR_CENTS = 30.0  # partials within 30 cents of each other beat (wider apart they are separate pitches)
DETUNE_MIN_CENTS = 2.0    # a mismatch under 2 cents beats slower than a note lasts
BEAT_FULL_HZ = 4.0        # a beat this fast already swings fully within a held note: faster is not deeper
# Partials that meet when two carriers' pitches make the ratio p/q: the lower one's p-th, the upper one's q-th.
_COINCIDENCES = sorted({(p // math.gcd(p, q), q // math.gcd(p, q)) for q in range(1, 4) for p in range(q, 4 * q + 1)})

_PMS_TABLE = (0, 10, 20, 33, 55, 92, 153, 255)  # pitch-mod sensitivity scale (dx7.md §2.13)
_SCALE_OUT_LOW = (0, 5, 9, 13, 17, 20, 23, 25, 27, 29, 31, 33, 35, 37, 39, 41, 42, 43, 45, 46)


class Change(BaseModel):
    """One changed leaf: its JSON pointer, the value before and after."""

    model_config = ConfigDict(extra="forbid")

    path: str
    old: Any
    new: Any


class EditResult(BaseModel):
    """The edited patch, every parameter that changed, and notes on what was done (or why not)."""

    model_config = ConfigDict(extra="forbid")

    patch: Patch
    changes: list[Change] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class EditError(ValueError):
    """A bad edit list: ``.problems`` point into it (``/edits/2/value``) and say what is allowed."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(p.line() for p in self.problems))


# --- leaves and diffs --------------------------------------------------------------------------


def _leaf_pointers(p: Param) -> list[tuple[str, tuple[int, ...]]]:
    idx: list[tuple[int, ...]] = [()]
    for n in p.shape:
        idx = [i + (k,) for i in idx for k in range(n)]
    return [(p.path + "".join(f"/{k}" for k in i), i) for i in idx]


# Every leaf pointer the metadata table defines, with its parameter and indices.
LEAVES: dict[str, tuple[Param, tuple[int, ...]]] = {ptr: (p, i) for p in ALL_PARAMS for ptr, i in _leaf_pointers(p)}


def _get(d: Mapping[str, Any], p: Param, idx: tuple[int, ...]) -> Any:
    v: Any = d[p.parent][p.key] if p.parent else d[p.key]
    for k in idx:
        v = v[k]
    return v


def _set(d: dict[str, Any], p: Param, idx: tuple[int, ...], value: Any) -> None:
    if not idx:
        (d[p.parent] if p.parent else d)[p.key] = value
        return
    v = d[p.parent][p.key] if p.parent else d[p.key]
    for k in idx[:-1]:
        v = v[k]
    v[idx[-1]] = value


def diff_patches(a: Patch, b: Patch) -> list[Change]:
    """Every leaf that differs between two patches (metadata-table order, then the name)."""
    da, db = a.model_dump(), b.model_dump()
    out = [Change(path=ptr, old=_get(da, p, i), new=_get(db, p, i))
           for ptr, (p, i) in LEAVES.items() if _get(da, p, i) != _get(db, p, i)]
    if da.get("name") != db.get("name"):
        out.append(Change(path="/name", old=da.get("name"), new=db.get("name")))
    return out


# --- engine facts the rules use -----------------------------------------------------------------


def _scale_out(x: int) -> int:
    """S(x): 0..99 -> 0..127, the DX7's level scaling (dx7.md §2.2)."""
    return _SCALE_OUT_LOW[x] if x < 20 else x + 28


def _rate_offset(d: Mapping[str, Any], op: int) -> int:
    """Keyboard rate scaling at the reference note: qrate added to every stage (dx7.md §2.7)."""
    from .scaling import scale_rate

    return int(scale_rate(max(0, min(127, REF_NOTE + d["transpose"])), d["rate_scaling"][op]))


def _eg_speed(rate: int, offset: int = 0) -> int:
    """Relative EG speed of a rate 0..99 (increment per block, dx7.md §2.4): +4 qrate doubles it."""
    q = min(63, ((rate * 41) >> 6) + offset)
    return (4 + (q & 3)) << (q >> 2)


def _outlevel(d: Mapping[str, Any], op: int, ol: int | None = None) -> int:
    """The operator's output level for the reference note, in microsteps (dx7.md §2.2): S(OL) plus keyboard
    level scaling, capped at 127, then x32 plus the velocity offset. ``ol`` overrides the patch's OL."""
    from .scaling import scale_level, scale_velocity

    curves = ("-lin", "-exp", "+exp", "+lin")
    note = max(0, min(127, REF_NOTE + d["transpose"]))
    level = _scale_out(d["ol"][op] if ol is None else ol) + int(scale_level(
        note, d["kls_breakpoint"][op], d["kls_left_depth"][op], d["kls_right_depth"][op],
        curves.index(d["kls_left_curve"][op]), curves.index(d["kls_right_curve"][op])))
    return max(0, (min(level, 127) << 5) + int(scale_velocity(REF_VELOCITY, d["sensitivity"][op])))


def _ol_towards(d: Mapping[str, Any], op: int, delta: int) -> int:
    """The OL whose output level is nearest to ``delta`` microsteps from the current one, moved at least one
    audible step in that direction (the current OL when none is: keyboard scaling can saturate it)."""
    now, ol = _outlevel(d, op), d["ol"][op]
    span = range(ol + 1, 100) if delta > 0 else range(ol - 1, -1, -1)
    moving = [x for x in span if (_outlevel(d, op, x) - now) * delta > 0]
    if not moving:
        return ol
    return min(moving, key=lambda x: (abs(_outlevel(d, op, x) - now - delta), abs(x - ol)))


def _eg_trace(d: Mapping[str, Any], op: int, seconds: float) -> tuple[list[int], int]:
    """The operator's EG level (microsteps) per 64-sample block while the key is held, from the engine's
    own EG, and its note's output level (microsteps, with level scaling and velocity)."""
    import numpy as np

    from . import tables
    from .env import E_LEVEL, ENV_STATE_SIZE, env_init, env_step

    prm = np.zeros(21, dtype=np.int64)
    prm[0:4] = [d["eg_rate"][k][op] for k in range(4)]
    prm[4:8] = [d["eg_level"][k][op] for k in range(4)]
    outlevel = _outlevel(d, op)
    srm = tables.sr_multiplier(44100)
    st = np.zeros(ENV_STATE_SIZE, dtype=np.int64)
    env_init(st, prm, outlevel, _rate_offset(d, op), srm)
    out = []
    for _ in range(int(seconds * 44100 / 64)):
        env_step(st, prm, srm)
        out.append(int(st[E_LEVEL]) >> 16)
    return out, outlevel


def _level_for(outlevel: int, microsteps: int) -> int:
    """The largest EG level L whose target is not above ``microsteps`` (inverse of the EG's level map)."""
    best = 0
    for lv in range(100):
        if 64 * (_scale_out(lv) >> 1) + outlevel - 4256 <= microsteps:
            best = lv
    return best


def _op_peak_microsteps(d: Mapping[str, Any], op: int) -> int:
    """An operator's loudest envelope target in DX7 microsteps (0.0235 dB): its max(L1..L3) on its output level."""
    lmax = max(d["eg_level"][k][op] for k in range(3))
    return 64 * (_scale_out(lmax) >> 1) + _outlevel(d, op)


def _active(d: Mapping[str, Any], op: int) -> bool:
    """An operator makes output (level above 0 and an envelope that opens)."""
    return d["ol"][op] > 0 and max(d["eg_level"][k][op] for k in range(3)) > 0


def _index(d: Mapping[str, Any], op: int) -> float:
    """Peak modulation index (radians) of an operator as a modulator: 4*pi at full output (dx7.md §2.3)."""
    return 4 * math.pi * 2.0 ** ((_op_peak_microsteps(d, op) - _op_peak_microsteps_full()) / 256)


def _eg_drop(d: Mapping[str, Any], op: int) -> int:
    """Microsteps from an operator's envelope peak (max L1..L3) down to the level that lasts after the
    first stage (the higher of L2 and L3)."""
    lv = [d["eg_level"][k][op] for k in range(3)]
    return 64 * ((_scale_out(max(lv)) >> 1) - (_scale_out(max(lv[1], lv[2])) >> 1))


def _op_peak_microsteps_full() -> int:
    return (_scale_out(99) << 5) + 64 * (_scale_out(99) >> 1)


def _ratio(d: Mapping[str, Any], op: int) -> float:
    base = 0.5 if d["coarse"][op] == 0 else float(d["coarse"][op])
    return base * (1.0 + d["fine"][op] / 100.0)


def _ops(ops: Sequence[int]) -> str:
    return ", ".join(f"OP{o + 1}" for o in ops) if ops else "none"


class _Voice:
    """What sounds in a patch: carriers, who modulates whom, feedback edges (OP1 = index 0)."""

    def __init__(self, d: Mapping[str, Any]):
        self.d = d
        mm, om = d["modmatrix"], d["outmatrix"]
        self.carriers = [i for i in range(6) if om[i] and _active(d, i)]
        peaks = {c: _op_peak_microsteps(d, c) for c in self.carriers}
        top = max(peaks.values(), default=0)
        # Carriers far below the loudest one hardly change the sound; edits leave them alone.
        self.main = [c for c in self.carriers if (top - peaks[c]) * 0.0235 <= SIGNIFICANT_DB]
        self._peaks, self._top = peaks, top
        # Sources of each target: forward and upward edges, not the diagonal (that is feedback).
        self.sources = {t: [s for s in range(6) if mm[t][s] and s != t and _active(d, s)] for t in range(6)}
        self.tree = self._closure(self.carriers)
        self.main_tree = self._closure(self.main)
        self.feedback_edges = [(s, t) for t in range(6) for s in range(6) if mm[t][s] and s <= t]

    def loudest(self, within_db: float) -> list[int]:
        """The carriers whose envelope peak is within ``within_db`` of the loudest one's."""
        return [c for c in self.carriers if (self._top - self._peaks[c]) * 0.0235 <= within_db]

    def _closure(self, roots: Sequence[int]) -> list[int]:
        seen: set[int] = set()
        stack = list(roots)
        while stack:
            o = stack.pop()
            if o in seen:
                continue
            seen.add(o)
            stack.extend(self.sources[o])
        return sorted(seen)

    def modulators_of(self, targets: Sequence[int]) -> list[int]:
        """Active operators that modulate any of ``targets`` (excluding the targets themselves)."""
        return sorted({s for t in targets for s in self.sources[t] if s not in targets})


class _Edit:
    """A working copy of the patch plus the notes of one rule."""

    def __init__(self, patch: Patch):
        self.before = patch
        self.d = patch.model_dump()
        self.notes: list[str] = []
        self.v = _Voice(self.d)

    def put(self, key: str, idx: tuple[int, ...], value: Any) -> None:
        p = LEAVES["/" + "/".join([key, *map(str, idx)])][0]
        if p.kind == "integer":
            value = max(p.low, min(p.high, int(value)))
        _set(self.d, p, idx, value)

    def result(self) -> EditResult:
        after = Patch.model_validate(self.d)
        changes = diff_patches(self.before, after)
        if not changes:
            return EditResult(patch=self.before.model_copy(deep=True), changes=[], notes=self.notes)
        return EditResult(patch=after, changes=changes, notes=self.notes)


def _retime(rate: int, factor: float, floor_s: float, base_s: float, unit_s: float, offset: int = 0) -> int:
    """The rate whose segment lasts ``factor`` times as long (``factor`` < 1: shorter), moved at least one step.

    A segment at rate R lasts about unit_s / speed(R) seconds (``offset``: the keyboard rate scaling's
    qrate at the reference note), never less than ``floor_s`` (one 64-sample block for attacks and
    releases). Lengthening starts from at least ``base_s`` so that an instant segment becomes audibly
    slower, not merely a little less instant.
    """
    def seconds(r: int) -> float:
        return max(unit_s / _eg_speed(r, offset), floor_s)

    now = seconds(rate)
    target = max(now, base_s) * factor if factor > 1 else now * factor
    best = min(range(100), key=lambda r: (abs(math.log(seconds(r) / target)), abs(r - rate)))
    if factor > 1:
        return min(best, rate - 1) if rate > 0 else rate
    best = max(best, min(rate + 1, 99))
    return best if seconds(best) < now else rate


# --- the rules ----------------------------------------------------------------------------------


def _brightness(e: _Edit, a: int) -> None:
    d, v = e.d, e.v
    up = a > 0
    want = OL_STEP * abs(a)  # output-level steps this edit should deliver in all
    done = 0
    mods = v.modulators_of(v.main)
    # 1. The modulators that feed the carriers. A higher output level is a higher modulation index,
    #    which pushes energy into higher sidebands of the carrier (dx7.md §2.3: index ~
    #    4*pi*10^(-0.0376*(99-OL)) rad). A modulator below OL 50 (index < 0.2 rad) adds sidebands too
    #    weak to hear, so brightening starts it from there.
    done += _shift_levels(e, mods, a, "the modulators of " + _ops(v.main), floor=BRIGHT_FLOOR if up else None)
    # 2. No modulators at all: an additive voice. Tilt the balance between its highest and lowest carriers.
    if done < want and not mods:
        pitch = {c: round(_hz_rank(d, c), 3) for c in v.main}
        if len(set(pitch.values())) >= 2:
            top = max(pitch.values())
            high = [c for c in v.main if pitch[c] == top]
            low = [c for c in v.main if pitch[c] < top]
            got = _shift_levels(e, high, a, "the highest-pitched carriers")
            if got < want:
                got += _shift_levels(e, low, -a, "the lower carriers")
            done += got
    # 3. Feedback on an operator of the sounding part: it turns a sine towards a saw, adding harmonics.
    #    Used when the modulators could not deliver the step (at their limit) or there are none.
    fb_op = [s for s, t in v.feedback_edges if s in v.main_tree and t in v.main_tree]
    if done < want and fb_op and (d["feedback"] < 7 if up else d["feedback"] > 0):
        old = d["feedback"]
        new = max(0, min(7, (max(old, FEEDBACK_FLOOR - 1) if up else old) + a))
        e.put("feedback", (), new)
        e.notes.append(f"{'raised' if up else 'lowered'} feedback {old}->{new} (on {_ops(sorted(set(fb_op)))}): "
                       f"feedback {'adds' if up else 'removes'} harmonics")
        done += want
    # 4. The modulators one level up: a richer (or plainer) modulating signal.
    if done < want and mods:
        second = v.modulators_of(v.main + mods)
        done += _shift_levels(e, second, a, "the modulators' own modulators", floor=BRIGHT_FLOOR if up else None)
    # 5. Nothing sounding modulates the carriers, but the algorithm wires a silent modulator to one
    #    (the init voice's OP2): switching it on is the one-parameter way to give a sine sidebands.
    if done < want and up and not mods:
        idle = sorted({s for t in v.main for s in range(6) if d["modmatrix"][t][s] and s != t and d["ol"][s] == 0
                       and max(d["eg_level"][k][s] for k in range(3)) > 0})
        if idle:
            done += _shift_levels(e, idle[:1], a, "a silent modulator of " + _ops(v.main), floor=BRIGHT_FLOOR)
    if not done:
        e.notes.append("nothing to change: " + (
            f"the modulators' levels{' and feedback' if fb_op else ''} are already at their "
            f"{'maximum' if up else 'minimum'}" if mods else
            "sine carriers at one pitch with no modulators or feedback have no partials to brighten or darken"))


def _shift_levels(e: _Edit, ops: Sequence[int], a: int, who: str, floor: int | None = None) -> int:
    """Move the output level of ``ops`` by OL_STEP per unit of ``a`` (from ``floor`` when raising).

    Returns the largest number of OL steps any of them moved (0: none could).
    """
    d = e.d
    moved, total = [], 0
    for o in ops:
        old = d["ol"][o]
        if floor is not None and a > 0 and old < floor:
            d["ol"][o] = floor  # trial value: the step is taken from the floor
        new = _ol_towards(d, o, 32 * OL_STEP * a)
        d["ol"][o] = old
        if new != old:
            e.put("ol", (o,), new)
            moved.append(f"OP{o + 1} {old}->{new}")
            total = max(total, abs(new - old))
    if moved:
        e.notes.append(f"{'raised' if a > 0 else 'lowered'} the output level of {who} ({'; '.join(moved)}): "
                       f"{'more' if a > 0 else 'less'} modulation index or level, "
                       f"{'more' if a > 0 else 'fewer'} upper partials")
    return total


def _hz_rank(d: Mapping[str, Any], op: int) -> float:
    """Log frequency of an operator, comparable between ratio and fixed operators at middle C."""
    if d["fixed_freq"][op]:
        return math.log2(10 ** ((d["coarse"][op] % 4) + d["fine"][op] / 100.0))
    return math.log2(261.63 * _ratio(d, op))


def _attack(e: _Edit, a: int) -> None:
    d, v = e.d, e.v
    factor = ATTACK_FACTOR ** a
    # The attack one hears is the loudest carriers' rise (10% to 90% of their amplitude, the usual
    # attack time); within ~5 ms it is a click either way, and a quieter layer fading in later does
    # not make the onset any softer.
    loud = v.loudest(6.0)
    rise = min(_rise_time(d, c) for c in loud)
    if a < 0 and rise < ATTACK_MIN_S:
        e.notes.append(f"nothing to change: the attack is already a click (the loudest carriers, {_ops(loud)}, "
                       f"rise from 10% to 90% of their level within {1000 * rise:.0f} ms)")
        return
    # A longer attack stretches every sounding operator by the same factor, so the modulators'
    # brightness keeps following the carriers' loudness as the note opens (a slow carrier under an
    # instant modulator would change the timbre of the onset, not just its speed). A sharper one
    # shortens the carriers and the modulators that have opened by the time their carrier is at 90%
    # (they shape the onset); a modulator still opening after that is a later swell of brightness
    # (a brass "blat"), slower than the loudness already, and stays as it is.
    ops = v.tree if a > 0 else _onset_ops(d, v)
    moved: list[str] = []
    for op in ops:
        for k in _rising_stages(d, op):
            old = d["eg_rate"][k][op]
            new = _retime(old, factor, 0.00145, ATTACK_BASE_S, 175.0, _rate_offset(d, op))
            if new != old:
                e.put("eg_rate", (k, op), new)
                moved.append(f"R{k + 1} of OP{op + 1} {old}->{new}")
    if moved:
        e.notes.append(f"{'lengthened' if a > 0 else 'shortened'} the attack about x{factor:g} "
                       f"({'; '.join(moved)})")
    else:
        e.notes.append("nothing to change: " + ("the attack is already as fast as the DX7 goes" if a < 0 else
                       "the attack rates are already at 0 (the slowest)"))


def _amplitude(d: Mapping[str, Any], op: int, seconds: float) -> list[float]:
    """An operator's envelope as a linear amplitude per 64-sample block (key held), relative units."""
    trace, _ = _eg_trace(d, op, seconds)
    return [2.0 ** (lv / 256) for lv in trace]


def _onset_ops(d: Mapping[str, Any], v: _Voice, horizon_s: float = 3.0) -> list[int]:
    """The sounding carriers plus every operator modulating them (directly or through others) that has
    come within ONSET_OPEN_DB of its own peak by the time its carrier reaches 90% of its amplitude."""
    keep: set[int] = set(v.carriers)
    amps: dict[int, list[float]] = {}

    def amp(o: int) -> list[float]:
        if o not in amps:
            amps[o] = _amplitude(d, o, horizon_s)
        return amps[o]

    for c in v.carriers:
        top = max(amp(c))
        at = next(i for i, x in enumerate(amp(c)) if x >= 0.9 * top)
        stack = [c]
        while stack:
            for s in v.sources[stack.pop()]:
                if s not in keep and max(amp(s)[: at + 1]) >= 10 ** (-ONSET_OPEN_DB / 20) * max(amp(s)):
                    keep.add(s)
                    stack.append(s)
    return sorted(keep)


def _rise_time(d: Mapping[str, Any], op: int, horizon_s: float = 3.0) -> float:
    """Seconds the operator's envelope takes from 10% to 90% of its highest amplitude (key held)."""
    amp = _amplitude(d, op, horizon_s)
    top = max(amp)
    i10 = next(i for i, x in enumerate(amp) if x >= 0.1 * top)
    i90 = next(i for i, x in enumerate(amp) if x >= 0.9 * top)
    return (i90 - i10) * 64 / 44100


def _rising_stages(d: Mapping[str, Any], op: int) -> list[int]:
    """The envelope stages up to the one that reaches the envelope's highest level (R1 for a plain attack).

    A voice may rise in two steps (L1 then a higher L3) or dip on the way up; the attack one hears
    lasts until the highest level, so every stage before it is stretched alike.
    """
    levels = [d["eg_level"][k][op] for k in range(3)]
    return list(range(levels.index(max(levels)) + 1))


def _decay(e: _Edit, a: int) -> None:
    d, v = e.d, e.v
    factor = TIME_FACTOR ** a
    # The decay time a listener (and render_patch) reports is the time to fall 20 dB below the peak.
    # A note whose loudest carriers settle less than that below their peak never gets there, however
    # slow or fast its dip: it has no decay time to change (sustain sets how far it falls).
    fall = _note_fall_db(d, v.main)
    if fall < DECAY_MIN_FALL_DB:
        e.notes.append(f"nothing to change: the note never decays {DECAY_MIN_FALL_DB:g} dB (its carriers together "
                       f"settle {fall:.0f} dB below their peak), so it has no decay time to change; "
                       f"sustain sets how far it falls")
        return
    moved: list[str] = []
    for c in v.main:
        lv = [d["eg_level"][k][c] for k in range(3)]
        stages = []
        # R2 moves L1 -> L2 and R3 moves L2 -> L3: a falling stage is part of the decay. A level
        # that stays put before a fall is a hold (Dexed times it by the same rate), also part of it.
        if lv[1] < lv[0]:
            stages.append(1)
        if lv[2] < lv[1]:
            stages.append(2)
            if lv[1] == lv[0]:
                stages.append(1)
        for k in sorted(stages):
            old = d["eg_rate"][k][c]
            new = _retime(old, factor, 0.0, 0.0, 1422.0, _rate_offset(d, c))
            if new != old:
                e.put("eg_rate", (k, c), new)
                moved.append(f"R{k + 1} of OP{c + 1} {old}->{new}")
    if moved:
        e.notes.append(f"{'lengthened' if a > 0 else 'shortened'} the decay about x{factor:g} ({'; '.join(moved)})")
    else:
        e.notes.append(f"nothing to change: the decay rates are already at their "
                       f"{'slowest (0)' if a > 0 else 'fastest (99)'}")


def _note_fall_db(d: Mapping[str, Any], carriers: Sequence[int]) -> float:
    """How far (dB) the carriers together fall from their envelopes' highest levels to their sustain levels.

    Amplitudes are summed (an upper bound for the peak, whatever the phases), so a sustaining layer
    under a decaying one keeps the note from counting as decaying.
    """
    peak = held = 0.0
    for c in carriers:
        _, outlevel = _eg_trace(d, c, 0.0)
        amp = [2.0 ** (max(16, 64 * (_scale_out(d["eg_level"][k][c]) >> 1) + outlevel - 4256) / 256) for k in range(3)]
        peak += max(amp)
        held += amp[2]
    return 20.0 * math.log10(peak / held) if held > 0 else 120.0


def _release(e: _Edit, a: int) -> None:
    d, v = e.d, e.v
    factor = TIME_FACTOR ** a
    moved: list[str] = []
    for c in v.main:
        old = d["eg_rate"][3][c]
        new = _retime(old, factor, 0.00145, RELEASE_BASE_S, 1422.0, _rate_offset(d, c))
        if new != old:
            e.put("eg_rate", (3, c), new)
            moved.append(f"R4 of OP{c + 1} {old}->{new}")
    if moved:
        e.notes.append(f"{'lengthened' if a > 0 else 'shortened'} the release about x{factor:g} ({'; '.join(moved)})")
    else:
        e.notes.append("nothing to change: " + (
                       "the release rates are already at 0 (the slowest)" if a > 0 else
                       "the release is already as fast as the DX7 goes"))


def _sustain(e: _Edit, a: int) -> None:
    d, v = e.d, e.v
    moved: list[str] = []
    plan: list[tuple[int, int, int]] = []
    before = after = 0.0  # the carriers' summed amplitude after SUSTAIN_REF_S held, before and after
    for c in v.main:
        old = d["eg_level"][2][c]
        peak = max(d["eg_level"][0][c], d["eg_level"][1][c])
        # What a listener hears as sustain is the level a held note has settled to, judged here after
        # SUSTAIN_REF_S. A slow decay may still be far above L3 by then: raising L3 from where the
        # decay has got to makes the decay stop there, 6 dB higher per unit.
        trace, outlevel = _eg_trace(d, c, SUSTAIN_REF_S)
        heard = _level_for(outlevel, trace[-1])
        before += 2.0 ** (trace[-1] / 256)
        l2 = d["eg_level"][1][c]
        if a > 0:
            # Sustain stays 1.5 dB under the envelope's peak: at the peak the note would no longer
            # decay at all, and above it it would swell.
            new = min(max(old, SUSTAIN_FLOOR, heard) + SUSTAIN_STEP * a, peak - 2)
            # A first decay (R2) that falls below the new sustain would still be falling when it
            # counts: it now stops at the sustain level too.
            new2 = new if l2 < new and l2 <= d["eg_level"][0][c] else l2
        else:
            # Sustain is heard against the note's first peak: a sustain that swells above it (L3 over
            # L1 and L2) is the loudest part of the note, and lowering it would only lower the note.
            new, new2 = max(min(old, peak) + SUSTAIN_STEP * a, 0), l2
        level = trace[-1]
        if (new > old) if a > 0 else (new < old):
            # L3 does nothing while an earlier stage is still running (R2 = 0 never ends), or while a
            # slow decay has not yet come down to it: such a carrier is left alone.
            trial = _deep(d)
            trial["eg_level"][2][c], trial["eg_level"][1][c] = new, new2
            level = _eg_trace(trial, c, SUSTAIN_REF_S)[0][-1]
            gain_db = (level - trace[-1]) * 0.0235
            if gain_db * (1 if a > 0 else -1) >= 1.5:
                plan.append((c, new, new2))
                moved.append(f"L3 of OP{c + 1} {old}->{new}" + (f", L2 {l2}->{new2}" if new2 != l2 else "")
                             + f" ({gain_db:+.0f} dB)")
            else:
                level = trace[-1]
        after += 2.0 ** (level / 256)
    # Only quiet carriers would change: the note as a whole would not sound any more (or less) sustained.
    if moved and abs(20 * math.log10(after / before)) < 1.0:
        moved = []
    for c, new, new2 in plan if moved else []:
        e.put("eg_level", (2, c), new)
        e.put("eg_level", (1, c), new2)
    if moved:
        e.notes.append(f"{'raised' if a > 0 else 'lowered'} the sustain level ({'; '.join(moved)} "
                       f"after {SUSTAIN_REF_S:g} s held)")
    else:
        e.notes.append("nothing to change: the carriers' held level cannot " + (
            "rise: they already hold at or near their peak, or an earlier envelope stage never ends" if a > 0 else
            f"fall within the first {SUSTAIN_REF_S:g} s: their sustain level is already 0 or their decay has not "
            f"reached it yet (a shorter decay makes the note fade sooner)"))


def _level(e: _Edit, a: int) -> None:
    d, v = e.d, e.v
    moved: list[str] = []
    want = 32 * LEVEL_STEP * a  # microsteps: LEVEL_STEP output-level steps of 0.75 dB
    for c in v.carriers:
        ol, now = d["ol"][c], _outlevel(d, c)
        new = _ol_towards(d, c, want)
        if new != ol:
            e.put("ol", (c,), new)
            moved.append(f"OL of OP{c + 1} {ol}->{new}")
        rest = want - (_outlevel(d, c) - now)
        if a < 0 or rest < 32:
            continue
        # Past the top output level, the envelope levels add to it in the same log units (dx7.md §2.3),
        # so raising L1..L3 together is the same gain without changing the envelope's shape.
        lv = [d["eg_level"][k][c] for k in range(3)]
        up = min(-(-rest // 32), 99 - max(lv))
        if up > 0:
            for k in range(3):
                if lv[k] > 0:
                    e.put("eg_level", (k, c), lv[k] + up)
            moved.append(f"L1-L3 of OP{c + 1} +{up}")
    if moved:
        e.notes.append(f"{'raised' if a > 0 else 'lowered'} the carriers' level about "
                       f"{0.75 * LEVEL_STEP * abs(a):g} dB ({'; '.join(moved)})")
    else:
        e.notes.append("nothing to change: " + (
                       "the carriers' output and envelope levels are already at their maximum" if a > 0 else
                       "the carriers are already at level 0"))


def _off_harmonic(d: Mapping[str, Any], op: int) -> tuple[float, float]:
    """(distance of the op's ratio from the half-harmonic grid, the signed direction away from it).

    Ratios on the grid of halves keep every FM sideband on the harmonic series of the played note or
    of its sub-octave (the DX7's coarse 0 is ratio 0.5), which sounds pitched, not metallic; the
    farthest a ratio can be from that grid is a quarter.
    """
    r = _ratio(d, op)
    nearest = round(r * 2) / 2
    return abs(r - nearest), (1.0 if r >= nearest else -1.0)


def _fixed_hz(d: Mapping[str, Any], op: int) -> float:
    """A fixed-frequency operator's frequency: 10^(coarse mod 4) Hz times 10^(fine/100) (dx7.md §2.1)."""
    return 10.0 ** ((d["coarse"][op] & 3) + d["fine"][op] / 100.0)


def _on_grid(d: Mapping[str, Any], op: int) -> bool:
    """A ratio-mode operator on the grid of half harmonics: within HARMONIC_TOL and 30 cents of it."""
    r = _ratio(d, op)
    nearest = max(0.5, round(r * 2) / 2)
    return abs(r - nearest) < HARMONIC_TOL and abs(1200 * math.log2(r / nearest)) <= 30.0


def _fine_onto_grid(d: Mapping[str, Any], op: int) -> int:
    """The fine value that puts the operator's ratio on the grid point nearest to it; when fine's steps
    (coarse/100) cannot land there, the nearest fine value that lands on the grid at all (its own when
    none does)."""
    def at(f: int) -> dict[str, Any]:
        return {**d, "fine": _with(d["fine"], op, f)}

    goal = max(0.5, round(_ratio(d, op) * 2) / 2)
    best = min(range(100), key=lambda f: (abs(_ratio(at(f), op) - goal), abs(f - d["fine"][op])))
    if _on_grid(at(best), op):
        return best
    on = [f for f in range(100) if _on_grid(at(f), op)]
    return min(on, key=lambda f: (abs(f - d["fine"][op]), f)) if on else d["fine"][op]


def _fine_for(d: Mapping[str, Any], op: int, ratio: float) -> int:
    base = 0.5 if d["coarse"][op] == 0 else float(d["coarse"][op])
    return max(0, min(99, int(round((ratio / base - 1.0) * 100))))


def _metallic(e: _Edit, a: int) -> None:
    before = _deep(e.d)
    _metallic_rule(e, a)
    if a >= 0 or e.d == before:
        return
    # Less metal has to take an audible share of the note's energy off the harmonic series; the rule
    # above judges each modulator by its peak index, this by the whole held note (a percussive
    # modulator's sidebands may be gone before its carrier is), and by everything else in the voice.
    was, now = _inharmonic_share(before, e.v), _inharmonic_share(e.d, e.v)
    if was - now < METAL_MIN_SHARE:
        e.d = before
        e.notes[:] = [f"nothing to change: retuning or lowering the off-harmonic modulators would take only "
                      f"{100 * max(0.0, was - now):.1f}% of the note's energy off the harmonic series (about "
                      f"{100 * was:.0f}% of it is off the series"
                      + (", most of that from operators retuning cannot reach)" if was >= 0.5 else ")")
                      + ": no audible metal to reduce there"]


def _j0(x: Any) -> Any:
    """Bessel J0 of an array (power series: exact to ~1e-9 for the DX7's indices, at most 4*pi)."""
    import numpy as np

    x = np.asarray(x, dtype=np.float64)
    term, out, q = np.ones_like(x), np.ones_like(x), (x / 2.0) ** 2
    for k in range(1, 60):
        term = term * -q / (k * k)
        out = out + term
    return out


def _off_series(d: Mapping[str, Any], op: int) -> bool:
    """An operator whose frequency at the reference note is off the half-harmonic grid (a fixed-frequency
    one below 30 Hz only wobbles the pitch: not off it)."""
    if not d["fixed_freq"][op]:
        return not _on_grid(d, op)
    hz = _fixed_hz(d, op)
    if hz < 30.0:
        return False
    r = hz / (440.0 * 2.0 ** ((max(0, min(127, REF_NOTE + d["transpose"])) - 69) / 12.0))
    nearest = max(0.5, round(r * 2) / 2)
    return not (abs(r - nearest) < HARMONIC_TOL and abs(1200 * math.log2(r / nearest)) <= 30.0)


def _inharmonic_share(d: Mapping[str, Any], v: _Voice, seconds: float = METAL_HOLD_S) -> float:
    """The share of the main carriers' energy over a held note that lies off the harmonic series.

    An operator's output is on the series when its own frequency is on the grid and its modulators'
    sidebands are: a modulator of index b leaves J0(b)^2 of the power on the operator's frequency and
    moves the rest into sidebands (dx7.md §2.3), on the series only as far as the modulator's own
    output is. Worked out moment by moment as the envelopes move; a fixed or off-grid carrier is off the
    series entirely.
    """
    import numpy as np

    full = _op_peak_microsteps_full()
    traces: dict[int, Any] = {}

    def level(o: int) -> Any:
        if o not in traces:
            traces[o] = np.asarray(_eg_trace(d, o, seconds)[0], dtype=np.float64)
        return traces[o]

    def harmonic(o: int, seen: frozenset[int]) -> Any:
        if _off_series(d, o):
            return np.zeros_like(level(o))
        kept = np.ones_like(level(o))
        for m in v.sources[o]:
            if m in seen:  # a loop through an upward edge: feedback, not a partial of its own
                continue
            j = _j0(4 * math.pi * 2.0 ** ((level(m) + 4256 - full) / 256.0)) ** 2
            kept = kept * (j + (1.0 - j) * harmonic(m, seen | {m}))
        return kept

    total = off = 0.0
    for c in v.main:
        power = 2.0 ** (level(c) / 128.0)
        total += float(power.sum())
        off += float((power * (1.0 - harmonic(c, frozenset({c})))).sum())
    return off / total if total > 0 else 0.0


def _metallic_rule(e: _Edit, a: int) -> None:
    d, v = e.d, e.v
    mods = v.modulators_of(v.main)
    role = "modulators"
    if not mods:
        # An additive voice: its upper carriers are the partials that can leave the harmonic series.
        lowest = min(v.main, key=lambda c: (_hz_rank(d, c), c)) if v.main else None
        mods = [c for c in v.main if c != lowest]
        role = "upper carriers"
    skipped: list[str] = []
    if a < 0 and role == "modulators":
        # Less metal needs a modulator whose own retuning can bring its sidebands back onto the harmonic
        # series: one that modulates, directly, a carrier that is itself on the grid. The sidebands of an
        # off-grid or fixed-frequency carrier stay off the series whatever the modulator does, and a
        # fixed-frequency modulator below 30 Hz only wobbles the pitch.
        keep = []
        for m in mods:
            targets = [t for t in v.main if m in v.sources[t]]
            if not any(not d["fixed_freq"][t] and _on_grid(d, t) for t in targets):
                skipped.append(f"OP{m + 1} modulates only off-harmonic or fixed-frequency carriers")
            elif d["fixed_freq"][m] and _fixed_hz(d, m) < 30.0:
                skipped.append(f"fixed-frequency OP{m + 1} at {_fixed_hz(d, m):.1f} Hz only wobbles the pitch")
            elif max(_index(d, m) * 2.0 ** ((_eg_drop(d, t) - _eg_drop(d, m)) / 256) for t in targets) < AUDIBLE_INDEX:
                # Its envelope falls far below its carrier's after the first stage: the off-grid sidebands
                # are a click in the attack, and the note that follows is already harmonic.
                skipped.append(f"OP{m + 1}'s sidebands fade after the attack")
            else:
                keep.append(m)
        mods = keep
    ratio_ops = [m for m in mods if not d["fixed_freq"][m]]
    fixed_ops = [m for m in mods if d["fixed_freq"][m]]
    moved: list[str] = []
    for m in ratio_ops:
        off, sign = _off_harmonic(d, m)
        r = _ratio(d, m)
        if a < 0 and (off < HARMONIC_TOL or _index(d, m) < AUDIBLE_INDEX):
            # So close to the grid it is a slight mistuning (beating), not a metallic partial; and the
            # sidebands of a weak modulator are too quiet to make the sound metallic in the first place.
            continue
        if a > 0 and off >= INHARMONIC_OFF:
            # Already between two harmonics: more metal means more of those inharmonic sidebands.
            ol = _ol_towards(d, m, 32 * OL_STEP * a)
            if ol != d["ol"][m]:
                moved.append(f"OL of OP{m + 1} {d['ol'][m]}->{ol} (ratio {r:.2f} is already inharmonic)")
                e.put("ol", (m,), ol)
            continue
        if a > 0:
            target_off = min(off + RATIO_STEP * a, RATIO_MAX_OFF)
            fine = _fine_for(d, m, r + sign * (target_off - off))
            if fine == d["fine"][m] or _off_harmonic({**d, "fine": _with(d["fine"], m, fine)}, m)[0] <= off:
                # Blocked at the end of fine's range: step the other way off the harmonic.
                fine = _fine_for(d, m, r - sign * (target_off + off))
        else:
            target_off = max(off - RATIO_STEP * -a, 0.0)
            if target_off < INHARMONIC_OFF:
                # Short of the grid, a ratio near a harmonic still sounds rough: settle it onto the grid,
                # at the nearest fine value that lands there (a high coarse ratio moves in steps of
                # coarse/100, which may step over the nearest grid point).
                target_off = 0.0
                fine = _fine_onto_grid(d, m)
            else:
                fine = _fine_for(d, m, r - sign * (off - target_off))
        new_off = _off_harmonic({**d, "fine": _with(d["fine"], m, fine)}, m)[0]
        if fine != d["fine"][m] and ((new_off > off) if a > 0 else (new_off < off - RATIO_MIN_MOVE)):
            moved.append(f"fine of OP{m + 1} {d['fine'][m]}->{fine} (ratio {r:.2f}->"
                         f"{_ratio({**d, 'fine': _with(d['fine'], m, fine)}, m):.2f})")
            e.put("fine", (m,), fine)
            if a > 0 and _index(d, m) < AUDIBLE_INDEX:
                # The inharmonic sidebands of a near-silent modulator would stay inaudible.
                ol = d["ol"][m]
                while ol < 99 and _index({**d, "ol": _with(d["ol"], m, ol)}, m) < AUDIBLE_INDEX:
                    ol += 1
                moved.append(f"OL of OP{m + 1} {d['ol'][m]}->{ol}")
                e.put("ol", (m,), ol)
    for m in fixed_ops:
        # A fixed-frequency operator ignores the played note, so it is inharmonic by nature: its level
        # is the amount of metal it adds.
        if a < 0 and _index(d, m) < AUDIBLE_INDEX:
            continue
        ol = _ol_towards(d, m, 32 * OL_STEP * a)
        if ol != d["ol"][m]:
            moved.append(f"OL of fixed-frequency OP{m + 1} {d['ol'][m]}->{ol}")
            e.put("ol", (m,), ol)
    if moved:
        e.notes.append(f"{'moved' if a > 0 else 'brought'} the {role} {'away from' if a > 0 else 'back towards'} "
                       f"whole-number frequency ratios ({'; '.join(moved)})")
    else:
        e.notes.append("nothing to change: " + (
            "no modulator whose retuning brings its sidebands onto the harmonic series ("
            + "; ".join(skipped) + ")" if skipped and not mods else
            "no modulator or upper carrier to retune" if not mods else
            "every ratio is already as far from the harmonics as this edit goes" if a > 0 else
            "every ratio is already a whole-number (harmonic) one"))


def _with(xs: Sequence[int], i: int, value: int) -> list[int]:
    out = list(xs)
    out[i] = value
    return out


def _vibrato_cents(pmd: int, pms: int) -> float:
    """Peak pitch deviation of the LFO in cents (dx7.md §2.13)."""
    return ((pmd * 165) >> 6) * _PMS_TABLE[pms] * 0.5 / 32768 * 1200


def _vibrato(e: _Edit, a: int) -> None:
    d = e.d
    lfo = d["lfo"]
    cur = _vibrato_cents(lfo["pmd"], d["pms"])
    if all(d["fixed_freq"][c] for c in e.v.main):
        e.notes.append("nothing to change: fixed-frequency carriers ignore the LFO's pitch modulation")
        return
    # A depth under 3 cents is inaudible: for this edit it is no vibrato at all.
    audible = cur >= VIBRATO_MIN_CENTS
    if a < 0 and not audible:
        e.notes.append(f"nothing to change: the voice has no audible vibrato (+-{cur:.1f} cents)")
        return
    target = cur * VIBRATO_FACTOR ** a if audible else VIBRATO_START_CENTS * VIBRATO_FACTOR ** (a - 1)
    if a < 0 and target < VIBRATO_MIN_CENTS:
        e.notes.append(f"switched the vibrato off (LFO pitch depth {lfo['pmd']}->0; was +-{cur:.0f} cents)")
        lfo["pmd"] = 0
        return
    # Prefer moving only the depth; change the sensitivity only when the depth cannot reach.
    pms_choices = ([d["pms"]] if d["pms"] else []) + [s for s in range(1, 8) if s != d["pms"]]
    best: tuple[int, int] | None = None
    for s in pms_choices:
        pmd = min(range(100), key=lambda x: abs(_vibrato_cents(x, s) - target))
        got = _vibrato_cents(pmd, s)
        ok = (got > cur) if a > 0 else (got < cur)
        if ok and abs(got - target) <= 0.35 * target:
            best = (pmd, s)
            break
        if ok and (best is None or abs(got - target) < abs(_vibrato_cents(*best) - target)):
            best = (pmd, s)
    if best is None:
        e.notes.append("nothing to change: the vibrato is already at its " + ("maximum" if a > 0 else "minimum"))
        return
    pmd, pms = best
    old_pmd, old_pms = lfo["pmd"], d["pms"]
    lfo["pmd"], d["pms"] = pmd, pms
    extra = []
    if not audible:
        # Starting a vibrato: a smooth wave at a singer's/violinist's rate, audible within the note.
        if lfo["wave"] not in ("sine", "triangle"):
            extra.append(f"wave {lfo['wave']}->sine")
            lfo["wave"] = "sine"
        if not 25 <= lfo["speed"] <= 45:
            extra.append(f"speed {lfo['speed']}->{VIBRATO_SPEED} (5.8 Hz)")
            lfo["speed"] = VIBRATO_SPEED
        if lfo["delay"] > VIBRATO_MAX_DELAY:
            extra.append(f"delay {lfo['delay']}->{VIBRATO_MAX_DELAY}")
            lfo["delay"] = VIBRATO_MAX_DELAY
    e.notes.append(f"{'deepened' if a > 0 else 'reduced'} the vibrato to about +-{_vibrato_cents(pmd, pms):.0f} cents "
                   f"(was +-{cur:.0f}; LFO pitch depth {old_pmd}->{pmd}, sensitivity {old_pms}->{pms}"
                   + (", " + ", ".join(extra) if extra else "") + ")")


def _detune(e: _Edit, a: int) -> None:
    d, v = e.d, e.v
    group = [c for c in v.main if not d["fixed_freq"][c]]
    who = "carriers"
    if len(group) == 1:
        # One carrier cannot beat against itself. Detuned against its own modulator, the FM sidebands
        # that fold back below 0 Hz land beside the direct ones and beat (the DX7's classic chorus),
        # but only where they coincide: when twice the carrier's ratio is a multiple of the modulator's.
        c = group[0]
        mods = [m for m in v.modulators_of(group) if not d["fixed_freq"][m] and _index(d, m) >= AUDIBLE_INDEX
                and abs(2 * _ratio(d, c) / _ratio(d, m) - round(2 * _ratio(d, c) / _ratio(d, m))) < 0.02]
        group = group + sorted(mods, key=lambda m: (-_index(d, m), m))[:1]
        who = "carrier and its modulator"
    if a < 0:
        _less_detune(e, a)
        return
    if _widen_beats(e, a):
        return
    if len(group) < 2:
        e.notes.append("nothing to change: " + (
                       "a single carrier with no modulator whose sidebands fold onto its own cannot beat "
                       "against anything"))
        return
    # The lower half moves down and the upper half up (an odd middle one stays), so the spread is
    # symmetric about the group's centre and the average pitch stays put.
    order = sorted(group, key=lambda o: (d["detune"][o], o))
    mid = (len(order) - 1) / 2
    signs = {o: (1 if i > mid else -1 if i < mid else 0) for i, o in enumerate(order)}
    moved = []
    for o in group:
        old = d["detune"][o]
        new = max(-7, min(7, old + signs[o] * DETUNE_STEP * a))
        if new != old:
            e.put("detune", (o,), new)
            moved.append(f"OP{o + 1} {old}->{new}")
    if moved:
        e.notes.append(f"spread the detune of the {who} ({'; '.join(moved)}): slightly mistuned copies beat "
                       f"like a chorus")
    else:
        e.notes.append("nothing to change: the detune spread is already at its maximum (+-7)")


def _chorus_pairs(d: Mapping[str, Any], v: _Voice) -> list[tuple[int, int, float, int]]:
    """Pairs of ratio-mode operators with partials that nearly coincide, so that detune makes them beat:
    ``(x, y, cents, k)``, where x's pitch should sit ``cents`` above y's and the beat is k times the
    mismatch of x's frequency (in Hz).

    Two main carriers beat where the lower one's p-th partial meets the upper one's q-th (unison, an
    octave, a fifth...: p/q with q up to 3), when each has the partials that takes (a partial above the
    first needs an audible modulator or feedback on that carrier). A carrier and its modulator beat
    where the carrier's sidebands folded below 0 Hz land on the direct ones (2 f_t = n f_m).
    """
    ops = [o for o in v.main if not d["fixed_freq"][o]]

    def overtones(o: int) -> bool:
        return (any(_index(d, m) >= AUDIBLE_INDEX for m in v.sources[o])
                or bool(d["modmatrix"][o][o] and d["feedback"] >= FEEDBACK_FLOOR))

    pairs = []
    for i, x in enumerate(ops):
        for y in ops[i + 1:]:
            lo, hi = sorted((x, y), key=lambda o: (_cents(d, o), o))
            gap = _cents(d, hi) - _cents(d, lo)
            for p, q in _COINCIDENCES:
                if (p > 1 and not overtones(lo)) or (q > 1 and not overtones(hi)):
                    continue
                if abs(gap - 1200.0 * math.log2(p / q)) <= DETUNE_NEAR_CENTS:
                    pairs.append((hi, lo, 1200.0 * math.log2(p / q), q))
                    break
    for x, y, want in _beating_pairs(d, v):
        if want != 0.0 or y not in v.main:  # carrier and modulator (the carrier pairs are above)
            pairs.append((x, y, want, 2))
    return pairs


def _put_detunes(e: _Edit, ops: Sequence[int], before: Mapping[int, int] | Sequence[int],
                 after: Mapping[int, int] | Sequence[int]) -> list[str]:
    """Set the detune of each operator in ``ops`` whose value changes; the moves as ``OPn a->b`` texts."""
    moved = []
    for o in ops:
        if after[o] != before[o]:
            e.put("detune", (o,), after[o])
            moved.append(f"OP{o + 1} {before[o]}->{after[o]}")
    return moved


def _widen_beats(e: _Edit, a: int) -> bool:
    """More detune: widen the mismatch of the partials that beat; False when none nearly coincide.

    Each unit of ``a`` is one step: every operator in a beating pair may move DETUNE_STEP either way
    or stay, and the step chosen makes the slow beats faster (a beat under BEAT_FULL_HZ does not yet
    swing fully within a held note), the carriers' own beats first (the chorus of mistuned copies,
    which also spreads the pitch), then those of folded sidebands; it never slows a beat, and moves as
    few operators as it can. The first step always widens when it can; further ones only while some
    beat is still slower than BEAT_FULL_HZ.
    """
    d, v = e.d, e.v
    pairs = _chorus_pairs(d, v)
    if not pairs:
        return False
    ops = sorted({o for x, y, _, _ in pairs for o in (x, y)})
    hz = {o: {t: 2.0 ** (_cents(d, o, t) / 1200.0) for t in range(-7, 8)} for o in ops}
    carrier_pair = [x in v.main and y in v.main for x, y, _, _ in pairs]

    def beats(det: Mapping[int, int]) -> list[float]:
        return [k * abs(hz[x][det[x]] - hz[y][det[y]] * 2.0 ** (want / 1200.0)) for x, y, want, k in pairs]

    start = {o: d["detune"][o] for o in ops}
    det0 = dict(start)
    for unit in range(a):
        now = beats(det0)
        best: tuple[tuple, dict[int, int]] | None = None
        for moves in itertools.product((0, -1, 1), repeat=len(ops)):
            det = {o: max(-7, min(7, det0[o] + s * DETUNE_STEP)) for o, s in zip(ops, moves)}
            if det == det0:
                continue
            new = beats(det)
            gains = [min(b, BEAT_FULL_HZ) - min(b0, BEAT_FULL_HZ) for b, b0 in zip(new, now)]
            if min(gains) < -1e-9:
                continue  # it would slow a beat that still swings
            wider = sum(new) - sum(now)
            cgain = round(sum(g for g, c in zip(gains, carrier_pair) if c), 6)
            changed = sum(det[o] != det0[o] for o in ops)
            key = (cgain, round(sum(gains), 6), wider > 1e-9, -changed, round(wider, 6))
            if best is None or key > best[0]:
                best = (key, det)
        if best is None or not best[0][2] or (unit and best[0][1] <= 0):
            # After the first unit, widening goes on only while a beat is still too slow to swing
            # fully: past BEAT_FULL_HZ more detune turns beats into roughness, not a deeper chorus.
            break
        det0 = best[1]
    if det0 == start:
        e.notes.append("nothing to change: the detune of the operators whose partials beat is already at its "
                       "limits (+-7) in every direction that would make them beat faster")
        return True
    moved = _put_detunes(e, ops, start, det0)
    e.notes.append(f"widened the detune between the operators whose partials beat ({'; '.join(moved)}): "
                   f"the beats get faster (slow ones towards {BEAT_FULL_HZ:g} Hz), a wider chorus")
    return True


def _cents(d: Mapping[str, Any], op: int, detune: int | None = None) -> float:
    """A ratio-mode operator's pitch at the reference note in cents (ratio, fine and Dexed's detune): the
    engine's log-frequency (``frequency.osc_logfreq``, ratio mode), in plain Python."""
    import numpy as np

    from .frequency import LOGFREQ_BASE, LOGFREQ_STEP
    from .tables import coarse_table

    note = max(0, min(127, REF_NOTE + d["transpose"]))
    det = d["detune"][op] if detune is None else detune
    logfreq = LOGFREQ_BASE + LOGFREQ_STEP * note
    lf = float(np.float32(logfreq) / np.float32(1 << 24))
    logfreq = int(logfreq + 0.0209 * math.exp(-0.396 * lf) / 7.0 * logfreq * det)
    logfreq += int(coarse_table()[d["coarse"][op] & 31])
    if d["fine"][op]:
        logfreq += int(math.floor(24204406.323123 * math.log(1.0 + 0.01 * d["fine"][op]) + 0.5))
    return logfreq * 1200.0 / (1 << 24)


def _beating_pairs(d: Mapping[str, Any], v: _Voice) -> list[tuple[int, int, float]]:
    """Pairs of ratio-mode operators whose partials nearly coincide and so beat, with the interval they
    should make (cents): two main carriers within 30 cents of each other (unison), and a modulator
    and the carrier it modulates whose folded sidebands land within 30 cents of the direct ones (twice
    the carrier's frequency near a whole multiple of the modulator's)."""
    ops = [o for o in v.main if not d["fixed_freq"][o]]
    pairs = []
    for i, x in enumerate(ops):
        for y in ops[i + 1:]:
            if abs(_cents(d, x) - _cents(d, y)) <= DETUNE_NEAR_CENTS:
                pairs.append((x, y, 0.0))
    for t in ops:
        for m in v.sources[t]:
            if d["fixed_freq"][m] or _index(d, m) < AUDIBLE_INDEX:
                continue
            # 2 f_t = n f_m: the interval from m up to t is log2(n/2) octaves.
            gap = _cents(d, t) - _cents(d, m) + 1200.0
            n = round(2.0 ** (gap / 1200.0))
            if n >= 1 and abs(gap - 1200.0 * math.log2(n)) <= DETUNE_NEAR_CENTS:
                pairs.append((t, m, 1200.0 * math.log2(n) - 1200.0))
    return pairs


def _mismatch(d: Mapping[str, Any], pairs: Sequence[tuple[int, int, float]], det: Mapping[int, int]) -> float:
    return sum(abs(_cents(d, x, det[x]) - _cents(d, y, det[y]) - want) for x, y, want in pairs)


def _less_detune(e: _Edit, a: int) -> None:
    """Less detune: move the detune of the operators that beat so that their partials coincide better."""
    d, v = e.d, e.v
    pairs = _beating_pairs(d, v)
    worst = max((abs(_cents(d, x) - _cents(d, y) - want) for x, y, want in pairs), default=0.0)
    if worst < DETUNE_MIN_CENTS:
        e.notes.append("nothing to change: " + (
            "no operators near unison (or near a whole-number multiple of a modulator) to beat" if not pairs else
            f"the operators near unison are within {DETUNE_MIN_CENTS:g} cents of each other: any beating is "
            f"already slower than a note lasts"))
        return
    budget = DETUNE_STEP * -a
    # First choice: pull every sounding ratio-mode operator towards their mean detune (the centre a
    # symmetric spread came from, so -1 undoes +1), when that brings the beating partials closer.
    ops = [o for o in v.tree if not d["fixed_freq"][o]]
    ref = round(sum(d["detune"][o] for o in ops) / len(ops))
    pulled = {o: d["detune"][o] - max(-budget, min(budget, d["detune"][o] - ref)) for o in ops}
    full = {o: d["detune"][o] for o in range(6)}
    if (any(pulled[o] != full[o] for o in ops)
            and _mismatch(d, pairs, {**full, **pulled}) < _mismatch(d, pairs, full) - 1e-9):
        moved = _put_detunes(e, ops, full, pulled)
        e.notes.append(f"pulled the detune towards {ref} ({'; '.join(moved)}; the beating partials were up to "
                       f"{worst:.1f} cents apart)")
        return
    # Otherwise the partials are set apart by their ratios and fine settings (an interval the voice was
    # built with), not by detune: moving detune would only trade one mismatch for another.
    e.notes.append(f"nothing to change: the beating partials (up to {worst:.1f} cents apart) are set apart by "
                   f"their ratios and fine settings: pulling the detune values together does not bring them closer")


_RULES = {"brightness": _brightness, "attack": _attack, "decay": _decay, "release": _release, "sustain": _sustain,
          "metallic": _metallic, "vibrato": _vibrato, "detune": _detune, "level": _level}


def adjust(patch: Patch | Mapping[str, Any], quality: str, amount: int) -> EditResult:
    """Move ``patch`` by ``amount`` (-3..3, positive = more) of a quality; a deterministic, minimal change."""
    patch = _as_patch(patch)
    if not isinstance(quality, str) or quality not in _RULES:
        raise ValueError(f"quality: found {quality!r}, allowed one of {', '.join(QUALITIES)}")
    if isinstance(amount, bool) or not isinstance(amount, int) or not -MAX_AMOUNT <= amount <= MAX_AMOUNT:
        raise ValueError(f"amount: found {amount!r}, allowed integer {-MAX_AMOUNT}..{MAX_AMOUNT}")
    e = _Edit(patch)
    if amount == 0:
        return EditResult(patch=patch.model_copy(deep=True), changes=[], notes=["amount 0: no change"])
    if not e.v.carriers:  # every rule acts through what sounds; a silent patch has nothing to move
        e.notes.append("nothing to change: the patch is silent")
        return e.result()
    _RULES[quality](e, amount)
    return e.result()


# --- the tool's edit list -----------------------------------------------------------------------

_INDEX = re.compile(r"0|[1-9][0-9]*")
_PATH_ALLOWED = "a leaf JSON pointer of the patch, one index per axis, e.g. /eg_rate/3/0 or /lfo/speed"
_OP_ALLOWED = 'one of "set", "adjust"'
_QUALITY_ALLOWED = "one of " + ", ".join(f'"{q}"' for q in QUALITIES)
_AMOUNT_ALLOWED = f"integer {-MAX_AMOUNT}..{MAX_AMOUNT}"
_KEYS = {"set": ("op", "path", "value"), "adjust": ("op", "quality", "amount")}


def _path_problem(path: Any, ptr: str) -> Problem | None:
    if not isinstance(path, str):
        return Problem(ptr, _short(path), _PATH_ALLOWED, "the path must be a string")
    if path in LEAVES:
        return None
    toks = path.split("/")
    # Name the parameter's own shape when the key is right but the indices are not.
    for p in ALL_PARAMS:
        if path == p.path or path.startswith(p.path + "/"):
            idx = path[len(p.path):].split("/")[1:]
            axes = "".join(f"/<0..{n - 1}>" for n in p.shape)
            why = ("needs an index per axis" if len(idx) < len(p.shape) else "too many indices"
                   if len(idx) > len(p.shape) else "index out of range or not a plain number")
            if not all(_INDEX.fullmatch(t) for t in idx):
                why = "indices must be plain numbers"
            return Problem(ptr, _short(path), f"{p.path}{axes}", why)
    below = [p.path for p in ALL_PARAMS if p.path.startswith(path.rstrip("/") + "/")] if path.startswith("/") else []
    if below:
        return Problem(ptr, _short(path), "one of " + ", ".join(below), "not a single parameter")
    return Problem(ptr, _short(path), _PATH_ALLOWED,
                   "no such parameter" if len(toks) > 1 and toks[0] == "" else "a JSON pointer starts with /")


def _check_edits(patch: Patch, edits: Any) -> tuple[list[Problem], dict[int, Any]]:
    """Every problem of the edit list, and the validated value of each set edit (by position)."""
    problems: list[Problem] = []
    cleaned: dict[int, Any] = {}
    if not isinstance(edits, (list, tuple)):
        return [Problem("/edits", _short(edits), "an array of edits", "the edits must be an array")], cleaned
    if len(edits) > MAX_EDITS:
        return [Problem("/edits", f"{len(edits)} edits", f"at most {MAX_EDITS} edits", "too many edits")], cleaned
    base = patch.to_dict()
    for i, ed in enumerate(edits):
        at = f"/edits/{i}"
        if not isinstance(ed, Mapping):
            problems.append(Problem(at, _short(ed), 'an object {"op": "set" | "adjust", ...}',
                                    "an edit must be an object"))
            continue
        op = ed.get("op")
        if not isinstance(op, str) or op not in _KEYS:
            problems.append(Problem(f"{at}/op", "missing" if "op" not in ed else _short(op), _OP_ALLOWED,
                                    "missing op" if "op" not in ed else "unknown op"))
            continue
        for k in ed:
            if k not in _KEYS[op]:
                token = escape_pointer_token(k) if isinstance(k, str) else _short(k)
                problems.append(Problem(f"{at}/{token}", _short(ed[k]), "no such key; allowed keys: "
                                        + ", ".join(_KEYS[op]), f"unknown key for a {op} edit"))
        for k in _KEYS[op][1:]:
            if k not in ed:
                allowed = {"path": _PATH_ALLOWED, "value": "the parameter's allowed value",
                           "quality": _QUALITY_ALLOWED, "amount": _AMOUNT_ALLOWED}[k]
                problems.append(Problem(f"{at}/{k}", "missing", allowed, f"missing required key {k}"))
        if op == "set":
            if "path" not in ed:
                continue
            bad = _path_problem(ed["path"], f"{at}/path")
            if bad:
                problems.append(bad)
                continue
            if "value" not in ed:
                continue
            p, idx = LEAVES[ed["path"]]
            if ed["value"] is None:  # null would mean "absent" to the patch validator; here it is no value
                problems.append(Problem(f"{at}/value", "null", p.allowed, "a value is required"))
                continue
            # The value goes through the patch validator itself, so the messages are the very same.
            trial = _deep(base)
            _set(trial, p, idx, ed["value"])
            rep = validate(trial)
            bad = [prob for prob in rep.problems if prob.pointer == ed["path"]]
            problems.extend(Problem(f"{at}/value", b.found, b.allowed, b.message) for b in bad)
            if not bad and rep.patch is not None:
                cleaned[i] = _get(rep.patch.model_dump(), p, idx)
        else:
            q, amt = ed.get("quality"), ed.get("amount")
            if "quality" in ed and (not isinstance(q, str) or q not in QUALITIES):
                problems.append(Problem(f"{at}/quality", _short(q), _QUALITY_ALLOWED, "unknown quality"))
            if "amount" in ed and (isinstance(amt, bool) or not isinstance(amt, int)
                                   or not -MAX_AMOUNT <= amt <= MAX_AMOUNT):
                why = ("a boolean is not an integer here" if isinstance(amt, bool) else "out of range"
                       if isinstance(amt, int) else f"expected an integer, not {_short(amt)}")
                problems.append(Problem(f"{at}/amount", _short(amt), _AMOUNT_ALLOWED, why))
    return problems, cleaned


def _deep(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _deep(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_deep(v) for v in x]
    return x


def _as_patch(patch: Patch | Mapping[str, Any]) -> Patch:
    if isinstance(patch, Patch):
        return patch
    if isinstance(patch, Mapping):
        return parse_patch(patch)  # PatchValidationError names every problem
    raise TypeError(f"patch: expected a Patch or a patch dict, got {type(patch).__name__}")


def apply_edits(patch: Patch | Mapping[str, Any], edits: list[dict[str, Any]]) -> EditResult:
    """Apply ``set``/``adjust`` edits in order, all or nothing; ``EditError`` names every bad edit."""
    patch = _as_patch(patch)
    problems, cleaned = _check_edits(patch, edits)
    if problems:
        raise EditError(problems)
    current = patch
    notes: list[str] = []
    for i, ed in enumerate(edits):
        if ed["op"] == "set":
            p, idx = LEAVES[ed["path"]]
            d = current.model_dump()
            if _get(d, p, idx) != cleaned[i]:
                _set(d, p, idx, cleaned[i])
                current = Patch.model_validate(d)
            continue
        res = adjust(current, ed["quality"], ed["amount"])
        notes.extend(f"edit {i} ({ed['quality']} {ed['amount']:+d}): {n}" for n in res.notes)
        if res.changes:
            current = res.patch
    changes = diff_patches(patch, current)
    return EditResult(patch=current if changes else patch.model_copy(deep=True), changes=changes, notes=notes)
