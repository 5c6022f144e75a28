"""The evaluation runner: captions in, scores, aggregates and report files out; resumable; honest failures."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from patchsmith.agent.systems import make_system
from patchsmith.evals.runner import ITEMS_FILE, EvalInputError, load_rows, run_eval
from patchsmith.evals.systems import EvalRow, RenderSpec, SystemOutput, WavFolderSystem
from patchsmith.synth.render import render
from patchsmith.synth.wav import write_wav

from ..conftest import CAPTIONS, need
from .eval_fixtures import write_source_csvs

FAST = RenderSpec(hold_s=0.6, release_s=0.3)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_source_csvs(tmp_path_factory.mktemp("data"), 3)


@pytest.fixture(scope="module")
def offline():
    """One offline designer for the module: its library renders are made once."""
    return make_system("offline")


class Scripted:
    """A system that answers from a table and counts the captions it was asked."""

    makes_patches = True
    name = "scripted"

    def __init__(self, answers: dict[str, SystemOutput]):
        self.answers = answers
        self.asked: list[str] = []

    def describe(self):
        return {"kind": "scripted", "name": self.name}

    def generate(self, row: EvalRow, render: RenderSpec) -> SystemOutput:
        self.asked.append(row.id)
        return self.answers[row.id]

    def close(self):
        pass


def test_load_rows_joins_captions_and_patches_and_follows_the_id_order(tiny):
    captions, patches, truth = tiny
    rows, notes = load_rows(captions, patches, ids=["102", "100", "999"])
    assert [r.id for r in rows] == ["102", "100"]
    assert rows[0].patch == truth[rows[0].caption]
    assert any("999" in n for n in notes)
    rows, _ = load_rows(captions)
    assert [r.patch for r in rows] == [None, None, None]


@pytest.mark.parametrize("content, expected", [
    ("id,text\n1,hello\n", "missing column(s) caption"),
    ("", "missing column(s) id, caption"),
    ("id,caption\n1,\n", "no captioned rows"),
])
def test_load_rows_refuses_unusable_caption_files(tmp_path, content, expected):
    path = tmp_path / "c.csv"
    path.write_text(content)
    with pytest.raises(EvalInputError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        load_rows(path)
    with pytest.raises(EvalInputError, match="no such file"):
        load_rows(tmp_path / "absent.csv")


def test_offline_run_writes_every_file_with_scores_and_resumes(tiny, tmp_path, offline):
    captions, patches, truth = tiny
    rows, _ = load_rows(captions, patches)
    out = tmp_path / "run"
    system = offline
    run = run_eval(rows, system, out, render=FAST, n_boot=50, examples=1, plots=False)
    names = {p.name for p in out.iterdir()}
    assert {"items.jsonl", "results.csv", "summary.csv", "summary.json", "report.md", "examples"} <= names
    assert not any(n.startswith(".staging") for n in names)
    assert run.process["validity_rate"].value == 1.0
    assert 0.0 < run.process["distance"].value < 1.0  # the packaged library holds none of these exact patches
    metrics = {m["column"]: m for m in run.metrics}
    assert metrics["rms"]["n"] == 3 and 0.0 <= metrics["rms"]["value"] <= 1.0
    assert "fad[logmel-stats]" in metrics and "fad" not in metrics  # offline numbers never take a published column
    with open(out / "results.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [r["id"] for r in table] == ["100", "101", "102"] and all(r["rms"] for r in table)
    lines = (out / ITEMS_FILE).read_text().splitlines()
    assert json.loads(lines[0])["type"] == "config" and len(lines) == 4
    first = (out / "results.csv").read_bytes()

    # A second run resumes: nobody is asked again, and the files come out the same.
    never = Scripted({})
    never.describe = system.describe  # the same config, so the log is reused
    again = run_eval(rows, never, out, render=FAST, n_boot=50, examples=1, plots=False)
    assert never.asked == [] and (out / "results.csv").read_bytes() == first
    assert [i.patch for i in again.items] == [i.patch for i in run.items]


def test_an_interrupted_run_resumes_from_the_items_it_finished(tiny, tmp_path):
    captions, patches, truth = tiny
    rows, _ = load_rows(captions, patches)
    answers = {r.id: SystemOutput(patch=r.patch, valid=True, tool_called=True, attempts=1) for r in rows}

    class Dies(Scripted):
        def generate(self, row, render):
            if len(self.asked) == 2:
                raise KeyboardInterrupt
            return super().generate(row, render)

    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_eval(rows, Dies(answers), out, render=FAST, n_boot=20, plots=False, examples=0)
    assert len((out / ITEMS_FILE).read_text().splitlines()) == 3  # config + 2 items
    assert not (out / "report.md").exists()
    later = Scripted(answers)
    run = run_eval(rows, later, out, render=FAST, n_boot=20, plots=False, examples=0)
    assert later.asked == ["102"]
    assert run.process["toolrl_exact"].value == 3.0  # the ground truth itself scores the maximum
    assert {m["column"]: m["value"] for m in run.metrics}["rms"] == pytest.approx(1.0)


def test_another_runs_folder_is_refused_unless_fresh(tiny, tmp_path):
    captions, patches, _ = tiny
    rows, _ = load_rows(captions, patches)
    one = {r.id: SystemOutput(patch=r.patch, valid=True) for r in rows}
    run_eval(rows[:1], Scripted(one), tmp_path / "r", render=FAST, n_boot=10, plots=False, examples=0)
    with pytest.raises(EvalInputError, match="other settings"):
        run_eval(rows[:1], Scripted(one), tmp_path / "r", render=RenderSpec(hold_s=0.5, release_s=0.3), n_boot=10,
                 plots=False, examples=0)
    run_eval(rows[:1], Scripted(one), tmp_path / "r", render=RenderSpec(hold_s=0.5, release_s=0.3), n_boot=10,
             plots=False, examples=0, resume=False)


def test_failed_items_are_scored_as_silence_or_left_out(tiny, tmp_path):
    captions, patches, _ = tiny
    rows, _ = load_rows(captions, patches)
    answers = {rows[0].id: SystemOutput(patch=rows[0].patch, valid=True, tool_called=True),
               rows[1].id: SystemOutput(error="the model never called the render tool"),
               rows[2].id: SystemOutput(error="boom")}
    silent = run_eval(rows, Scripted(answers), tmp_path / "s", render=FAST, n_boot=20, plots=False, examples=0)
    assert silent.process["validity_rate"].value == pytest.approx(1 / 3)
    assert silent.flags.get("generated_silent") == 2
    rms = {m["column"]: m for m in silent.metrics}["rms"]
    assert rms["value"] == pytest.approx(1 / 3)  # 1, 0, 0: silence has no envelope to match
    excluded = run_eval(rows, Scripted(answers), tmp_path / "x", render=FAST, n_boot=20, plots=False, examples=0,
                        failed="exclude")
    assert {m["column"]: m for m in excluded.metrics}["rms"]["n"] == 1
    assert excluded.process["validity_rate"].value == pytest.approx(1 / 3)
    report = (tmp_path / "x" / "report.md").read_text()
    assert "## Failures" in report and "boom" in report


def test_a_system_error_on_one_caption_does_not_lose_the_run(tiny, tmp_path):
    captions, patches, _ = tiny
    rows, _ = load_rows(captions, patches)

    class Flaky(Scripted):
        def generate(self, row, render):
            if row.id == "101":
                raise RuntimeError("model crashed")
            return SystemOutput(patch=row.patch, valid=True)

    run = run_eval(rows, Flaky({}), tmp_path / "f", render=FAST, n_boot=10, plots=False, examples=0)
    assert [i.error for i in run.items] == [None, "RuntimeError: model crashed", None]


def test_wav_folder_system_is_scored_on_its_audio(tiny, tmp_path):
    captions, patches, truth = tiny
    rows, _ = load_rows(captions, patches)
    wavs = tmp_path / "wavs"
    wavs.mkdir()
    for r in rows[:2]:  # the third caption has no file
        audio = render(r.patch, hold_s=0.6, release_s=0.3, sample_rate=16000)
        write_wav(wavs / f"{r.id}.wav", audio, 16000, gain="raw", subtype="FLOAT")
    run = run_eval(rows, WavFolderSystem(wavs), tmp_path / "w", render=FAST, n_boot=20, plots=False, examples=0)
    assert [i.valid for i in run.items] == [True, True, False]
    assert "no file 102.wav" in run.items[2].error
    assert "validity_rate" not in run.process and run.process["audio_rate"].value == pytest.approx(2 / 3)
    values = run.item_metrics
    assert values["100"]["rms"] > 0.95  # resampled from 16 kHz, the same sound as the reference
    assert run.items[0].patch_scores is None


def test_plots_are_written_when_matplotlib_is_there(tiny, tmp_path):
    pytest.importorskip("matplotlib")
    captions, patches, _ = tiny
    rows, _ = load_rows(captions, patches)
    answers = {r.id: SystemOutput(patch=r.patch, valid=True) for r in rows}
    run_eval(rows[:2], Scripted(answers), tmp_path / "p", render=FAST, n_boot=10, examples=1)
    assert {p.name for p in (tmp_path / "p" / "plots").iterdir()} == {"metrics.png", "spectrograms.png"}
    assert (tmp_path / "p" / "plots" / "metrics.png").read_bytes()[:4] == b"\x89PNG"
    assert "![metrics.png](plots/metrics.png)" in (tmp_path / "p" / "report.md").read_text()


def test_real_train_captions_run_with_the_offline_designer(tmp_path, offline):
    folder = need(CAPTIONS)
    rows, notes = load_rows(folder / "DX7_YAMAHA_train_captions.csv", folder / "DX7_YAMAHA_train.csv",
                            ids=["0", "2", "3"])
    assert len(rows) == 3 and all(r.patch is not None for r in rows)
    run = run_eval(rows, offline, tmp_path / "real", render=FAST, n_boot=20, plots=False, examples=0)
    assert run.process["validity_rate"].value == 1.0
    assert all(np.isfinite(v) for v in (run.process["distance"].value, run.process["toolrl_exact"].value))
