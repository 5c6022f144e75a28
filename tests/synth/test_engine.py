"""The engine: determinism, dexed-py agreement on project-made voices, any topology, sample rates,
per-operator outputs, batch and polyphonic rendering, request validation, the kernel cache."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from patchsmith.evals.distances import log_mel_distance_db, rms_cosine
from patchsmith.schema.algorithms import ALGORITHMS
from patchsmith.schema.patch import Patch
from patchsmith.synth.render import RenderError, render, render_all_ops, render_batch, render_events
from patchsmith.synth.sysex import init_voice

from .dexed_oracle import dexed_render, dexed_render_all_ops


def random_voice(rng: random.Random, alg: int | None = None) -> Patch:
    """A random but musical-range DX7 voice (every full-voice key varied too)."""
    a = ALGORITHMS[(alg or rng.randint(1, 32)) - 1]
    six = lambda lo, hi: [rng.randint(lo, hi) for _ in range(6)]  # noqa: E731
    curves = ["-lin", "-exp", "+exp", "+lin"]
    return Patch(
        modmatrix=[list(r) for r in a.modmatrix], outmatrix=list(a.outmatrix), feedback=rng.randint(0, 7),
        fixed_freq=[1 if rng.random() < 0.1 else 0 for _ in range(6)], coarse=six(0, 8), fine=six(0, 99),
        detune=six(-7, 7), transpose=rng.randint(-12, 12), ol=six(40, 99),
        eg_rate=[six(20, 99) for _ in range(4)], eg_level=[six(0, 99) for _ in range(3)] + [six(0, 10)],
        sensitivity=six(0, 7), name="RANDOM",
        lfo={"speed": rng.randint(0, 99), "delay": rng.randint(0, 99), "pmd": rng.randint(0, 99),
             "amd": rng.randint(0, 99), "sync": rng.random() < 0.5,
             "wave": rng.choice(["triangle", "saw_down", "saw_up", "square", "sine", "sample_hold"])},
        pms=rng.randint(0, 7), pitch_eg_rate=[rng.randint(50, 99) for _ in range(4)],
        pitch_eg_level=[rng.randint(40, 60) for _ in range(4)], osc_sync=rng.random() < 0.8, ams=six(0, 3),
        rate_scaling=six(0, 7), kls_breakpoint=six(0, 99), kls_left_depth=six(0, 99), kls_right_depth=six(0, 99),
        kls_left_curve=[rng.choice(curves) for _ in range(6)], kls_right_curve=[rng.choice(curves) for _ in range(6)],
    )


def sine_voice() -> Patch:
    """OP1 alone at full level, everything neutral: a sine at the played note."""
    p = init_voice()
    p.eg_rate = [[99] * 6 for _ in range(4)]
    p.eg_level = [[99] * 6, [99] * 6, [99] * 6, [0] * 6]
    return p


def test_same_input_same_bytes_in_process_and_in_a_new_process():
    p = random_voice(random.Random(1))
    a = render(p, hold_s=0.5, release_s=0.3)
    b = render(p, hold_s=0.5, release_s=0.3)
    assert a.tobytes() == b.tobytes()
    code = textwrap.dedent(f"""
        import hashlib, json
        from patchsmith.synth.render import render
        p = json.loads({json.dumps(p.model_dump())!r})
        print(hashlib.sha256(render(p, hold_s=0.5, release_s=0.3).tobytes()).hexdigest())
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == hashlib.sha256(a.tobytes()).hexdigest()


@pytest.mark.parametrize("alg", range(1, 33))
def test_every_algorithm_is_bit_identical_to_dexed_on_a_simple_voice(alg):
    # Project-made voices (no third-party data): LFO off, so every path but the LFO is pinned down.
    rng = random.Random(alg)
    note, velocity = rng.randint(40, 80), rng.randint(30, 127)
    p = random_voice(rng, alg)
    p.lfo.pmd = 0
    p.lfo.amd = 0
    ours = render(p, note=note, velocity=velocity, hold_s=0.6, release_s=0.4)
    ref = dexed_render(p, note=note, velocity=velocity, hold_s=0.6, release_s=0.4)
    assert ours.shape == ref.shape
    np.testing.assert_array_equal(ours, ref)


@pytest.mark.parametrize("seed", range(12))
def test_random_full_voices_with_lfo_match_dexed_closely(seed):
    p = random_voice(random.Random(100 + seed))
    ours = render(p, note=60, velocity=100, hold_s=1.0, release_s=0.5)
    ref = dexed_render(p, note=60, velocity=100, hold_s=1.0, release_s=0.5)
    assert log_mel_distance_db(ref, ours, 48000) <= 1.0
    assert rms_cosine(ref, ours) >= 0.995


def test_per_operator_outputs_match_dexed_and_carriers_sum_to_the_mix():
    p = random_voice(random.Random(7), alg=5)
    p.lfo.pmd = p.lfo.amd = 0
    ours = render_all_ops(p, hold_s=0.5, release_s=0.2)
    ref = dexed_render_all_ops(p, hold_s=0.5, release_s=0.2)
    assert ours.shape == (7, 33600)
    np.testing.assert_array_equal(ours, ref)
    carriers = [i for i in range(6) if p.outmatrix[i]]
    np.testing.assert_allclose(ours[carriers].sum(axis=0), ours[6], atol=1e-6)
    np.testing.assert_array_equal(ours[6], render(p, hold_s=0.5, release_s=0.2))


@pytest.mark.parametrize("sr", [16000, 22050, 32000, 44100, 48000, 96000])
def test_sample_rates_give_the_right_pitch_level_and_envelope_time(sr):
    p = sine_voice()
    p.eg_rate[1][0] = 50  # a decay of about 1.4 s from L1 to L2
    p.eg_level[1][0] = 0
    x = render(p, note=69, hold_s=1.0, release_s=0.0, sample_rate=sr)
    head = x[: sr // 20]
    crossings = np.count_nonzero((head[:-1] < 0) & (head[1:] >= 0))
    assert abs(crossings - 22) <= 1  # 440 Hz over 50 ms
    assert 0.95 < np.abs(head).max() < 1.01  # one full-scale carrier peaks at 1.0
    hop = sr // 100
    env = np.abs(x[: len(x) // hop * hop]).reshape(-1, hop).max(axis=1)  # 10 ms peak envelope
    half = np.argmax(env < 0.5) / 100.0
    assert 0.08 < half < 0.12  # -6 dB after about 0.1 s at 64.8 dB/s, at every sample rate


def test_any_topology_renders_deterministically_including_upward_feedback():
    rng = random.Random(3)
    for _ in range(20):
        p = random_voice(rng)
        p.modmatrix = [[int(rng.random() < 0.3) for _ in range(6)] for _ in range(6)]
        p.outmatrix = [int(rng.random() < 0.5) for _ in range(6)]
        p.outmatrix[0] = 1
        p.feedback = rng.randint(1, 7)
        a = render(p, hold_s=0.3, release_s=0.1)
        assert np.isfinite(a).all() and a.dtype == np.float32
        assert a.tobytes() == render(p, hold_s=0.3, release_s=0.1).tobytes()


def test_upward_feedback_loop_changes_the_sound_and_feedback_zero_disables_it():
    p = init_voice()
    p.modmatrix = [[0, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0], [0] * 6, [0] * 6, [0] * 6, [0] * 6]
    p.ol = [99, 90, 0, 0, 0, 0]
    base = render(p, hold_s=0.3, release_s=0.0)
    p.modmatrix[1][0] = 1  # OP1 feeds back into OP2: a loop through a lower-numbered operator
    p.feedback = 7
    looped = render(p, hold_s=0.3, release_s=0.0)
    assert np.abs(looped - base).max() > 0.01
    p.feedback = 0
    np.testing.assert_array_equal(render(p, hold_s=0.3, release_s=0.0), base)


def test_batch_equals_one_by_one_in_order():
    rng = random.Random(5)
    voices = [random_voice(rng) for _ in range(6)]
    batch = render_batch(voices, hold_s=0.4, release_s=0.2, workers=2)
    for v, b in zip(voices, batch):
        np.testing.assert_array_equal(render(v, hold_s=0.4, release_s=0.2), b)


def test_events_single_note_equals_render_and_polyphony_steals_the_oldest():
    p = random_voice(random.Random(9))
    one, stolen = render_events(p, [(0.0, True, 60, 100), (0.5, False, 60, 0)], duration_s=0.8)
    assert stolen == 0
    np.testing.assert_array_equal(one, render(p, hold_s=0.5, release_s=0.3))
    chord = [(0.01 * i, True, 40 + i, 90) for i in range(20)]
    audio, stolen = render_events(p, chord, duration_s=0.6, voices=16)
    assert stolen == 4 and np.abs(audio).max() > 0


def test_silent_tail_is_skipped_without_changing_the_audio():
    p = sine_voice()
    p.eg_rate[3][0] = 99  # very fast release: the rest of the clip is silence
    x = render(p, hold_s=0.2, release_s=2.0)
    y = render_all_ops(p, hold_s=0.2, release_s=2.0)[6]  # capture mode renders every block
    np.testing.assert_array_equal(x, y)
    assert np.abs(x[int(0.3 * 48000):]).max() == 0.0


@pytest.mark.parametrize("kwargs, needle", [
    ({"note": 128}, "note: found 128, allowed integer 0..127"),
    ({"velocity": 0}, "velocity: found 0, allowed integer 1..127"),
    ({"sample_rate": 8000}, "sample_rate: found 8000, allowed integer 16000..96000"),
    ({"hold_s": float("nan")}, "hold_s"),
    ({"release_s": -1}, "release_s"),
    ({"hold_s": 1000}, "allowed a number of seconds"),
    ({"note": True}, "note"),
    ({"hold_s": 0, "release_s": 0}, "longer than 0"),
])
def test_bad_render_requests_say_what_is_allowed(kwargs, needle):
    with pytest.raises(RenderError) as e:
        render(init_voice(), **kwargs)
    assert needle in str(e.value)


def test_bad_patch_dict_reports_every_problem():
    d = init_voice().model_dump()
    d["ol"][2] = 120
    d["feedback"] = "x"
    with pytest.raises(ValueError) as e:
        render(d)
    assert "/ol/2" in str(e.value) and "/feedback" in str(e.value)


def test_a_new_process_loads_the_kernels_from_the_disk_cache():
    code = textwrap.dedent("""
        from patchsmith.synth.engine import render_note_kernel
        from patchsmith.synth.render import render
        from patchsmith.synth.sysex import init_voice
        render(init_voice(), hold_s=0.1, release_s=0.1)
        print(sum(render_note_kernel.stats.cache_hits.values()), sum(render_note_kernel.stats.cache_misses.values()))
    """)
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)  # fills the cache if empty
    hits, misses = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                  text=True).stdout.split()
    assert int(hits) >= 1 and int(misses) == 0
