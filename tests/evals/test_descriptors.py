"""Audio descriptors: each one on synthetic signals with a known answer, the contract model, input
checks, speed, and the order they put real DX7 renders in (project-made voices and the factory bank)."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
from pydantic import ValidationError

from patchsmith.evals.descriptors import basic_descriptors, describe_audio, note_hz, render_and_describe
from patchsmith.schema.audio import FLOOR_DB, AudioDescriptors
from patchsmith.synth.render import render
from patchsmith.synth.sysex import init_voice

from ..conftest import YAMAHA, need

SR = 48000
A4 = 69  # 440 Hz
LN10 = math.log(10.0)
TIMES = ("attack_ms", "decay20_ms", "decay60_ms", "sustain_db", "release_ms")


def t_axis(seconds: float, sr: int = SR) -> np.ndarray:
    return np.arange(int(round(seconds * sr))) / sr


def sine(freq: float, seconds: float = 1.5, amp: float = 0.5) -> np.ndarray:
    return amp * np.sin(2 * np.pi * freq * t_axis(seconds))


def partials(f0: float, ratios, amps=None, seconds: float = 1.5) -> np.ndarray:
    t = t_axis(seconds)
    amps = np.ones(len(ratios)) if amps is None else amps
    return sum(a * np.sin(2 * np.pi * f0 * r * t + 0.7 * i) for i, (r, a) in enumerate(zip(ratios, amps)))


# --- a pure sine ---------------------------------------------------------------------------------


def test_pure_sine():
    d = describe_audio(sine(440.0, amp=0.5), SR, note=A4)
    assert d.peak_dbfs == pytest.approx(20 * math.log10(0.5), abs=0.01)
    assert d.rms_dbfs == pytest.approx(20 * math.log10(0.5 / math.sqrt(2)), abs=0.02)
    assert d.duration_s == 1.5 and not d.silent and not d.clipping
    assert d.attack_ms < 2.0
    assert d.decay20_ms is None and d.decay60_ms is None  # a steady tone never decays
    assert d.sustain_db is None and d.release_ms is None  # no note-off given
    assert d.centroid_hz == pytest.approx(440.0, abs=2.0)
    assert d.brightness < 0.001
    assert d.inharmonicity < 0.01
    assert d.pitch_cents == pytest.approx(0.0, abs=1.0)
    assert d.pitch_stability_cents < 1.0
    assert d.beating < 0.02


@pytest.mark.parametrize("freq, bright", [(220.0, 0.0), (1000.0, 0.0), (2500.0, 1.0), (6000.0, 1.0)])
def test_sine_centroid_and_brightness(freq, bright):
    d = describe_audio(sine(freq, seconds=0.5), SR)
    assert d.centroid_hz == pytest.approx(freq, rel=0.01)
    assert d.brightness == pytest.approx(bright, abs=0.002)


@pytest.mark.parametrize("cents", [-40.0, 25.0, 1200.0, -1200.0])
def test_pitch_offset_from_the_played_note(cents):
    d = describe_audio(sine(note_hz(60) * 2 ** (cents / 1200)), SR, note=60)
    assert d.pitch_cents == pytest.approx(cents, abs=1.5)
    assert d.pitch_stability_cents < 1.0


def test_without_a_note_pitch_is_unreferenced_but_the_spectrum_uses_the_measured_f0():
    d = describe_audio(partials(300.0, [1, 2, 3, 4], [1, 0.5, 0.3, 0.2]), SR)
    assert d.pitch_cents is None
    assert d.pitch_stability_cents < 1.0
    assert d.inharmonicity < 0.01


# --- envelope times ------------------------------------------------------------------------------


@pytest.mark.parametrize("tau", [0.08, 0.15, 0.4])
def test_exponential_decay_times(tau):
    seconds = 3 * tau * LN10 + 0.4
    t = t_axis(seconds)
    d = describe_audio(np.exp(-t / tau) * np.sin(2 * np.pi * 440.0 * t), SR, note=A4)
    assert d.decay20_ms == pytest.approx(1000 * tau * LN10, rel=0.03)  # amplitude e^-t/tau: 20 dB at tau*ln10
    assert d.decay60_ms == pytest.approx(3000 * tau * LN10, rel=0.03)
    assert d.attack_ms < 2.0
    assert d.beating < 0.02  # a smooth decay is not a fluctuation


@pytest.mark.parametrize("ramp_s", [0.02, 0.1, 0.5])
def test_linear_attack_ramp(ramp_s):
    t = t_axis(ramp_s + 1.0)
    x = np.minimum(t / ramp_s, 1.0) * np.sin(2 * np.pi * 440.0 * t)
    d = describe_audio(x, SR, note=A4)
    assert d.attack_ms == pytest.approx(800 * ramp_s, rel=0.05, abs=1.0)  # 10% -> 90% of a linear ramp
    assert d.decay20_ms is None


def test_attack_is_the_rise_to_the_onsets_peak_not_a_later_crest():
    # A fast rise (20 ms) to a first crest at 0.8, a dip to 0.6, then a slow swell to a higher crest at
    # 0.6 s (a layered voice): the attack is the first rise, 10% -> 90% of the onset's peak (~16 ms).
    t = t_axis(1.5)
    env = np.interp(t, [0.0, 0.02, 0.1, 0.6, 1.5], [0.0, 0.8, 0.6, 1.0, 1.0])
    d = describe_audio(env * np.sin(2 * np.pi * 440.0 * t), SR, note=A4)
    assert d.attack_ms == pytest.approx(16.0, abs=2.0)
    # A first crest well below the later one (here 0.4 of it) is part of a slow swell: the attack runs to the top.
    env = np.interp(t, [0.0, 0.02, 0.1, 0.6, 1.5], [0.0, 0.4, 0.3, 1.0, 1.0])
    assert describe_audio(env * np.sin(2 * np.pi * 440.0 * t), SR, note=A4).attack_ms > 300


def test_instant_onset_reads_as_zero_attack():
    t = t_axis(1.0)
    x = np.sin(2 * np.pi * 440.0 * t + 1.0)  # starts mid-cycle at full amplitude
    assert describe_audio(x, SR, note=A4).attack_ms < 1.0


def held_then_released(note_off: float = 1.5, sustain: float = 0.25, release_tau: float = 0.08) -> np.ndarray:
    """Instant attack, decay (tau 0.1 s) from 1 to ``sustain``, held, then an exponential release."""
    t = t_axis(note_off + 1.0)
    env = sustain + (1 - sustain) * np.exp(-t / 0.1)
    env = np.where(t < note_off, env, env * np.exp(-(t - note_off) / release_tau))
    return env * np.sin(2 * np.pi * 440.0 * t)


def test_held_then_released():
    d = describe_audio(held_then_released(), SR, note=A4, note_off_s=1.5)
    assert d.sustain_db == pytest.approx(20 * math.log10(0.25), abs=0.3)
    assert d.release_ms == pytest.approx(3000 * 0.08 * LN10, rel=0.05)  # 60 dB below the note-off level
    # The held part only fell 12 dB: no decay to -20 dB before note-off, whatever the release does.
    assert d.decay20_ms is None and d.decay60_ms is None
    assert d.beating < 0.02  # the decay-to-sustain bend is not beating


def test_without_note_off_the_release_counts_as_decay():
    d = describe_audio(held_then_released(), SR, note=A4)
    assert d.sustain_db is None and d.release_ms is None
    assert d.decay20_ms is not None and d.decay20_ms > 1500


def test_sustain_and_release_need_a_note_off_inside_the_clip_and_a_living_sound():
    x = held_then_released()
    assert describe_audio(x, SR, note=A4, note_off_s=5.0).sustain_db is None  # the clip ends first
    t = t_axis(2.0)
    plucked = np.exp(-t / 0.02) * np.sin(2 * np.pi * 440.0 * t)  # dies out long before the key is released
    d = describe_audio(plucked, SR, note=A4, note_off_s=1.8)
    assert d.sustain_db is None and d.release_ms is None
    assert d.decay60_ms == pytest.approx(3000 * 0.02 * LN10, rel=0.05)


def test_release_stops_at_a_noise_floor():
    rng = np.random.default_rng(3)
    x = held_then_released(note_off=1.0, release_tau=0.05)[: int(2.5 * SR)]
    x = np.pad(x, (0, int(2.5 * SR) - x.size)) + rng.normal(0, 10 ** (-45 / 20), int(2.5 * SR))
    d = describe_audio(x, SR, note=A4, note_off_s=1.0)
    # 60 dB below the note-off level is under the -45 dBFS hiss: the release ends where it meets the floor.
    assert d.release_ms is not None and d.release_ms < 60 * 0.05 * LN10 * 1000 / 20


# --- spectrum ------------------------------------------------------------------------------------


def test_harmonic_series():
    amps = np.array([1.0, 0.5, 0.33, 0.25, 0.2, 0.17, 0.14, 0.12])
    f0 = note_hz(57)
    d = describe_audio(partials(f0, np.arange(1, 9), amps), SR, note=57)
    expected = float((f0 * np.arange(1, 9) * amps**2).sum() / (amps**2).sum())  # power-weighted mean frequency
    assert d.centroid_hz == pytest.approx(expected, rel=0.01)
    assert d.inharmonicity < 0.01
    assert d.pitch_cents == pytest.approx(0.0, abs=1.0)


def test_a_half_series_counts_as_harmonic():
    # DX7 coarse 0 is ratio 0.5: partials at k * f0 / 2 are part of the note's series, an octave below.
    d = describe_audio(partials(note_hz(60), [0.5, 1.0, 1.5, 2.0, 3.0]), SR, note=60)
    assert d.inharmonicity < 0.01
    assert d.pitch_cents == pytest.approx(-1200.0, abs=2.0)


def test_slightly_detuned_partials_stay_harmonic():
    d = describe_audio(partials(note_hz(60), np.arange(1, 7) * 2 ** (8 / 1200)), SR, note=60)
    assert d.inharmonicity < 0.02
    assert d.pitch_cents == pytest.approx(8.0, abs=1.5)


def test_inharmonic_partials():
    d = describe_audio(partials(note_hz(60), [1.13, 1.71, 2.37, 3.29, 4.61]), SR, note=60)
    assert d.inharmonicity > 0.9


def swept(ratios, semitones: float, rate_hz: float, seconds: float = 2.0, amps=None) -> np.ndarray:
    """Partials at fixed ratios of middle C's pitch, all swung together +-``semitones`` at ``rate_hz`` (an LFO)."""
    t = t_axis(seconds)
    phase = 2 * np.pi * np.cumsum(note_hz(60) * 2 ** (semitones / 12 * np.sin(2 * np.pi * rate_hz * t))) / SR
    amps = np.ones(len(ratios)) if amps is None else amps
    return 0.3 * sum(a * np.sin(r * phase + 0.7 * i) for i, (r, a) in enumerate(zip(ratios, amps)))


@pytest.mark.parametrize("ratios", [np.arange(1, 9), [0.5, 1.0, 1.5, 2.0, 3.0]])
@pytest.mark.parametrize("semitones, rate_hz", [(4.0, 5.0), (7.0, 1.0), (1.0, 6.0)])
def test_a_harmonic_series_under_a_deep_pitch_sweep_stays_harmonic(ratios, semitones, rate_hz):
    # Summed over the note, the sweep smears every partial across the grid (read 0.68-0.94 before): the
    # series of the moving fundamental is what counts.
    d = describe_audio(swept(ratios, semitones, rate_hz, amps=1.0 / np.asarray(ratios)), SR, note=60)
    # The pitch does move (a deep, slow sweep may even lose the held part's pitch track).
    assert d.pitch_stability_cents is None or d.pitch_stability_cents > 50
    assert d.inharmonicity < 0.02


def test_a_harmonic_series_gliding_down_an_octave_stays_harmonic():
    # A pitch envelope: an octave's glide over the first second, then held (the track's median is the low note).
    t = t_axis(2.0)
    cents = -1200.0 * np.minimum(t, 1.0)
    phase = 2 * np.pi * np.cumsum(note_hz(60) * 2 ** (cents / 1200)) / SR
    x = 0.3 * sum(np.sin(k * phase) / k for k in range(1, 7))
    assert describe_audio(x, SR, note=60).inharmonicity < 0.02
    assert describe_audio(x, SR).inharmonicity < 0.02  # without a note: the measured pitch's series


def test_inharmonic_partials_under_a_deep_pitch_sweep_stay_inharmonic():
    d = describe_audio(swept([1.13, 1.71, 2.37, 3.29, 4.61], 4.0, 5.0), SR, note=60)
    assert d.inharmonicity > 0.6
    assert describe_audio(swept([1.13, 1.71, 2.37, 3.29, 4.61], 1.0, 6.0), SR, note=60).inharmonicity > 0.6


def test_noise_burst():
    rng = np.random.default_rng(0)
    x = np.zeros(int(1.2 * SR))
    x[: int(0.8 * SR)] = rng.normal(0.0, 0.3, int(0.8 * SR))
    d = describe_audio(x, SR, note=60, note_off_s=0.8)
    assert d.brightness > 0.9
    assert d.centroid_hz > 8000
    assert d.inharmonicity > 0.6
    assert d.pitch_cents is None or d.pitch_stability_cents > 100
    assert d.release_ms is not None and d.release_ms < 20  # cut to silence


# --- pitch stability and beating ------------------------------------------------------------------


def vibrato(depth_cents: float, rate_hz: float = 5.5, seconds: float = 2.0) -> np.ndarray:
    t = t_axis(seconds)
    freq = 440.0 * 2 ** (depth_cents / 1200 * np.sin(2 * np.pi * rate_hz * t))
    return 0.5 * np.sin(2 * np.pi * np.cumsum(freq) / SR)


def test_vibrato_shows_as_pitch_spread_about_its_depth():
    d50 = describe_audio(vibrato(50.0), SR, note=A4)
    d100 = describe_audio(vibrato(100.0), SR, note=A4)
    assert d50.pitch_cents == pytest.approx(0.0, abs=5.0)
    assert 35 < d50.pitch_stability_cents < 70  # IQR/1.349 of a sinusoid is ~1.05x its depth
    assert 70 < d100.pitch_stability_cents < 140
    assert d50.beating < 0.05  # vibrato alone does not move the level


def test_two_detuned_sines_beat():
    d = describe_audio(sine(440.0, 3.0) + sine(443.0, 3.0), SR, note=A4)
    assert d.beating > 0.3
    assert d.decay20_ms is None  # beat nulls are not a decay
    assert d.inharmonicity < 0.02


@pytest.mark.parametrize("depth", [0.2, 0.5])
def test_tremolo_depth(depth):
    t = t_axis(2.0)
    x = (1 + depth * np.sin(2 * np.pi * 4.0 * t)) * 0.4 * np.sin(2 * np.pi * 440.0 * t)
    assert describe_audio(x, SR, note=A4).beating == pytest.approx(depth, abs=0.06)


# --- flags, edge cases, input checks ----------------------------------------------------------------


@pytest.mark.parametrize("x", [np.zeros(SR), sine(440.0, 1.0, amp=10 ** (-100 / 20)), np.zeros(0), np.zeros(3)])
def test_silence(x):
    d = describe_audio(x, SR, note=60, note_off_s=0.5)
    assert d.silent and not d.clipping
    assert all(getattr(d, k) is None for k in TIMES)
    assert d.centroid_hz is None and d.inharmonicity is None and d.pitch_cents is None and d.beating is None
    assert d.peak_dbfs < -90 and d.peak_dbfs >= FLOOR_DB
    assert "silent" in d.summary()


def test_clipping_flag():
    assert describe_audio(sine(440.0, amp=1.5), SR).clipping
    assert describe_audio(sine(440.0, amp=1.5), SR).peak_dbfs == pytest.approx(20 * math.log10(1.5), abs=0.01)
    assert not describe_audio(np.r_[1.0, -1.0, 0.5], SR).clipping  # exactly full scale does not clip


@pytest.mark.parametrize("x", [np.r_[0.3], np.full(5, 0.3), np.r_[0.0, 1.0, 0.0], np.full(100, 0.2),
                               sine(440.0, 0.01), (sine(440.0, 0.5) * 20000).astype(np.int16),
                               sine(440.0, 0.5).astype(np.float32)])
@pytest.mark.parametrize("note, note_off", [(None, None), (60, 0.0), (127, 0.004), (0, 10.0)])
def test_short_and_odd_inputs_never_raise(x, note, note_off):
    d = describe_audio(x, SR, note=note, note_off_s=note_off)
    assert d.duration_s == pytest.approx(x.size / SR, abs=1e-4)
    assert isinstance(d.summary(), str)


@pytest.mark.parametrize("sr", [16000, 22050, 44100, 96000])
def test_other_sample_rates(sr):
    t = np.arange(sr) / sr
    d = describe_audio(np.exp(-t / 0.15) * np.sin(2 * np.pi * 440.0 * t), sr, note=A4)
    assert d.decay20_ms == pytest.approx(1000 * 0.15 * LN10, rel=0.03)
    assert d.pitch_cents == pytest.approx(0.0, abs=2.0)


@pytest.mark.parametrize("x, fragment", [(np.r_[0.0, np.nan, 1.0], "1 NaN"), (np.r_[np.inf, 0.0, -np.inf], "2 infinite"),
                                         (np.zeros((2, 100)), "1-D"), (np.array(["a", "b"]), "1-D")])
def test_rejects_bad_audio(x, fragment):
    with pytest.raises(ValueError, match=fragment):
        describe_audio(x, SR)


@pytest.mark.parametrize("kwargs, fragment", [({"sample_rate": 0}, "sample_rate"), ({"sample_rate": float("nan")}, "sample_rate"),
                                              ({"note": 128}, "note"), ({"note": 60.5}, "note"),
                                              ({"note_off_s": -1.0}, "note_off_s"), ({"note_off_s": float("inf")}, "note_off_s")])
def test_rejects_bad_settings(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        describe_audio(np.zeros(100), **({"sample_rate": SR} | kwargs))


# --- the model -----------------------------------------------------------------------------------


def test_model_contract():
    d = describe_audio(held_then_released(), SR, note=A4, note_off_s=1.5)
    data = d.to_dict()
    assert list(data) == list(AudioDescriptors.model_fields)
    assert AudioDescriptors.model_validate_json(json.dumps(data)) == d
    with pytest.raises(ValidationError):
        AudioDescriptors(**data, loudness=3.0)  # extra="forbid"
    with pytest.raises(ValidationError):
        AudioDescriptors(**(data | {"brightness": 1.5}))
    schema = AudioDescriptors.model_json_schema()
    assert set(schema["required"]) == set(data)  # every key always present (strict tool schemas need it)
    for name, field in AudioDescriptors.model_fields.items():
        assert field.description and len(field.description) > 20, name
    line = d.summary()
    assert "\n" not in line and "peak" in line and "attack" in line and "sustain -11.9" in line and "release 552 ms" in line
    assert "peak 0.0 dBFS" in line  # no "-0.0"


def test_basic_descriptors_keep_their_keys():
    b = basic_descriptors(sine(440.0, amp=1.5), SR)
    assert set(b) == {"peak_dbfs", "rms_dbfs", "duration_s", "silent", "over_full_scale"}
    assert b["over_full_scale"] and not b["silent"]
    assert basic_descriptors(np.zeros(10), SR)["peak_dbfs"] == float("-inf")


def test_speed_of_a_ten_second_render():
    t = t_axis(10.0)
    x = partials(note_hz(60), np.arange(1, 9), 1 / np.arange(1, 9), seconds=10.0) * np.exp(-t / 2.0)
    describe_audio(x[:SR], SR, note=60, note_off_s=0.8)  # first call pays numpy's one-off costs
    start = time.perf_counter()
    describe_audio(x, SR, note=60, note_off_s=8.0)
    assert time.perf_counter() - start < 0.5  # typically ~0.02 s


# --- real renders --------------------------------------------------------------------------------


def voice(**edits):
    """The init voice with edits given as ``eg_rate__0__0=40`` (path parts joined by ``__``)."""
    d = init_voice().model_dump()
    for path, value in edits.items():
        *parents, last = path.split("__")
        node = d
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        node[int(last) if last.isdigit() else last] = value
    return d


def described(patch, hold_s: float = 1.0, release_s: float = 0.5) -> AudioDescriptors:
    return render_and_describe(patch, note=60, hold_s=hold_s, release_s=release_s)[1]


def test_renders_order_by_attack_rate():
    attacks = [described(voice(eg_rate__0__0=r)).attack_ms for r in (99, 70, 50, 35)]
    assert attacks[0] < 2.0 and attacks == sorted(attacks) and attacks[-1] > 200


def test_renders_order_by_decay_sustain_and_release():
    decays = [described(voice(eg_rate__1__0=r, eg_level__1__0=0, eg_level__2__0=0), hold_s=2.0).decay20_ms
              for r in (70, 55, 45)]
    assert None not in decays and decays == sorted(decays)
    sustains = [described(voice(eg_rate__1__0=60, eg_rate__2__0=60, eg_level__2__0=lv)).sustain_db for lv in (99, 85, 70)]
    assert sustains[0] > -0.5 and sustains == sorted(sustains, reverse=True)
    releases = [described(voice(eg_rate__3__0=r), hold_s=0.3, release_s=2.0).release_ms for r in (90, 60, 45)]
    assert None not in releases and releases == sorted(releases)


def test_renders_order_by_modulation_and_ratio():
    levels = [described(voice(ol__1=ol)) for ol in (0, 60, 75, 90)]
    centroids = [d.centroid_hz for d in levels]
    assert centroids == sorted(centroids) and centroids[0] == pytest.approx(note_hz(60), abs=2)
    assert levels[-1].brightness > levels[0].brightness
    assert described(voice(ol__1=80, coarse__1=2)).inharmonicity < 0.02  # integer ratio: harmonic sidebands
    assert described(voice(ol__1=80, coarse__1=1, fine__1=41)).inharmonicity > 0.5  # ratio 1.41: bell-like


def test_renders_show_vibrato_and_detune():
    steady = voice(pms=6)
    wobbly = voice(pms=6)
    wobbly["lfo"] |= {"pmd": 30, "speed": 40}
    assert described(steady, hold_s=2.0).pitch_stability_cents < 2
    assert described(wobbly, hold_s=2.0).pitch_stability_cents > 50
    assert described(voice(ol__2=99), hold_s=3.0).beating < 0.05  # OP3 joins OP1 in tune
    assert described(voice(ol__2=99, fine__2=1), hold_s=3.0).beating > 0.3  # OP3 at ratio 1.01 beats


def test_renders_silence_and_level():
    assert described(voice(ol__0=0)).silent
    assert described(voice(ol__0=80)).peak_dbfs < described(voice(ol__0=99)).peak_dbfs - 10


def test_render_and_describe_uses_the_sounding_note():
    down = voice(transpose=-12)
    audio, d = render_and_describe(down, note=60, hold_s=0.5, release_s=0.2)
    assert audio.size == int(0.7 * SR)
    assert d.pitch_cents == pytest.approx(0.0, abs=2.0)  # re note 48, which is what sounds
    assert d.centroid_hz == pytest.approx(note_hz(48), abs=2)


def test_factory_bank_descriptors():
    from patchsmith.synth.sysex_reader import read_bank_file

    voices = {p.name.strip(): p for p in read_bank_file(need(YAMAHA / "rom1a.syx")).voices}
    got = {}
    for name in ("PIANO   1", "E.ORGAN 1", "STRINGS 1", "VIBE    1", "MARIMBA"):
        audio = render(voices[name], note=60, hold_s=3.0, release_s=1.0)
        start = time.perf_counter()
        got[name] = describe_audio(audio, SR, note=60 + voices[name].transpose, note_off_s=3.0)
        assert time.perf_counter() - start < 0.5
    assert got["PIANO   1"].decay20_ms is not None and got["E.ORGAN 1"].decay20_ms is None
    assert got["STRINGS 1"].attack_ms > 50 > got["PIANO   1"].attack_ms
    assert got["MARIMBA"].decay60_ms < 1000 and got["MARIMBA"].sustain_db is None  # dies before note-off
    assert got["VIBE    1"].beating > 0.3 > got["E.ORGAN 1"].beating  # the vibraphone's detuned carriers beat
    assert all(not d.silent and d.inharmonicity < 0.05 for d in got.values())
