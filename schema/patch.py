"""The patch model: the 128-number core plus the optional full-voice keys, OP1-first everywhere.

A ``Patch`` is the contract between folders. Build one from untrusted data with
``patchsmith.schema.validate.parse_patch`` (which reports every problem with its JSON pointer);
constructing ``Patch(**data)`` directly also type-checks but with pydantic's messages.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StringConstraints

from .params import NAME_MAX_LEN

Bit = Annotated[int, Field(ge=0, le=1)]
Level = Annotated[int, Field(ge=0, le=99)]
Curve = Literal["-lin", "-exp", "+exp", "+lin"]
Wave = Literal["triangle", "saw_down", "saw_up", "square", "sine", "sample_hold"]


def _six(t: Any) -> Any:
    return Annotated[list[t], Field(min_length=6, max_length=6)]


def _four(t: Any) -> Any:
    return Annotated[list[t], Field(min_length=4, max_length=4)]


class Lfo(BaseModel):
    """The voice's LFO (shared by all operators)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    speed: Level = 35
    delay: Level = 0
    pmd: Level = 0
    amd: Level = 0
    sync: bool = True
    wave: Wave = "triangle"


class Patch(BaseModel):
    """One DX7 voice: core (``patch-schema.md`` §1) and full-voice keys with neutral defaults (§3)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    modmatrix: Annotated[list[_six(Bit)], Field(min_length=6, max_length=6)]
    outmatrix: _six(Bit)
    feedback: Annotated[int, Field(ge=0, le=7)]
    fixed_freq: _six(Bit)
    coarse: _six(Annotated[int, Field(ge=0, le=31)])
    fine: _six(Level)
    detune: _six(Annotated[int, Field(ge=-7, le=7)])
    transpose: Annotated[int, Field(ge=-24, le=24)]
    ol: _six(Level)
    eg_rate: _four(_six(Level))
    eg_level: _four(_six(Level))
    sensitivity: _six(Annotated[int, Field(ge=0, le=7)])

    name: Annotated[str, StringConstraints(max_length=NAME_MAX_LEN, pattern=r"^[\x20-\x7e]*$")] | None = None

    lfo: Lfo = Field(default_factory=Lfo)
    pms: Annotated[int, Field(ge=0, le=7)] = 0
    pitch_eg_rate: _four(Level) = Field(default_factory=lambda: [99, 99, 99, 99])
    pitch_eg_level: _four(Level) = Field(default_factory=lambda: [50, 50, 50, 50])
    osc_sync: bool = True
    ams: _six(Annotated[int, Field(ge=0, le=3)]) = Field(default_factory=lambda: [0] * 6)
    rate_scaling: _six(Annotated[int, Field(ge=0, le=7)]) = Field(default_factory=lambda: [0] * 6)
    kls_breakpoint: _six(Level) = Field(default_factory=lambda: [39] * 6)
    kls_left_depth: _six(Level) = Field(default_factory=lambda: [0] * 6)
    kls_right_depth: _six(Level) = Field(default_factory=lambda: [0] * 6)
    kls_left_curve: _six(Curve) = Field(default_factory=lambda: ["-lin"] * 6)
    kls_right_curve: _six(Curve) = Field(default_factory=lambda: ["-lin"] * 6)

    # Set by the sysex reader when it had to repair a voice (out-of-range values, junk bits): the
    # VCED parameters the patch was decoded from and the original bytes, so that writing the voice
    # back unedited gives the file's bytes again. Never serialised; an edit makes it not apply.
    _sysex_origin: tuple[tuple[int, ...], bytes | None, tuple[int, ...]] | None = PrivateAttr(default=None)

    def core(self) -> dict[str, Any]:
        """The 12-key, 128-number core as a plain dict (OP1-first)."""
        from .params import CORE_KEYS

        d = self.model_dump()
        return {k: d[k] for k in CORE_KEYS}

    def to_dict(self, full: bool = True) -> dict[str, Any]:
        """Plain dict in canonical key order; ``full=False`` drops keys equal to their neutral default."""
        from .params import TOP_LEVEL_KEYS

        d = self.model_dump()
        out: dict[str, Any] = {}
        defaults = Patch.neutral_voice_defaults()
        for k in TOP_LEVEL_KEYS:
            if k == "name" and d.get("name") is None:
                continue
            if not full and k in defaults and d[k] == defaults[k]:
                continue
            out[k] = d[k]
        return out

    @staticmethod
    def neutral_voice_defaults() -> dict[str, Any]:
        """The neutral default of every full-voice key (a core-only patch renders with these)."""
        from .params import VOICE_KEYS

        core_stub = {k: 0 for k in ("feedback", "transpose")}
        core_stub |= {k: [0] * 6 for k in ("outmatrix", "fixed_freq", "coarse", "fine", "detune", "ol", "sensitivity")}
        core_stub |= {"modmatrix": [[0] * 6 for _ in range(6)], "eg_rate": [[0] * 6 for _ in range(4)], "eg_level": [[0] * 6 for _ in range(4)]}
        d = Patch(**core_stub).model_dump()
        return {k: d[k] for k in VOICE_KEYS}
