"""The parameter metadata table: the single source for validation, JSON Schema, docs and rewards.

Each leaf key of the patch (``patch-schema.md``) is described once here: its shape, kind, range,
a one-line description, its weight group and default weight, and (for the full-voice keys) its
neutral default. Everything else that needs to know about a parameter reads this table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["binary", "integer", "categorical", "boolean"]
Group = Literal["topology", "amplitude", "frequency", "global"]

LFO_WAVES: tuple[str, ...] = ("triangle", "saw_down", "saw_up", "square", "sine", "sample_hold")
KLS_CURVES: tuple[str, ...] = ("-lin", "-exp", "+exp", "+lin")


@dataclass(frozen=True)
class Param:
    """One leaf parameter of the patch: where it lives, what values it takes, what it means."""

    key: str
    shape: tuple[int, ...]  # () scalar, (6,) per operator, (4, 6) stage x operator, (6, 6) matrix
    kind: Kind
    description: str
    group: Group
    weight: float
    low: int | None = None
    high: int | None = None
    choices: tuple[str, ...] | None = None
    core: bool = True
    default: Any = None
    parent: str | None = None  # "lfo" for the LFO object's fields
    axes: tuple[str, ...] = field(default=())

    @property
    def path(self) -> str:
        """JSON pointer prefix of this parameter (``/lfo/speed`` or ``/eg_rate``)."""
        return f"/{self.parent}/{self.key}" if self.parent else f"/{self.key}"

    @property
    def allowed(self) -> str:
        """Human-readable allowed value, as used in validation messages."""
        if self.kind == "boolean":
            return "true or false"
        if self.kind == "categorical":
            return "one of " + ", ".join(f'"{c}"' for c in self.choices or ())
        if self.kind == "binary":
            return "integer 0 or 1"
        return f"integer {self.low}..{self.high}"

    @property
    def size(self) -> int:
        """How many numbers this parameter holds."""
        n = 1
        for s in self.shape:
            n *= s
        return n


_OPS = ("operator (index 0 = OP1)",)

CORE_PARAMS: tuple[Param, ...] = (
    Param("modmatrix", (6, 6), "binary", "modmatrix[i][j] = 1: OP(j+1) modulates OP(i+1); row = target, column = source; j <= i is a feedback edge", "topology", 4.0, 0, 1, axes=("target operator", "source operator")),
    Param("outmatrix", (6,), "binary", "1 = the operator is a carrier (sent to the output)", "topology", 4.0, 0, 1, axes=_OPS),
    Param("feedback", (), "integer", "strength of every feedback edge (0 disables feedback)", "topology", 3.0, 0, 7),
    Param("fixed_freq", (6,), "binary", "oscillator mode: 0 ratio to the played note, 1 fixed frequency in Hz", "topology", 3.0, 0, 1, axes=_OPS),
    Param("coarse", (6,), "integer", "ratio mode: 0 means x0.5, else x coarse; fixed mode: decade = coarse mod 4 (1, 10, 100, 1000 Hz)", "frequency", 1.5, 0, 31, axes=_OPS),
    Param("fine", (6,), "integer", "ratio mode: ratio x (1 + fine/100); fixed mode: 10^(coarse mod 4 + fine/100) Hz", "frequency", 1.0, 0, 99, axes=_OPS),
    Param("detune", (6,), "integer", "fine pitch offset, DX7 detune minus 7 (about 1 cent per step at middle C)", "frequency", 1.0, -7, 7, axes=_OPS),
    Param("transpose", (), "integer", "semitones added to every played note (DX7 transpose minus 24)", "global", 0.5, -24, 24),
    Param("ol", (6,), "integer", "operator output level (about 0.75 dB per step above 20; 99 = full)", "amplitude", 2.0, 0, 99, axes=_OPS),
    Param("eg_rate", (4, 6), "integer", "envelope rates: row k = rate R(k+1) (R1 attack, R2 decay 1, R3 decay 2, R4 release), column = operator; higher is faster", "amplitude", 2.0, 0, 99, axes=("stage", "operator (index 0 = OP1)")),
    Param("eg_level", (4, 6), "integer", "envelope levels: row k = level L(k+1) (L3 = sustain, L4 = rest level after release), column = operator", "amplitude", 2.0, 0, 99, axes=("stage", "operator (index 0 = OP1)")),
    Param("sensitivity", (6,), "integer", "key velocity sensitivity (0 = velocity ignored)", "global", 0.5, 0, 7, axes=_OPS),
)

VOICE_PARAMS: tuple[Param, ...] = (
    Param("speed", (), "integer", "LFO speed", "global", 0.5, 0, 99, core=False, default=35, parent="lfo"),
    Param("delay", (), "integer", "LFO delay before the modulation fades in", "global", 0.5, 0, 99, core=False, default=0, parent="lfo"),
    Param("pmd", (), "integer", "LFO pitch modulation depth", "global", 0.5, 0, 99, core=False, default=0, parent="lfo"),
    Param("amd", (), "integer", "LFO amplitude modulation depth", "global", 0.5, 0, 99, core=False, default=0, parent="lfo"),
    Param("sync", (), "boolean", "restart the LFO on each note-on", "global", 0.5, core=False, default=True, parent="lfo"),
    Param("wave", (), "categorical", "LFO waveform", "global", 0.5, choices=LFO_WAVES, core=False, default="triangle", parent="lfo"),
    Param("pms", (), "integer", "pitch modulation sensitivity to the LFO", "global", 0.5, 0, 7, core=False, default=0),
    Param("pitch_eg_rate", (4,), "integer", "pitch envelope rates R1..R4", "global", 0.5, 0, 99, core=False, default=(99, 99, 99, 99), axes=("stage",)),
    Param("pitch_eg_level", (4,), "integer", "pitch envelope levels L1..L4 (50 = no shift)", "global", 0.5, 0, 99, core=False, default=(50, 50, 50, 50), axes=("stage",)),
    Param("osc_sync", (), "boolean", "reset every oscillator's phase at note-on", "global", 0.5, core=False, default=True),
    Param("ams", (6,), "integer", "per-operator amplitude modulation sensitivity to the LFO", "global", 0.5, 0, 3, core=False, default=(0,) * 6, axes=_OPS),
    Param("rate_scaling", (6,), "integer", "keyboard rate scaling: higher notes run the envelope faster", "global", 0.5, 0, 7, core=False, default=(0,) * 6, axes=_OPS),
    Param("kls_breakpoint", (6,), "integer", "keyboard level scaling break point (0 = A-1, 39 = C3 = MIDI 60)", "global", 0.5, 0, 99, core=False, default=(39,) * 6, axes=_OPS),
    Param("kls_left_depth", (6,), "integer", "keyboard level scaling depth below the break point", "global", 0.5, 0, 99, core=False, default=(0,) * 6, axes=_OPS),
    Param("kls_right_depth", (6,), "integer", "keyboard level scaling depth above the break point", "global", 0.5, 0, 99, core=False, default=(0,) * 6, axes=_OPS),
    Param("kls_left_curve", (6,), "categorical", "keyboard level scaling curve below the break point", "global", 0.5, choices=KLS_CURVES, core=False, default=("-lin",) * 6, axes=_OPS),
    Param("kls_right_curve", (6,), "categorical", "keyboard level scaling curve above the break point", "global", 0.5, choices=KLS_CURVES, core=False, default=("-lin",) * 6, axes=_OPS),
)

ALL_PARAMS: tuple[Param, ...] = CORE_PARAMS + VOICE_PARAMS
CORE_KEYS: tuple[str, ...] = tuple(p.key for p in CORE_PARAMS)
# Canonical top-level key order: the core first, then name, then the full-voice keys.
VOICE_KEYS: tuple[str, ...] = ("lfo",) + tuple(p.key for p in VOICE_PARAMS if p.parent is None)
TOP_LEVEL_KEYS: tuple[str, ...] = CORE_KEYS + ("name",) + VOICE_KEYS
NAME_MAX_LEN = 10


def param_by_path(path: str) -> Param | None:
    """The parameter whose JSON pointer prefix is ``path`` (``/lfo/speed``, ``/ol``), if any."""
    for p in ALL_PARAMS:
        if p.path == path:
            return p
    return None


def core_size() -> int:
    """Number of numbers in the core (128)."""
    return sum(p.size for p in CORE_PARAMS)
