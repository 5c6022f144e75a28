"""Operator evidence with ears: every segment's descriptors and its change against FULL.

``synth.evidence`` renders the clip (FULL, then each operator muted or isolated); this adds what a
text-only model needs to read it: per segment the audio descriptors and the change in level,
brightness, attack, decay and inharmonicity against FULL, plus a short text summary
("OP2_OFF: level -0.4 dB, centroid -1830 Hz (darker), ...").
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..schema.audio import AudioDescriptors
from ..schema.patch import Patch
from ..synth.evidence import EvidenceClip, Mode, Segment, render_evidence
from .descriptors import describe_audio


class DescriptorChange(BaseModel):
    """A segment's descriptors minus FULL's (None where either side has no value)."""

    model_config = ConfigDict(extra="forbid")

    level_db: float | None = Field(None, description="RMS level change, dB")
    centroid_hz: float | None = Field(None, description="spectral centroid change, Hz (positive = brighter)")
    brightness: float | None = Field(None, description="change in the energy share above 1.5 kHz")
    attack_ms: float | None = Field(None, description="attack time change, ms")
    decay20_ms: float | None = Field(None, description="change in the time to fall 20 dB below the peak, ms")
    inharmonicity: float | None = Field(None, description="inharmonicity change (positive = more metallic)")


class EvidenceSegment(Segment):
    """A segment of the clip with its descriptors and its change against FULL."""

    descriptors: AudioDescriptors | None = None
    change: DescriptorChange | None = None


class EvidenceReport(BaseModel):
    """The segment map of an evidence clip, with ears."""

    model_config = ConfigDict(extra="forbid")

    mode: Mode
    sample_rate: int
    segment_s: float
    note: int
    velocity: int
    hold_s: float
    duration_s: float
    segments: list[EvidenceSegment]

    def text(self) -> str:
        """One line per segment, for people and text-only models."""
        lines = [f"Evidence ({'each operator muted' if self.mode == 'off' else 'each operator isolated'}), "
                 f"{self.segment_s:g} s segments, note {self.note}, velocity {self.velocity}:"]
        for s in self.segments:
            where = f"{s.start_s:g}-{s.end_s:g} s" if not s.skipped else "skipped"
            role = f" ({s.role}{' of ' + ', '.join(f'OP{t}' for t in s.modulates) if s.modulates else ''})" if s.role else ""
            if s.skipped:
                lines.append(f"{s.label}{role}: skipped, {s.reason}")
            elif s.label == "FULL" and s.descriptors is not None:
                lines.append(f"FULL [{where}]: {s.descriptors.summary()}")
            else:
                lines.append(f"{s.label}{role} [{where}]: {_change_text(s.change)}")
        return "\n".join(lines)


def _diff(a: float | None, b: float | None, digits: int) -> float | None:
    return None if a is None or b is None else round(a - b, digits)


def descriptor_change(segment: AudioDescriptors, full: AudioDescriptors) -> DescriptorChange:
    """How a segment's descriptors differ from FULL's."""
    return DescriptorChange(
        level_db=_diff(segment.rms_dbfs, full.rms_dbfs, 2),
        centroid_hz=_diff(segment.centroid_hz, full.centroid_hz, 0),
        brightness=_diff(segment.brightness, full.brightness, 3),
        attack_ms=_diff(segment.attack_ms, full.attack_ms, 1),
        decay20_ms=_diff(segment.decay20_ms, full.decay20_ms, 1),
        inharmonicity=_diff(segment.inharmonicity, full.inharmonicity, 3),
    )


def _change_text(c: DescriptorChange | None) -> str:
    if c is None:
        return "silent"
    parts = []
    if c.level_db is not None:
        parts.append(f"level {c.level_db:+.1f} dB")
    if c.centroid_hz is not None:
        word = "brighter" if c.centroid_hz > 50 else "darker" if c.centroid_hz < -50 else "same brightness"
        parts.append(f"centroid {c.centroid_hz:+.0f} Hz ({word})")
    if c.attack_ms is not None:
        parts.append(f"attack {c.attack_ms:+.0f} ms")
    if c.decay20_ms is not None:
        parts.append(f"decay to -20 dB {c.decay20_ms:+.0f} ms")
    if c.inharmonicity is not None:
        word = " (more metallic)" if c.inharmonicity > 0.05 else " (less metallic)" if c.inharmonicity < -0.05 else ""
        parts.append(f"inharmonicity {c.inharmonicity:+.2f}{word}")
    return ", ".join(parts) or "no measurable change"


def _audible_note(clip: EvidenceClip) -> int | None:
    # Harmonicity and pitch are measured against the note that sounds (key + transpose).
    return clip.sounding_note if 0 <= clip.sounding_note <= 127 else None


def evidence_report(clip: EvidenceClip) -> EvidenceReport:
    """Descriptors of every rendered segment of a clip and their change against FULL."""
    full = describe_audio(clip.variants["FULL"], clip.sample_rate, note=_audible_note(clip), note_off_s=clip.hold_s)
    segments = []
    for s in clip.segments:
        seg = EvidenceSegment(**s.model_dump())
        if not s.skipped:
            d = full if s.label == "FULL" else describe_audio(clip.variants[s.label], clip.sample_rate,
                                                               note=_audible_note(clip), note_off_s=clip.hold_s)
            seg.descriptors = d
            if s.label != "FULL":
                seg.change = None if d.silent else descriptor_change(d, full)
        segments.append(seg)
    return EvidenceReport(mode=clip.mode, sample_rate=clip.sample_rate, segment_s=clip.segment_s, note=clip.note,
                          velocity=clip.velocity, hold_s=clip.hold_s, duration_s=round(len(clip.audio) / clip.sample_rate, 4),
                          segments=segments)


def render_evidence_report(patch: Patch | dict[str, Any], **settings: Any) -> tuple[EvidenceReport, np.ndarray]:
    """Render an evidence clip (``synth.evidence.render_evidence`` settings) and describe it."""
    clip = render_evidence(patch, **settings)
    return evidence_report(clip), clip.audio
