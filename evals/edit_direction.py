"""Which descriptor shows each edit quality, and which way (if audibly) it moved between two renders.

One definition for every judge of an edit: the designer's refinement checks (``agent.modifiers``,
``agent.designer``), ``eval-refine`` (``evals.refine_eval``) and the refinement benchmark. A quality
(one of ``synth.edits.QUALITIES``) is read from one field of ``schema.audio.AudioDescriptors``; a change
counts when it is at least the larger of a share of the old value and an absolute floor.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from ..schema.audio import AudioDescriptors


class AudibleStep(NamedTuple):
    """The descriptor that shows a quality and the smallest change of it that counts as audible."""

    descriptor: str  # the AudioDescriptors field
    share: float  # of the old value
    floor: float  # in the descriptor's own unit


AUDIBLE: dict[str, AudibleStep] = {
    "brightness": AudibleStep("centroid_hz", 0.02, 0.0), "attack": AudibleStep("attack_ms", 0.10, 1.0),
    "decay": AudibleStep("decay20_ms", 0.10, 0.0), "release": AudibleStep("release_ms", 0.10, 0.0),
    "sustain": AudibleStep("sustain_db", 0.0, 0.5), "metallic": AudibleStep("inharmonicity", 0.0, 0.01),
    "vibrato": AudibleStep("pitch_stability_cents", 0.0, 1.0), "detune": AudibleStep("beating", 0.0, 0.01),
    "level": AudibleStep("rms_dbfs", 0.0, 0.5),
}
QUALITIES: tuple[str, ...] = tuple(AUDIBLE)  # the same names as synth.edits.QUALITIES (tests check they agree)


def measure(quality: str, d: AudioDescriptors) -> float:
    """The descriptor that shows a quality, as a number; "never reached" is placed where it belongs."""
    v = getattr(d, AUDIBLE[quality].descriptor)
    if v is not None:
        return float(v)
    if quality == "decay":
        return math.inf  # never falls 20 dB while held: the longest decay there is
    if quality == "release":
        return math.inf if d.sustain_db is not None else 0.0  # outlasts the clip, or nothing left to release
    if quality == "sustain":
        return -math.inf  # died out before note-off
    return 0.0  # no pitch spread, beating or inharmonicity found: none


def direction(quality: str, before: AudioDescriptors, after: AudioDescriptors) -> int:
    """+1 / -1 when a quality changed audibly up / down between two renders, 0 when it did not."""
    _, share, floor = AUDIBLE[quality]
    a, b = measure(quality, before), measure(quality, after)
    if a == b:
        return 0
    if math.isinf(a) or math.isinf(b):
        return 1 if b > a else -1  # a change from or to "never reached" is always audible
    if abs(b - a) < max(floor, share * abs(a)):
        return 0
    return 1 if b > a else -1


__all__ = ["AUDIBLE", "QUALITIES", "AudibleStep", "direction", "measure"]
