"""`patchsmith evidence`: the clip and its segment map beside it, both or neither, and clean failures."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from tests.cli.cli_support import EXAMPLES, bank, cli, epiano_patch, examples, listing, proc, write_json  # noqa: F401

from patchsmith.evals.evidence import render_evidence_report
from patchsmith.synth.wav import read_wav


def test_evidence_writes_the_clip_and_a_matching_segment_map(cli, tmp_path):
    r = cli("evidence", EXAMPLES / "epiano.json", "--mode", "off", "--segment", "1", "-o", "clip.wav")
    assert r.code == 0, r.err
    assert listing(tmp_path) == ["clip.json", "clip.wav"]
    audio, sr = read_wav(tmp_path / "clip.wav")
    data = json.loads((tmp_path / "clip.json").read_text())
    assert data["wav"] == "clip.wav" and data["mode"] == "off" and sr == data["sample_rate"] == 48000
    rendered = [s for s in data["segments"] if not s["skipped"]]
    assert [s["label"] for s in data["segments"]] == ["FULL"] + [f"OP{k}_OFF" for k in range(1, 7)]
    assert audio.shape == (len(rendered) * sr,) and data["duration_s"] == pytest.approx(len(rendered))
    for i, s in enumerate(rendered):  # contiguous one-second segments, FULL first
        assert (s["start_s"], s["end_s"]) == pytest.approx((i * 1.0, (i + 1) * 1.0))
    report, _ = render_evidence_report(json.loads((EXAMPLES / "epiano.json").read_text())["patch"], mode="off",
                                       segment_s=1.0)
    assert {k: v for k, v in data.items() if not k.startswith("wav")} == json.loads(json.dumps(report.model_dump()))
    assert r.out.startswith(report.text() + "\n") and "wrote clip.wav" in r.out and "clip.json" in r.out
    assert 20 * np.log10(np.max(np.abs(audio))) == pytest.approx(-1.0, abs=0.01)  # peak-normalised like render


def test_isolation_with_chosen_shuffled_operators_and_raw_float_audio(cli, tmp_path, epiano_patch):
    write_json(tmp_path / "p.json", epiano_patch)
    args = ("evidence", "p.json", "--mode", "on", "--operators", "2,4,6", "--segment", "0.5", "--hold", "0.3",
            "--shuffle", "--seed", "7", "--note", "64", "--velocity", "90", "--sample-rate", "32000",
            "--gain", "raw", "--format", "float")
    r = cli(*args, "-o", "a.wav")
    assert r.code == 0, r.err
    report, expected = render_evidence_report(epiano_patch, mode="on", operators=[2, 4, 6], segment_s=0.5,
                                              shuffle=True, seed=7, note=64, velocity=90, hold_s=0.3,
                                              sample_rate=32000)
    audio, sr = read_wav(tmp_path / "a.wav")
    assert sr == 32000 and np.array_equal(audio, expected)
    data = json.loads((tmp_path / "a.json").read_text())
    assert [s["label"] for s in data["segments"]] == [s.label for s in report.segments]
    assert data["note"] == 64 and data["velocity"] == 90 and data["hold_s"] == 0.3
    assert cli(*args, "-o", "b.wav").code == 0  # the same seed, the same order and bytes
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()


@pytest.mark.parametrize("args, lines", [
    (("--mode", "maybe"), ["--mode: found 'maybe', allowed off"]),
    (("--mode", "off", "--operators", "1,9,x,1"), ["--operators: found '9'", "--operators: found 'x'",
                                                   "operator 1 is listed twice"]),
    (("--mode", "off", "--operators", ""), ["--operators: found ''"]),
    (("--mode", "on", "--segment", "0", "--operators", "7"), ["--operators: found '7'",
                                                            "--segment: found 0, allowed seconds 0.1..30"]),
    (("--mode", "off", "--note", "200"), ["note: found 200"]),
    (("--mode", "off", "--gain", "raw"), ["would clip as pcm16; use --gain peak"]),  # the e-piano peaks above 0 dBFS
])
def test_bad_settings_fail_cleanly_and_write_nothing(cli, tmp_path, args, lines):
    r = cli("evidence", EXAMPLES / "epiano.json", "--segment", "0.5", *args, "-o", "clip.wav")
    r.assert_clean_failure()
    assert len(r.error_lines) == len(lines)  # one line per problem, every problem at once
    for line, fragment in zip(r.error_lines, lines):
        assert fragment in line
    assert listing(tmp_path) == []


def test_bad_outputs_and_sources_fail_cleanly(cli, tmp_path, bank):
    r = cli("evidence", EXAMPLES / "epiano.json", "--mode", "off", "-o", "clip.mp3")
    r.assert_clean_failure()
    assert "-o clip.mp3: the clip is a .wav file" in r.err
    r = cli("evidence", EXAMPLES / "epiano.json", "--mode", "off", "-o", "nowhere/clip.wav")
    r.assert_clean_failure()
    assert "the folder nowhere does not exist" in r.err
    (tmp_path / "c.json").mkdir()
    r = cli("evidence", EXAMPLES / "epiano.json", "--mode", "off", "-o", "c.wav")
    r.assert_clean_failure()
    assert "would replace a folder" in r.err
    r = cli("evidence", "missing.json", "--mode", "off", "-o", "clip.wav")
    r.assert_clean_failure()
    assert "missing.json: no such file" in r.err
    r = cli("evidence", bank, "--mode", "off", "-o", "clip.wav")
    r.assert_clean_failure()
    assert "holds 32 voices" in r.err
    r = cli("evidence", EXAMPLES / "epiano.json", "--mode", "off", "-o", "clip.wav", "--bogus")
    assert r.code == 2 and "unrecognized arguments: --bogus" in r.err
    r = cli("evidence", EXAMPLES / "epiano.json", "-o", "clip.wav")
    assert r.code == 2 and "--mode" in r.err
    assert listing(tmp_path) == ["c.json", "examples.syx"]


def test_a_failure_while_placing_the_map_takes_the_clip_back(cli, tmp_path, monkeypatch):
    (tmp_path / "keep.txt").write_text("unrelated")
    real = os.replace

    def failing(src, dst):
        if str(dst).endswith("clip.json"):
            raise OSError(28, "No space left on device", str(dst))
        return real(src, dst)

    monkeypatch.setattr(os, "replace", failing)
    r = cli("evidence", EXAMPLES / "epiano.json", "--mode", "off", "--operators", "1", "--segment", "0.5",
            "-o", "clip.wav")
    r.assert_clean_failure()
    assert "No space left on device" in r.err
    assert listing(tmp_path) == ["keep.txt"]


def test_evidence_as_a_subprocess(proc, tmp_path):
    r = proc("evidence", EXAMPLES / "bell.json", "--mode", "on", "--segment", "0.5", "-o", "bell.wav")
    assert r.code == 0, r.err
    assert "FULL" in r.out and listing(tmp_path) == ["bell.json", "bell.wav"]
    r = proc("evidence", EXAMPLES / "bell.json", "--mode", "sideways", "-o", "x.wav")
    r.assert_clean_failure()
    assert listing(tmp_path) == ["bell.json", "bell.wav"]
