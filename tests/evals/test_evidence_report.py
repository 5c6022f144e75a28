"""Evidence with ears: each segment's descriptor change against FULL points the right way."""

from __future__ import annotations

from patchsmith.evals.evidence import evidence_report, render_evidence_report
from patchsmith.synth.evidence import render_evidence

from ..synth.test_evidence import epiano_like


def test_muting_a_bright_modulator_reads_darker_and_muting_a_carrier_reads_quieter():
    p = epiano_like()
    p.ol[1] = 92  # OP2 (ratio 14) modulates OP1 hard: a bright tine
    report, audio = render_evidence_report(p, mode="off", segment_s=1.5, hold_s=1.0)
    seg = {s.label: s for s in report.segments}
    assert seg["FULL"].descriptors is not None and seg["FULL"].change is None
    assert seg["OP2_OFF"].change.centroid_hz < -200
    assert seg["OP1_OFF"].change.level_db < -1.0
    assert len(audio) == 7 * 72000 and report.duration_s == 10.5
    text = report.text()
    assert "OP2_OFF (modulator of OP1)" in text and "darker" in text
    assert len(text.splitlines()) == 1 + len(report.segments)


def test_skipped_and_silent_segments_are_said_so():
    p = epiano_like()
    p.outmatrix[4] = 0
    clip = render_evidence(p, mode="on", operators=[6, 1], segment_s=0.5, hold_s=0.3)
    report = evidence_report(clip)
    seg = {s.label: s for s in report.segments}
    assert seg["OP6_ON"].skipped and seg["OP6_ON"].descriptors is None
    assert "skipped" in report.text()
    assert report.model_dump()["segments"][0]["label"] == "FULL"


def test_transposed_patches_are_measured_against_the_sounding_note():
    p = epiano_like()
    p.transpose = -12
    report, _ = render_evidence_report(p, mode="off", operators=[1], segment_s=1.0, hold_s=0.6)
    full = report.segments[0].descriptors
    assert abs(full.pitch_cents) < 50  # measured against note 48, not 60 (which would read -1200)
