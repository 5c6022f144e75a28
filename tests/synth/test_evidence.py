"""Operator evidence: the OFF/ON rules, the clip and its segment map, and exactness of every segment."""

from __future__ import annotations

import random

import numpy as np
import pytest

from patchsmith.schema.algorithms import algorithm
from patchsmith.synth.evidence import (ablate, default_operators, downstream, isolate, render_evidence, render_variant,
                                       role_of)
from patchsmith.synth.render import render
from patchsmith.synth.sysex import init_voice

from .test_engine import random_voice


def epiano_like():
    """Algorithm 5: three 2-operator stacks (2->1, 4->3, 6->5), OP6 feeding back on itself."""
    p = init_voice()
    a = algorithm(5)
    p.modmatrix = [list(r) for r in a.modmatrix]
    p.outmatrix = list(a.outmatrix)
    p.feedback = 6
    p.ol = [99, 80, 95, 70, 90, 75]
    p.coarse = [1, 14, 1, 1, 1, 3]
    return p


def test_ablation_removes_output_modulation_and_feedback_without_rewiring():
    p = epiano_like()
    off = ablate(p, 5)  # OP6: modulates OP5 and itself
    assert [row[5] for row in off.modmatrix] == [0] * 6
    assert off.ol[5] == 0 and off.sensitivity[5] == 0 and off.outmatrix[5] == 0
    assert sum(map(sum, off.modmatrix)) == sum(map(sum, p.modmatrix)) - 2  # nothing new connected
    off1 = ablate(p, 0)  # a carrier: leaves the mix, its modulator stays wired to it
    assert off1.outmatrix[0] == 0 and off1.modmatrix[0][1] == 1


def test_isolation_keeps_the_downstream_closure_and_skips_when_no_carrier_remains():
    p = epiano_like()
    assert downstream(p, 1) == {1, 0}
    on = isolate(p, 1)  # OP2 -> OP1
    assert on.outmatrix == [1, 0, 0, 0, 0, 0]
    assert on.ol[2:] == [0, 0, 0, 0] and on.modmatrix[0][1] == 1
    assert sum(map(sum, on.modmatrix)) == 1
    q = epiano_like()
    q.modmatrix[4][5] = 0  # OP6 now modulates only itself: it reaches no carrier
    assert isolate(q, 5) is None
    assert role_of(q, 5) is None and 6 not in default_operators(q)


def test_clip_is_full_then_one_segment_per_operator_with_a_map():
    p = epiano_like()
    clip = render_evidence(p, mode="off", segment_s=1.0, hold_s=0.7)
    assert [s.label for s in clip.segments] == ["FULL"] + [f"OP{k}_OFF" for k in range(1, 7)]
    assert len(clip.audio) == 7 * 48000
    for i, s in enumerate(clip.segments):
        assert (s.start_s, s.end_s) == (float(i), float(i + 1))
    seg = {s.label: s for s in clip.segments}
    assert seg["OP2_OFF"].role == "modulator" and seg["OP2_OFF"].modulates == [1]
    assert seg["OP6_OFF"].modulates == [5, 6]  # feedback shows as modulating itself
    assert seg["OP1_OFF"].role == "carrier"
    np.testing.assert_array_equal(clip.segment_audio("FULL"), render(p, hold_s=0.7, release_s=0.3))


def test_shuffle_is_a_seeded_permutation_after_full():
    p = epiano_like()
    a = render_evidence(p, mode="on", segment_s=0.5, hold_s=0.3, shuffle=True, seed=4)
    b = render_evidence(p, mode="on", segment_s=0.5, hold_s=0.3, shuffle=True, seed=4)
    c = render_evidence(p, mode="on", segment_s=0.5, hold_s=0.3, shuffle=False)
    assert [s.label for s in a.segments] == [s.label for s in b.segments]
    assert a.segments[0].label == "FULL"
    assert sorted(s.label for s in a.segments) == sorted(s.label for s in c.segments)
    assert a.audio.tobytes() == b.audio.tobytes()
    for s in a.segments:
        np.testing.assert_array_equal(a.segment_audio(s.label), c.segment_audio(s.label))


def test_skipped_segments_are_reported_and_take_no_time():
    p = epiano_like()
    p.outmatrix[4] = 0  # OP5 (modulated by OP6) no longer reaches the output
    clip = render_evidence(p, mode="on", operators=[5, 6, 1], segment_s=0.5, hold_s=0.3)
    seg = {s.label: s for s in clip.segments}
    assert seg["OP5_ON"].skipped and seg["OP6_ON"].skipped and "no carrier" in seg["OP6_ON"].reason
    assert seg["OP5_ON"].start_s is None
    assert not seg["OP1_ON"].skipped and seg["OP1_ON"].start_s == 0.5
    assert len(clip.audio) == 2 * 24000


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("mode", ["off", "on"])
def test_every_segment_equals_a_direct_render_of_its_variant(seed, mode):
    # The renderer copies unaffected operators from FULL's capture; that must be exact.
    rng = random.Random(seed)
    p = random_voice(rng, alg=[4, 6, 5, 1, 16, 32, 18, 22, 10, 2][seed])
    if seed >= 7:  # custom topologies, with upward feedback loops
        p.modmatrix = [[int(rng.random() < 0.3) for _ in range(6)] for _ in range(6)]
        p.outmatrix[0] = 1
        p.feedback = 5
    clip = render_evidence(p, mode=mode, operators=list(range(1, 7)), segment_s=0.6, hold_s=0.4, workers=2)
    make = ablate if mode == "off" else isolate
    alg32 = algorithm(32)
    for s in clip.segments[1:]:
        variant = make(p, s.operator - 1)
        alone = render_variant(p, mode, s.operator, hold_s=0.4, release_s=0.2)
        assert s.skipped == (variant is None) == (alone is None)
        if variant is not None:
            np.testing.assert_array_equal(clip.segment_audio(s.label), alone, err_msg=s.label)
            if (tuple(map(tuple, p.modmatrix)), tuple(p.outmatrix)) != (alg32.modmatrix, alg32.outmatrix):
                # Only algorithm 32's feedback scaling depends on the topology, so elsewhere a
                # variant is just the edited patch rendered as usual.
                np.testing.assert_array_equal(alone, render(variant, hold_s=0.4, release_s=0.2), err_msg=s.label)


@pytest.mark.parametrize("kwargs, needle", [
    ({"mode": "both"}, 'allowed "off" or "on"'),
    ({"operators": [0]}, "operators/0: found 0, allowed integer 1..6"),
    ({"operators": [2, 2]}, "listed twice"),
    ({"operators": []}, "non-empty list"),
    ({"segment_s": 100}, "segment_s: found 100"),
    ({"note": 200}, "note: found 200"),
])
def test_bad_evidence_requests_say_what_is_allowed(kwargs, needle):
    with pytest.raises(ValueError) as e:
        render_evidence(epiano_like(), **kwargs)
    assert needle in str(e.value)
