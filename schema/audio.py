"""The audio descriptors of one rendered note: the numbers that stand in for ears.

``AudioDescriptors`` is the contract between folders: ``evals.descriptors.describe_audio`` fills it,
the MCP tools return it (its JSON Schema is their ``outputSchema`` part), the agent and the rewards
read it, the evidence renderer diffs it. Every field says its unit; ``None`` means "not defined for
this sound" (a time that is never reached within the clip, a pitch of a noise), never "zero".
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# Digital silence and the floor of every level: dB values are never -inf, so the JSON stays plain.
SILENCE_DBFS = -90.0
FLOOR_DB = -150.0


class AudioDescriptors(BaseModel):
    """Level, envelope, spectrum and pitch descriptors of one rendered note."""

    model_config = ConfigDict(extra="forbid")

    duration_s: float = Field(ge=0, description="Clip length in seconds.")
    peak_dbfs: float = Field(
        ge=FLOOR_DB,
        description="Largest absolute sample in dB relative to full scale (0 dBFS = 1.0 = one full-scale carrier); "
                    f"{FLOOR_DB:g} for digital silence; above 0 when several carriers sum past full scale.")
    rms_dbfs: float = Field(ge=FLOOR_DB, description=f"RMS level of the whole clip in dBFS ({FLOOR_DB:g} for digital silence).")
    attack_ms: float | None = Field(
        ge=0,
        description="Milliseconds from the first time the smoothed amplitude envelope reaches 10% of the onset's peak "
                    "to the first time it reaches 90% (the smoother's own rise removed, so an instant onset reads ~0). "
                    "The onset's peak is the envelope's first crest or shelf (where its rise stalls) at 60% or more "
                    "of its maximum: a voice that rises fast to a first crest and then swells or beats to a higher "
                    "one later has the attack of its first rise. None for silence.")
    decay20_ms: float | None = Field(
        ge=0,
        description="Milliseconds after the envelope peak until the envelope falls, and stays, 20 dB below the peak "
                    "(before note-off when note-off is known); None if that never happens in the clip (a sustained organ).")
    decay60_ms: float | None = Field(
        ge=0,
        description="As decay20_ms, for 60 dB below the peak; None if never reached (sustained, or cut off by note-off).")
    sustain_db: float | None = Field(
        le=0,
        description="Level held just before note-off (the last 100 ms) relative to the envelope peak, in dB (<= 0); "
                    "None when note-off is unknown or outside the clip, comes before the peak, or the sound had "
                    "already died out by then.")
    release_ms: float | None = Field(
        ge=0,
        description="Milliseconds after note-off until the envelope falls, and stays, 60 dB below its level at note-off "
                    "(or to the noise floor, if one shows); None when there is no sustain to release or the release "
                    "outlasts the clip.")
    centroid_hz: float | None = Field(
        ge=0,
        description="Spectral centroid in Hz: the power-weighted mean frequency of the spectrum summed over the audible "
                    "part (within 60 dB of the peak); None for silence.")
    brightness: float | None = Field(
        ge=0, le=1,
        description="Fraction (0..1) of the spectral power above 1500 Hz over the audible part; None for silence.")
    inharmonicity: float | None = Field(
        ge=0, le=1,
        description="Fraction (0..1) of the spectral power in peaks away (beyond 30 cents, at most 1/16 of f0) from the "
                    "harmonic series k*f0/2 of the played note (the half series counts because DX7 coarse 0 is "
                    "ratio 0.5), over the audible part. When the pitch moves (an LFO sweep or a pitch-envelope "
                    "glide, up to about an octave), the series is that of the moving fundamental: the note is also "
                    "read re-timed along its pitch track so that the fundamental holds still, and that reading "
                    "counts where it is at most 0.6 of the fixed one. ~0 for a harmonic tone, swept or not, 0.7-1 "
                    "for noise and bells; None for silence, or when no note was given and no pitch was found.")
    pitch_cents: float | None = Field(
        description="Measured fundamental relative to the played note in cents (median over the held part; +1200 is an "
                    "octave up); None when no note was given or the sound has no stable pitch.")
    pitch_stability_cents: float | None = Field(
        ge=0,
        description="Spread of the pitch track over the held part in cents (interquartile range / 1.349, a robust standard "
                    "deviation): 0 for a steady tone, about the depth of a sinusoidal vibrato; None when no pitch.")
    beating: float | None = Field(
        ge=0, le=1,
        description="Depth (0..1) of slow amplitude fluctuation (about 1-40 Hz) over the held part, as (max-min)/(max+min) "
                    "of the envelope's swing about its local straight-line (dB) trend within a window of a third of the "
                    "held part (at most 1 s), median over the held part: 0 for a steady tone or a decay of any speed, "
                    "near 1 for two equal detuned partials; from detuned operators or tremolo. None when the held part "
                    "is too short (< 0.2 s).")
    silent: bool = Field(description=f"True when the peak is below {SILENCE_DBFS:g} dBFS.")
    clipping: bool = Field(description="True when the peak exceeds full scale (1.0): the clip would clip at raw gain.")

    def to_dict(self) -> dict[str, Any]:
        """The descriptors as a plain JSON-ready dict (field order as declared)."""
        return self.model_dump()

    def summary(self) -> str:
        """One compact line for models and people, e.g. ``peak -1.2 dBFS, attack 12 ms, ...``."""
        if self.silent:
            return f"silent (peak {_f(self.peak_dbfs)} dBFS), {self.duration_s:g} s"
        parts = [f"peak {_f(self.peak_dbfs)} dBFS" + (" (clips)" if self.clipping else ""),
                 f"rms {_f(self.rms_dbfs)} dBFS",
                 f"attack {_ms(self.attack_ms)}",
                 f"decay to -20 dB {_ms(self.decay20_ms)}",
                 f"to -60 dB {_ms(self.decay60_ms)}"]
        if self.sustain_db is not None:
            parts.append(f"sustain {_f(self.sustain_db)} dB")
        if self.release_ms is not None:
            parts.append(f"release {_ms(self.release_ms)}")
        if self.centroid_hz is not None:
            parts.append(f"centroid {self.centroid_hz:.0f} Hz")
        if self.brightness is not None:
            parts.append(f"brightness {self.brightness:.2f}")
        if self.inharmonicity is not None:
            parts.append(f"inharmonicity {self.inharmonicity:.2f}")
        if self.pitch_cents is not None:
            parts.append(f"pitch {_f(self.pitch_cents, 0, '+')} c")
        if self.pitch_stability_cents is not None:
            parts.append(f"pitch spread {self.pitch_stability_cents:.0f} c")
        if self.beating is not None:
            parts.append(f"beating {self.beating:.2f}")
        return ", ".join(parts)


def _f(value: float, digits: int = 1, sign: str = "") -> str:
    # Round first and add 0.0, so that -0.04 prints as "0.0" rather than "-0.0".
    return f"{round(value, digits) + 0.0:{sign}.{digits}f}"


def _ms(value: float | None) -> str:
    # "never" rather than "None": the summary is read by models, and a missing time means "not reached".
    if value is None:
        return "never"
    if value >= 1000.0:
        return f"{value / 1000.0:.2f} s"
    return f"{value:.1f} ms" if value < 10.0 else f"{value:.0f} ms"
