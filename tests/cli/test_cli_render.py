"""`patchsmith render`: every kind of source, the gain policy, and clean failures with nothing left behind."""

from __future__ import annotations

import json

import mido
import numpy as np
import pytest
from tests.cli.cli_support import EXAMPLES, bank, cli, epiano_patch, examples, listing, proc, write_json  # noqa: F401

from patchsmith.synth.render import render
from patchsmith.synth.sysex import write_vced
from patchsmith.synth.wav import read_wav


def test_render_an_example_prints_levels_and_writes_a_peak_normalised_wav(cli, tmp_path):
    r = cli("render", EXAMPLES / "epiano.json", "-o", "ep.wav")
    assert r.code == 0, r.err
    assert "note 60" in r.out and "peak" in r.out and "RMS" in r.out and "wrote ep.wav" in r.out
    audio, sr = read_wav(tmp_path / "ep.wav")
    assert sr == 48000 and audio.shape == (4 * 48000,)
    assert 20 * np.log10(np.max(np.abs(audio))) == pytest.approx(-1.0, abs=0.01)


def test_render_uses_the_examples_note_unless_told_otherwise(cli):
    data = json.loads(cli("render", EXAMPLES / "bass.json", "--json").out)
    assert data["note"] == 36 and data["hold_s"] == 2.0
    data = json.loads(cli("render", EXAMPLES / "bass.json", "--note", "40", "--hold", "0.5", "--json").out)
    assert data["note"] == 40 and data["duration_s"] == pytest.approx(1.5)


def test_raw_float_output_is_the_engines_audio_exactly(cli, tmp_path, epiano_patch):
    write_json(tmp_path / "p.json", epiano_patch)
    r = cli("render", "p.json", "--gain", "raw", "--format", "float", "--note", "64", "--velocity", "90",
            "--hold", "1", "--release", "0.5", "--sample-rate", "44100", "-o", "raw.wav")
    assert r.code == 0, r.err
    audio, sr = read_wav(tmp_path / "raw.wav")
    expected = render(epiano_patch, note=64, velocity=90, hold_s=1, release_s=0.5, sample_rate=44100)
    assert sr == 44100 and np.array_equal(audio, expected)


def test_raw_pcm_that_would_clip_is_refused_and_nothing_is_written(cli, tmp_path):
    r = cli("render", EXAMPLES / "brass.json", "--gain", "raw", "-o", "b.wav")
    r.assert_clean_failure()
    assert "would clip" in r.err and "--gain peak" in r.err and "--format float" in r.err
    assert listing(tmp_path) == []


def test_chord_and_json_output(cli, tmp_path):
    r = cli("render", EXAMPLES / "organ.json", "--notes", "60,64,67", "--hold", "1", "--release", "0.5", "--json",
            "-o", "c.wav", "--format", "pcm24")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert data["notes"] == [60, 64, 67] and data["duration_s"] == pytest.approx(1.5)
    assert data["wav"]["format"] == "pcm24" and data["peak_dbfs"] > 0  # three notes of six carriers
    assert read_wav(tmp_path / "c.wav")[0].shape == (72000,)


def test_midi_file(cli, tmp_path):
    mid = mido.MidiFile()
    track = mido.MidiTrack()
    mid.tracks.append(track)
    for i, key in enumerate(range(48, 68)):  # 20 overlapping notes: 4 are stolen
        track.append(mido.Message("note_on", note=key, velocity=100, time=0 if i == 0 else 24))
    track.append(mido.Message("note_off", note=48, velocity=0, time=480))
    mid.save(tmp_path / "run.mid")
    r = cli("render", EXAMPLES / "epiano.json", "--midi", "run.mid", "--release", "0.5", "-o", "m.wav", "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert data["stolen_notes"] == 4 and not data["silent"]
    bad = cli("render", EXAMPLES / "epiano.json", "--midi", "missing.mid", "-o", "m2.wav")
    bad.assert_clean_failure()
    assert "missing.mid: no such file" in bad.err and not (tmp_path / "m2.wav").exists()


def test_bank_voices_are_addressed_from_one(cli, bank, tmp_path, examples):
    r = cli("render", f"{bank}:1", "-o", "one.wav", "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["voice"].endswith(repr(examples[0].patch.name.ljust(10)))
    assert (tmp_path / "one.wav").exists()
    for address, fragment in [(":0", "voice number 0 is out of range"), (":33", "voice number 33 is out of range"),
                              (":x", "voice number 'x' is not a whole number"), ("", "holds 32 voices")]:
        r = cli("render", f"{bank}{address}", "-o", "bad.wav")
        r.assert_clean_failure()
        assert fragment in r.err and "1..32" in r.err
        assert not (tmp_path / "bad.wav").exists()


def test_every_voice_of_a_bank_into_a_folder(cli, bank, tmp_path):
    r = cli("render", bank, "-o", "voices", "--hold", "0.2", "--release", "0.1")
    assert r.code == 0, r.err
    files = listing(tmp_path / "voices")
    assert len(files) == 32 and files[0] == "01-fm-bass.wav" and files[-1] == "32-init-voice.wav"
    # A failure while checking any voice leaves no folder at all.
    r = cli("render", bank, "-o", "clipped", "--gain", "raw", "--hold", "0.2")
    r.assert_clean_failure()
    assert not (tmp_path / "clipped").exists() and not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_single_voice_syx_and_source_csv_row(cli, tmp_path, examples):
    (tmp_path / "v.syx").write_bytes(write_vced(examples[0].patch))
    assert cli("render", "v.syx", "-o", "v.wav").code == 0
    assert cli("convert", "v.syx", "rows.csv").code == 0
    r = cli("render", "rows.csv:1", "-o", "row.wav")
    assert r.code == 0, r.err
    assert read_wav(tmp_path / "row.wav")[0].size == 4 * 48000


@pytest.mark.parametrize("make, args, fragment", [
    (None, ["missing.json"], "missing.json: no such file"),
    ("{\"modmatrix\": [", ["p.json"], "p.json: invalid JSON: Expecting value at line 1 column 16"),
    ("[]", ["p.json"], "an empty list"),
    ("\"text\"", ["p.json"], "p.json: (root): found \"text\""),
    (b"\xf0\x43 not sysex", ["p.syx"], "p.syx: "),
    ("hello", ["p.txt"], "unknown file type '.txt'"),
    ("{}", ["p.json", "--note", "200"], "/modmatrix: found missing"),
])
def test_bad_sources_fail_cleanly(cli, tmp_path, make, args, fragment):
    if make is not None:
        target = tmp_path / args[0]
        target.write_bytes(make) if isinstance(make, bytes) else target.write_text(make)
    r = cli("render", *args, "-o", "out.wav")
    r.assert_clean_failure()
    assert fragment in r.err
    assert not (tmp_path / "out.wav").exists()


def test_invalid_values_give_one_line_per_problem(cli, tmp_path, epiano_patch):
    epiano_patch["eg_rate"][2][4] = 120
    epiano_patch["ol"][0] = -1
    epiano_patch["feedback"] = 2.5
    write_json(tmp_path / "p.json", epiano_patch)
    r = cli("render", "p.json", "-o", "out.wav")
    r.assert_clean_failure()
    assert r.error_lines == [
        "error: p.json: /feedback: found 2.5, allowed integer 0..7",
        "error: p.json: /ol/0: found -1, allowed integer 0..99",
        "error: p.json: /eg_rate/2/4: found 120, allowed integer 0..99",
    ]
    assert listing(tmp_path) == ["p.json"]


@pytest.mark.parametrize("args, fragment", [
    (["--note", "200"], "note: found 200, allowed integer 0..127"),
    (["--velocity", "0"], "velocity: found 0, allowed integer 1..127"),
    (["--sample-rate", "8000"], "sample_rate: found 8000"),
    (["--hold", "-1"], "hold_s: found -1.0"),
    (["--notes", "60,x"], "--notes: found 'x'"),
    (["--peak-dbfs", "3"], "peak_dbfs: found 3.0"),
])
def test_bad_settings_fail_cleanly(cli, tmp_path, args, fragment):
    r = cli("render", EXAMPLES / "organ.json", *args, "-o", "out.wav")
    r.assert_clean_failure()
    assert fragment in r.err
    assert not (tmp_path / "out.wav").exists()


def test_output_folder_must_exist_and_output_must_be_wav(cli):
    r = cli("render", EXAMPLES / "organ.json", "-o", "nowhere/out.wav")
    r.assert_clean_failure()
    assert "does not exist" in r.err
    r = cli("render", EXAMPLES / "organ.json", "-o", "out.mp3")
    r.assert_clean_failure()
    assert "renders to a .wav file" in r.err


def test_usage_errors_exit_2(cli):
    r = cli("render")
    assert r.code == 2 and "usage:" in r.err
    r = cli("render", EXAMPLES / "organ.json", "--note", "60", "--notes", "60,64")
    assert r.code == 2 and "not allowed with" in r.err


def test_render_as_a_subprocess(proc, tmp_path):
    good = proc("render", EXAMPLES / "pad.json", "-o", "pad.wav")
    assert good.code == 0, good.err
    assert "wrote pad.wav" in good.out and (tmp_path / "pad.wav").stat().st_size > 600_000
    bad = proc("render", "nothing.json", "-o", "x.wav")
    bad.assert_clean_failure()
    assert bad.err.strip() == "error: nothing.json: no such file"
    assert not (tmp_path / "x.wav").exists()
