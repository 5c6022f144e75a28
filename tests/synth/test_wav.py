"""WAV writing: the gain policy, formats, atomic writes and the errors that replace clipping."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

from patchsmith.synth.wav import WavError, read_wav, write_wav

SR = 48000


def tone(peak: float, n: int = 4800) -> np.ndarray:
    t = np.arange(n) / SR
    return (peak * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "FLOAT"])
def test_peak_policy_normalises_to_the_target(tmp_path, subtype):
    info = write_wav(tmp_path / "a.wav", tone(2.5), SR, gain="peak", peak_dbfs=-3.0, subtype=subtype)
    audio, sr = read_wav(tmp_path / "a.wav")
    assert sr == SR and audio.shape == (4800,) and audio.dtype == np.float32
    assert 20 * np.log10(np.max(np.abs(audio))) == pytest.approx(-3.0, abs=0.01)
    assert info.gain_db == pytest.approx(-3.0 - 20 * np.log10(2.5), abs=0.01)
    assert info.source_peak_dbfs == pytest.approx(20 * np.log10(2.5), abs=0.01)
    assert info.written_peak_dbfs == pytest.approx(-3.0, abs=0.01)
    assert info.frames == 4800 and info.duration_s == pytest.approx(0.1) and info.subtype == subtype
    assert sf.info(str(tmp_path / "a.wav")).subtype == subtype


def test_peak_policy_leaves_silence_silent(tmp_path):
    info = write_wav(tmp_path / "s.wav", np.zeros(1000, np.float32), SR, gain="peak")
    audio, _ = read_wav(tmp_path / "s.wav")
    assert not audio.any() and info.gain_db == 0.0 and info.source_peak_dbfs == float("-inf")
    # The engine's noise floor below -90 dBFS is not blown up to full scale either.
    info = write_wav(tmp_path / "q.wav", tone(1e-6), SR, gain="peak", subtype="FLOAT")
    audio, _ = read_wav(tmp_path / "q.wav")
    assert info.gain_db == 0.0 and np.max(np.abs(audio)) < 2e-6


def test_raw_float_is_lossless_above_full_scale(tmp_path):
    x = tone(3.7)
    info = write_wav(tmp_path / "r.wav", x, SR, gain="raw", subtype="FLOAT")
    audio, _ = read_wav(tmp_path / "r.wav")
    assert np.array_equal(audio, x) and info.gain_db == 0.0


def test_raw_pcm_within_full_scale_is_written_unscaled(tmp_path):
    write_wav(tmp_path / "r.wav", tone(0.5), SR, gain="raw", subtype="PCM_24")
    audio, _ = read_wav(tmp_path / "r.wav")
    assert np.max(np.abs(audio - tone(0.5))) < 1e-6


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24"])
def test_raw_pcm_above_full_scale_is_an_error_not_clipping(tmp_path, subtype):
    with pytest.raises(WavError) as err:
        write_wav(tmp_path / "c.wav", tone(1.5), SR, gain="raw", subtype=subtype)
    message = str(err.value)
    assert "+3.52 dBFS" in message and "gain=\"peak\"" in message and "FLOAT" in message
    assert leftovers(tmp_path) == []


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "keep.wav"
    write_wav(target, tone(0.5), SR)
    before = target.read_bytes()

    def broken(*args, **kwargs):
        with open(args[0], "wb") as f:
            f.write(b"RIFF half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(sf, "write", broken)
    with pytest.raises(RuntimeError):
        write_wav(target, tone(0.9), SR)
    assert target.read_bytes() == before and leftovers(tmp_path) == ["keep.wav"]


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(gain="loud"), "gain: found 'loud'"),
    (dict(subtype="PCM_8"), "subtype: found 'PCM_8'"),
    (dict(peak_dbfs=3.0), "peak_dbfs: found 3.0"),
    (dict(peak_dbfs=float("nan")), "peak_dbfs: found nan"),
    (dict(sample_rate=0), "sample_rate: found 0"),
    (dict(sample_rate=44100.0), "sample_rate: found 44100.0"),
])
def test_bad_settings_are_refused(tmp_path, kwargs, fragment):
    args = dict(sample_rate=SR) | kwargs
    with pytest.raises(WavError, match=fragment.replace("(", r"\(")):
        write_wav(tmp_path / "x.wav", tone(0.5), **args)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("audio, fragment", [
    (np.array([0.1, np.nan]), "NaN"),
    (np.array([0.1, np.inf]), "NaN or infinite"),
    (np.zeros(0), "shape (0,)"),
    (np.zeros((2, 2, 2)), "shape (2, 2, 2)"),
    (np.array(["a"]), "found an array of <U1"),
])
def test_bad_audio_is_refused(tmp_path, audio, fragment):
    with pytest.raises(WavError) as err:
        write_wav(tmp_path / "x.wav", audio, SR)
    assert fragment in str(err.value)
    assert leftovers(tmp_path) == []


def test_missing_folder_is_an_error(tmp_path):
    with pytest.raises(WavError, match="does not exist"):
        write_wav(tmp_path / "nope" / "x.wav", tone(0.5), SR)


def test_stereo_round_trip(tmp_path):
    x = np.stack([tone(0.5), tone(0.25)], axis=1)
    info = write_wav(tmp_path / "st.wav", x, SR, gain="raw", subtype="FLOAT")
    audio, _ = read_wav(tmp_path / "st.wav")
    assert info.channels == 2 and audio.shape == (4800, 2) and np.array_equal(audio, x)


def test_read_wav_errors(tmp_path):
    with pytest.raises(WavError, match="no such file"):
        read_wav(tmp_path / "missing.wav")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"this is not audio" * 10)
    with pytest.raises(WavError, match="not a readable audio file"):
        read_wav(junk)


def test_same_audio_gives_identical_bytes(tmp_path):
    write_wav(tmp_path / "a.wav", tone(1.3), SR)
    write_wav(tmp_path / "b.wav", tone(1.3), SR)
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()
    assert os.path.getsize(tmp_path / "a.wav") == 44 + 2 * 4800
