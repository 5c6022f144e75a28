"""One judge of an edit's direction for the designer, eval-refine and the benchmarks."""

from __future__ import annotations

import math

from patchsmith.agent import modifiers
from patchsmith.evals import refine_eval
from patchsmith.evals.edit_direction import AUDIBLE, QUALITIES, direction, measure
from patchsmith.schema.audio import AudioDescriptors
from patchsmith.synth import edits


def descriptors(**values):
    base = dict(duration_s=1.0, peak_dbfs=-6.0, rms_dbfs=-12.0, attack_ms=10.0, decay20_ms=300.0, decay60_ms=None,
                sustain_db=-10.0, release_ms=200.0, centroid_hz=1000.0, brightness=0.3, inharmonicity=0.0,
                pitch_cents=0.0, pitch_stability_cents=0.0, beating=0.0, silent=False, clipping=False)
    return AudioDescriptors(**{**base, **values})


def test_direction_counts_only_audible_changes():
    before = descriptors()
    assert direction("brightness", before, descriptors(centroid_hz=1100.0)) == 1
    assert direction("brightness", before, descriptors(centroid_hz=1010.0)) == 0  # 1 % is below the 2 % share
    assert direction("attack", before, descriptors(attack_ms=5.0)) == -1
    assert direction("decay", before, descriptors(decay20_ms=None)) == 1  # never decaying is the longest decay
    assert direction("level", before, descriptors(rms_dbfs=-12.3)) == 0


def test_every_edit_quality_has_one_descriptor_and_one_judge():
    assert set(QUALITIES) == set(edits.QUALITIES)
    assert all(step.descriptor in AudioDescriptors.model_fields for step in AUDIBLE.values())
    assert modifiers.direction is direction and refine_eval.direction is direction
    assert modifiers.measure is measure and refine_eval.AUDIBLE is AUDIBLE


def test_a_change_of_exactly_the_audible_step_counts_and_a_smaller_one_does_not():
    assert direction("attack", descriptors(attack_ms=20.0), descriptors(attack_ms=22.0)) == 1  # 10 % of 20 ms
    assert direction("attack", descriptors(attack_ms=20.0), descriptors(attack_ms=21.9)) == 0
    assert direction("attack", descriptors(attack_ms=2.0), descriptors(attack_ms=1.0)) == -1  # the 1 ms floor
    assert direction("sustain", descriptors(sustain_db=-10.0), descriptors(sustain_db=-10.4)) == 0
    assert direction("release", descriptors(sustain_db=None, release_ms=None), descriptors(release_ms=50.0)) == 1
    assert measure("release", descriptors(sustain_db=None, release_ms=None)) == 0.0
    assert measure("decay", descriptors(decay20_ms=None)) == math.inf
