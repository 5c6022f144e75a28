"""The shipped example patches: well-formed, captioned, DX7-exportable, and sounding like their captions."""

from __future__ import annotations

import re

import numpy as np
import pytest

from patchsmith.examples import ExampleError, format_example, load_example, load_examples, parse_example
from patchsmith.schema.algorithms import algorithm_of
from patchsmith.synth.render import render
from patchsmith.synth.sysex import dx7_algorithm
from tests.cli.cli_support import EXAMPLES

SR = 48000
REQUIRED = ("epiano", "brass", "bell", "bass", "organ", "pad")
ALL = load_examples(EXAMPLES)
BY_KEY = {ex.key: ex for ex in ALL}


def envelope_db(audio: np.ndarray, frame_s: float = 0.01) -> np.ndarray:
    """RMS level of each 10 ms frame, in dB re full scale."""
    n = int(SR * frame_s)
    frames = audio[: len(audio) // n * n].astype(np.float64).reshape(-1, n)
    return 20 * np.log10(np.maximum(np.sqrt(np.mean(frames ** 2, axis=1)), 1e-9))


def level(env: np.ndarray, start_s: float, stop_s: float) -> float:
    """Mean level (dB) between two times."""
    return float(np.mean(env[int(start_s * 100): int(stop_s * 100)]))


def sound(key: str) -> tuple[np.ndarray, np.ndarray]:
    ex = BY_KEY[key]
    audio = render(ex.patch, sample_rate=SR, **ex.render_settings())
    return audio, envelope_db(audio)


def attack_s(env: np.ndarray) -> float:
    """Time to come within 3 dB of the loudest frame."""
    return float(np.argmax(env >= env.max() - 3.0)) / 100


def high_share(audio: np.ndarray, start_s: float, f0: float) -> float:
    """Share of spectral energy above the 4th harmonic in a 100 ms window."""
    seg = audio[int(start_s * SR): int(start_s * SR) + SR // 10].astype(np.float64)
    power = np.abs(np.fft.rfft(seg * np.hanning(len(seg)))) ** 2
    freqs = np.fft.rfftfreq(len(seg), 1 / SR)
    return float(power[freqs > 4.5 * f0].sum() / power.sum())


def test_the_required_instruments_are_there():
    assert set(REQUIRED) <= set(BY_KEY)


@pytest.mark.parametrize("ex", ALL, ids=lambda ex: ex.key)
def test_each_example_is_canonical_captioned_and_exportable(ex):
    assert ex.path.read_text() == format_example(load_example(ex.path))
    assert len(ex.captions) >= 2 and len(set(ex.captions)) == len(ex.captions)
    for caption in ex.captions:  # the source research's style: "Instrument, which ... ."
        assert re.fullmatch(r"[A-Z][a-z -]+, which [^\n]+\.", caption), caption
    assert ex.patch.name and len(ex.patch.name) <= 10
    assert dx7_algorithm(ex.patch) >= 1  # every example exports to sysex


@pytest.mark.parametrize("ex", ALL, ids=lambda ex: ex.key)
def test_each_example_is_audible_and_not_absurdly_loud(ex):
    audio = render(ex.patch, sample_rate=SR, **ex.render_settings())
    peak_db = 20 * np.log10(np.max(np.abs(audio)))
    assert -8.0 <= peak_db <= 3.0
    assert np.isfinite(audio).all()


def test_electric_piano_has_a_fast_tine_and_a_long_decay():
    ex = BY_KEY["epiano"]
    assert algorithm_of(ex.patch.modmatrix, ex.patch.outmatrix) == 5
    tine = ex.patch.coarse.index(14)
    assert ex.patch.outmatrix[tine] == 0 and ex.patch.eg_level[1][tine] == 0  # a modulator that dies away
    audio, env = sound("epiano")
    assert attack_s(env) < 0.2
    assert env.max() - 30 < level(env, 2.5, 2.9) < env.max() - 6  # decays while held, still sounding
    assert high_share(audio, 0.0, 261.6) > 10 * high_share(audio, 1.5, 261.6)  # the tine's brightness goes first


def test_bell_is_inharmonic_with_a_long_ring():
    ex = BY_KEY["bell"]
    ratios = [c + f / 100 if c else 0.5 for c, f in zip(ex.patch.coarse, ex.patch.fine)]
    assert any(r != int(r) for r in ratios)  # non-integer ratios such as 3.5
    _, env = sound("bell")
    hold = ex.hold_s
    assert attack_s(env) < 0.05
    assert level(env, 3.0, 3.5) > env.max() - 25  # still ringing after three seconds
    assert level(env, hold + 1.0, hold + 1.5) > env.max() - 40  # and after the key is let go


def test_organ_sustains_fully_and_stops_quickly():
    ex = BY_KEY["organ"]
    assert algorithm_of(ex.patch.modmatrix, ex.patch.outmatrix) == 32
    _, env = sound("organ")
    hold = ex.hold_s
    assert attack_s(env) < 0.03
    assert abs(level(env, 1.0, 1.5) - level(env, hold - 0.5, hold - 0.1)) < 1.5
    assert level(env, hold + 0.3, hold + 0.5) < env.max() - 60


def test_brass_swells_and_sustains():
    ex = BY_KEY["brass"]
    assert algorithm_of(ex.patch.modmatrix, ex.patch.outmatrix) == 22
    carriers = [i for i in range(6) if ex.patch.outmatrix[i]]
    modulators = [i for i in range(6) if not ex.patch.outmatrix[i]]
    # The modulators open more slowly than the carriers: the brassy brightening swell.
    assert max(ex.patch.eg_rate[0][i] for i in modulators) < min(ex.patch.eg_rate[0][i] for i in carriers)
    audio, env = sound("brass")
    assert 0.02 <= attack_s(env) <= 0.3
    assert high_share(audio, 0.0, 261.6) < high_share(audio, 0.15, 261.6)
    assert level(env, ex.hold_s - 0.5, ex.hold_s - 0.1) > env.max() - 15


def test_bass_is_low_and_plucked():
    ex = BY_KEY["bass"]
    assert ex.note <= 48
    assert algorithm_of(ex.patch.modmatrix, ex.patch.outmatrix) in (16, 17, 18)
    f0 = 440 * 2 ** ((ex.note - 69) / 12)
    audio, env = sound("bass")
    assert attack_s(env) < 0.03
    assert high_share(audio, 0.0, f0) > 20 * high_share(audio, 1.0, f0)
    assert level(env, ex.hold_s + 0.3, ex.hold_s + 0.5) < env.max() - 40


def test_pad_has_a_slow_attack_and_a_long_release():
    ex = BY_KEY["pad"]
    _, env = sound("pad")
    assert attack_s(env) >= 0.5
    assert level(env, ex.hold_s + 1.0, ex.hold_s + 1.2) > env.max() - 25


def test_marimba_is_short():
    _, env = sound("marimba")
    assert attack_s(env) < 0.02 and level(env, 1.5, 1.8) < env.max() - 30


def test_a_broken_example_lists_every_problem(tmp_path):
    with pytest.raises(ExampleError) as err:
        parse_example({"name": "", "captions": "one", "render": {"note": 60, "pitch": 1}, "patch": {"feedback": 1},
                       "extra": 1})
    problems = err.value.problems
    assert problems[0] == "/extra: unknown key, allowed keys are name, captions, render, patch"
    assert "/name: found '', allowed a non-empty string" in problems
    assert "/render/pitch: unknown key, allowed keys are note, velocity, hold_s, release_s" in problems
    assert any(p.startswith("/patch/modmatrix: found missing") for p in problems)
    (tmp_path / "x.json").write_text("{")
    with pytest.raises(ExampleError, match="invalid JSON"):
        load_example(tmp_path / "x.json")


def test_the_default_folder_is_the_repositorys(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # found beside the package, not through the working directory
    assert [ex.key for ex in load_examples()] == [ex.key for ex in ALL]
