"""``patchsmith dataset build``: manifest, renders, merge, card, resume after SIGKILL, Ray, bad input."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import soundfile as sf

from patchsmith.cli import main
from patchsmith.training.dataset.build import BuildError, build
from patchsmith.training.dataset.render_jobs import RenderOptions, _auto_shift
from patchsmith.training.dataset.stages import StageReport, iter_pending_shards, part_path, shard_count

from ...conftest import YAMAHA, need
from .bank_fixtures import make_inputs

FAST = dict(seconds=0.5, sample_rate=16000)
REPO = Path(__file__).resolve().parents[3]


def _data(out: Path):
    return pq.read_table(out / "data")


def test_build_writes_manifest_renders_merged_data_and_card(tmp_path: Path) -> None:
    inputs = make_inputs(tmp_path / "in")
    out = tmp_path / "out"
    report = build([str(p) for p in inputs.paths], out, render=RenderOptions(**FAST), shard_size=8, workers=1,
                   captions="none", progress=False)
    manifest = pq.read_table(out / "stage" / "manifest.parquet")
    assert manifest.column("id").to_pylist() == inputs.unique_ids
    n = len(inputs.unique_ids)
    assert shard_count(out) == -(-n // 8) and list(iter_pending_shards(out, "renders")) == []
    renders = pq.read_table(out / "stage" / "renders")
    assert sorted(renders.column("id").to_pylist()) == sorted(inputs.unique_ids)
    silent = {r["id"] for r in renders.select(["id", "silent"]).to_pylist() if r["silent"]}
    assert silent == inputs.silent_ids

    data = _data(out)
    rows = data.to_pylist()
    assert sorted(r["id"] for r in rows) == sorted(set(inputs.unique_ids) - inputs.silent_ids)
    assert len({r["render_id"] for r in rows}) == len(rows)
    for r in rows:
        assert r["render_id"] == f"{r['id']}-n60-v100" and r["note"] == r["played_note"] == 60
        audio, sr = sf.read(io.BytesIO(r["audio"]["bytes"]))
        assert sr == 16000 and len(audio) == 8000 and abs(max(abs(audio)) - 10 ** (-1 / 20)) < 1e-3
        d = json.loads(r["descriptors"])
        assert d["silent"] is False and d["duration_s"] == 0.5
        assert json.loads(r["patch"])["modmatrix"]
    captioned = {r["id"]: r for r in rows if r["caption"]}
    assert set(captioned) == inputs.captioned_ids
    assert {r["caption_source"] for r in captioned.values()} == {"source-research"}

    merged = report["merge"]
    assert merged["rows"] == len(rows) == n - 1 and merged["silent"] == 1 and merged["renders"] == n
    src = report["sources"]
    assert src["dedup"]["unique"] == n and src["dedup"]["voices"] == inputs.voices
    assert src["sources"]["files_refused"] == 1 and src["sources"]["refused"][0]["file"].endswith("junk.syx")
    saved = json.loads((out / "stage" / "report.json").read_text())
    assert saved["merge"] == merged
    card = (out / "README.md").read_text()
    assert f"| unique voices (parameters without the name) | {n} |" in card
    assert "| silent renders filtered out (inaudible voices) | 1 |" in card
    assert "copyright belongs to their authors" in card and "junk.syx" in card

    # The loaders the rest of the project and users use.
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    from datasets import load_dataset

    from patchsmith.agent.designer import Library

    ds = load_dataset("parquet", data_files=str(out / "data" / "*.parquet"), split="train",
                      cache_dir=str(tmp_path / "hf-cache"))
    assert ds.num_rows == len(rows) and set(ds.column_names) >= {"id", "patch", "audio", "caption", "descriptors"}
    lib = Library.from_parquet(out / "data")
    assert {e.id for e in lib} == inputs.captioned_ids
    # `--library OUT` names the build folder: its merged rows, not the stage parts or the card.
    assert {e.id for e in Library.load(out)} == inputs.captioned_ids

    # Running the same build again renders nothing and ends with the same data.
    again = build([str(p) for p in inputs.paths], out, render=RenderOptions(**FAST), shard_size=8, workers=1,
                  captions="none", progress=False)
    assert again["resumed"] and again["stages"]["renders"]["shards_written"] == 0
    assert sorted(_data(out).column("render_id").to_pylist()) == sorted(data.column("render_id").to_pylist())


def test_notes_velocities_evidence_and_files(tmp_path: Path) -> None:
    inputs = make_inputs(tmp_path / "in")
    out = tmp_path / "out"
    opts = RenderOptions(notes=[48, 72], velocities=[64, 100], evidence=["off", "on"], evidence_seconds=0.2,
                         audio="files", **FAST)
    build([str(inputs.paths[0])], out, render=opts, shard_size=2, limit=3, workers=2, captions="none", progress=False)
    rows = _data(out).to_pylist()
    ids = inputs.unique_ids[:3]
    assert sorted(r["render_id"] for r in rows) == sorted(f"{i}-n{n}-v{v}" for i in ids for n in (48, 72) for v in (64, 100))
    for r in rows:
        assert r["audio"]["bytes"] is None
        path = out / r["audio"]["path"]
        audio, sr = sf.read(path)
        assert sr == 16000 and len(audio) == 8000
        for mode in ("off", "on"):
            seg_map = json.loads(r[f"evidence_{mode}_map"])
            assert seg_map["mode"] == mode and seg_map["segments"][0]["label"] == "FULL"
            clip, _ = sf.read(out / r[f"evidence_{mode}"]["path"])
            rendered = [s for s in seg_map["segments"] if not s["skipped"]]
            assert len(clip) == len(rendered) * round(0.2 * 16000)


def test_auto_transpose_moves_low_and_high_voices_by_octaves() -> None:
    assert _auto_shift(60, 60, 0.0) == 0  # middle C: useful
    assert _auto_shift(60, 24, 0.0) == 12  # C1 (32.7 Hz) -> C2 (65.4 Hz)
    assert _auto_shift(60, 60, -4800.0) == 24  # four octaves under C4 (16.4 Hz) -> 65.4 Hz
    assert _auto_shift(60, 108, 0.0) == -24  # C8 (4186 Hz) -> C6 (1047 Hz)
    assert _auto_shift(120, 100, -6000.0) == 0  # would leave the keyboard: stays
    assert _auto_shift(60, 24, None) == 12  # no measured pitch: the sounding note decides
    assert _auto_shift(60, 60, None) == 0


def test_auto_transpose_in_a_build(tmp_path: Path) -> None:
    from patchsmith.examples import load_examples
    from patchsmith.schema.patch import Patch
    from patchsmith.synth.sysex import write_vmem

    p = load_examples()[0].patch.to_dict(full=True)
    low = Patch(**(p | {"transpose": -24, "name": "LOW"}))
    (tmp_path / "low.syx").write_bytes(write_vmem([low]))
    out = tmp_path / "out"
    build([str(tmp_path / "low.syx")], out, render=RenderOptions(transpose="auto", notes=[36], **FAST), limit=1,
          workers=1, captions="none", progress=False)
    row = _data(out).to_pylist()[0]
    assert row["note"] == 36 and row["note_shift"] > 0 and row["played_note"] == 36 + row["note_shift"]
    assert row["render_id"].endswith("-n36-v100")


def test_resume_with_other_options_is_refused(tmp_path: Path) -> None:
    inputs = make_inputs(tmp_path / "in")
    out = tmp_path / "out"
    args = ["dataset", "build", str(inputs.paths[0]), "-o", str(out), "--seconds", "0.5", "--sample-rate", "16000",
            "--limit", "2", "--workers", "1", "--captions", "none", "--no-progress"]
    assert main(args) == 0
    with pytest.raises(BuildError, match="seconds"):
        build([str(inputs.paths[0])], out, render=RenderOptions(seconds=1.0, sample_rate=16000), limit=2, workers=1,
              captions="none", progress=False)


def test_bad_arguments_exit_2_with_reasons(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "out")
    assert main(["dataset", "build", str(tmp_path / "missing"), "-o", out]) == 2
    assert "missing: no such file or folder" in capsys.readouterr().err
    (tmp_path / "x.syx").write_bytes(b"garbage")
    assert main(["dataset", "build", str(tmp_path / "x.syx"), "-o", out, "--notes", "60,200"]) == 2
    assert "--notes: found 200, allowed 0..127" in capsys.readouterr().err
    assert main(["dataset", "build", str(tmp_path / "x.syx"), "-o", out, "--evidence", "sideways"]) == 2
    assert "--evidence" in capsys.readouterr().err
    assert main(["dataset", "build", str(tmp_path / "x.syx"), "-o", out, "--no-progress", "--captions", "none"]) == 2
    err = capsys.readouterr().err
    assert "no DX7 voice found in the inputs" in err and "x.syx" in err
    assert main(["dataset", "info", str(tmp_path)]) == 2
    assert "no finished build" in capsys.readouterr().err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    assert main(["dataset", "build", str(tmp_path / "x.syx"), "-o", str(tmp_path / "full")]) == 2
    assert "not empty" in capsys.readouterr().err


def _build_killed_after_first_part(inputs, out: Path, seconds: float) -> tuple[list[str], int]:
    """Start a build in a subprocess, SIGKILL it once its first part is written; the command and parts done."""
    cmd = [sys.executable, "-c", "import sys; from patchsmith.cli import main; sys.exit(main(sys.argv[1:]))",
           "dataset", "build", *map(str, inputs.paths), "-o", str(out), "--seconds", str(seconds), "--sample-rate",
           "16000", "--shard-size", "1", "--workers", "2", "--captions", "none", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    first = part_path(out, "renders", 0)
    deadline = time.monotonic() + 120
    while not first.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert first.exists(), proc.stderr.read().decode()
    assert proc.returncode == -signal.SIGKILL
    return cmd, shard_count(out) - len(list(iter_pending_shards(out, "renders")))


def test_killed_build_resumes_without_losing_or_duplicating_rows(tmp_path: Path) -> None:
    inputs = make_inputs(tmp_path / "in")
    # On a loaded machine the build may outrun the kill; longer renders then leave parts to resume.
    for k, seconds in enumerate((0.5, 3.0, 8.0)):
        out = tmp_path / f"out{k}"
        cmd, done_before = _build_killed_after_first_part(inputs, out, seconds)
        total = shard_count(out)
        if done_before < total:
            break
    assert 1 <= done_before < total  # killed mid-run
    assert not (out / "data").exists()

    rerun = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert "resuming the build" in rerun.stderr
    report = json.loads((out / "stage" / "report.json").read_text())
    assert report["stages"]["renders"]["shards_done_before"] >= done_before
    renders = pq.read_table(out / "stage" / "renders").column("render_id").to_pylist()
    assert sorted(renders) == sorted(f"{i}-n60-v100" for i in inputs.unique_ids)
    data_ids = _data(out).column("render_id").to_pylist()
    assert len(data_ids) == len(set(data_ids))
    assert set(data_ids) == {f"{i}-n60-v100" for i in inputs.unique_ids if i not in inputs.silent_ids}
    assert not list(out.glob("stage/renders/*.tmp"))


def test_ray_runs_the_same_jobs(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray", reason="the 'scale' extra (ray) is not installed")
    inputs = make_inputs(tmp_path / "in")
    out = tmp_path / "out"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        report = build([str(inputs.paths[0])], out, render=RenderOptions(**FAST), shard_size=2, limit=5,
                       ray="auto", captions="none", progress=False)
    finally:
        ray.shutdown()
    assert report["stages"]["renders"]["shards_written"] == 3
    assert sorted(_data(out).column("id").to_pylist()) == sorted(
        i for i in inputs.unique_ids[:5] if i not in inputs.silent_ids)


def test_real_banks_and_captions(tmp_path: Path) -> None:
    from ...conftest import CAPTIONS

    yamaha = need(YAMAHA)
    need(CAPTIONS)
    out = tmp_path / "out"
    report = build([str(yamaha / "rom1a.syx"), str(CAPTIONS)], out, render=RenderOptions(**FAST), limit=6,
                   workers=1, captions="offline", progress=False)
    rows = _data(out).to_pylist()
    assert len(rows) == 6 and all(r["caption"] for r in rows)
    # rom1a's voices are in the source research's Yamaha CSV: its captions attach to the bank voices.
    assert {r["caption_source"] for r in rows} == {"source-research"}
    assert report["sources"]["dedup"]["duplicates"] > 0


def test_stage_report_counts_errors() -> None:
    rep = StageReport(stage="renders")
    for i in range(12):
        rep.add_error(f"e{i}")
    assert rep.errors == 12 and rep.error_examples == [f"e{i}" for i in range(10)]


def test_offline_caption_stage_runs_inside_the_build(tmp_path: Path) -> None:
    inputs = make_inputs(tmp_path / "in")
    out = tmp_path / "out"
    report = build([str(p) for p in inputs.paths], out, render=RenderOptions(**FAST), shard_size=4, limit=6,
                   workers=1, captions="offline", progress=False)
    assert report["stages"]["captions"]["shards_total"] == 2 and report["stages"]["captions"]["shards_written"] == 2
    assert part_path(out, "captions", 1).is_file()
    rows = _data(out).to_pylist()
    assert rows and all(isinstance(r["caption"], str) and r["caption"].strip() for r in rows)
    sources = {r["id"]: r["caption_source"] for r in rows}
    for i in inputs.captioned_ids & set(sources):
        assert sources[i] == "source-research"  # a caption that came with the input is kept
    assert set(sources.values()) - {"source-research"} == {"offline-descriptors"}
    assert sum(report["merge"]["caption_sources"].values()) == len(rows)


def test_render_options_refuse_notes_velocities_and_evidence_they_cannot_render() -> None:
    from pydantic import ValidationError

    for bad, why in ((dict(notes=[128]), "less than or equal to 127"),
                     (dict(velocities=[0]), "greater than or equal to 1"),
                     (dict(notes=[60, 48, 60]), "60 listed more than once"),
                     (dict(evidence=["on", "on"]), "on listed more than once")):
        with pytest.raises(ValidationError, match=why):
            RenderOptions(**bad)
    assert RenderOptions(notes=[0, 127], velocities=[1, 127], evidence=["off", "on"]).notes == [0, 127]


def test_a_model_stage_that_cannot_be_set_up_is_refused_before_any_work(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from patchsmith.examples import load_examples
    from patchsmith.synth.sysex import write_vmem

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("PATCHSMITH_API_KEY", raising=False)
    (tmp_path / "a.syx").write_bytes(write_vmem([load_examples()[0].patch]))
    out = tmp_path / "out"
    assert main(["dataset", "build", str(tmp_path / "a.syx"), "-o", str(out), "--caption-model", "m",
                 "--no-progress"]) == 2
    assert "error: no API key: set PATCHSMITH_API_KEY or OPENAI_API_KEY" in capsys.readouterr().err
    assert not out.exists()  # nothing rendered, no folder made


def test_throughput_benchmark_runs_and_prints_its_table(tmp_path: Path) -> None:
    """A small run of benchmarks/dataset.py on project-made banks: its table, with every voice rendered."""
    inputs = make_inputs(tmp_path / "in")
    out = tmp_path / "bench"
    cmd = [sys.executable, str(REPO / "benchmarks" / "dataset.py"), *map(str, inputs.paths), "--seconds", "0.3", "--workers", "2",
           "--baseline-shards", "2", "--baseline", "4", "--shard-size", "4", "--out", str(out)]
    run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    n = pq.read_table(out / "stage" / "manifest.parquet").num_rows
    assert f"build render stage, 2 workers, {n} voices: wall" in run.stdout
    assert "efficiency vs 2 x the 1-process build (target >= 80%)" in run.stdout
    assert "renders written / silent" in run.stdout and f"{n} / {len(inputs.silent_ids)}" in run.stdout
    assert sorted(pq.read_table(out / "stage" / "renders").column("id").to_pylist()) == sorted(
        pq.read_table(out / "stage" / "manifest.parquet").column("id").to_pylist())
    missing = subprocess.run([sys.executable, str(REPO / "benchmarks" / "dataset.py"), str(tmp_path / "nope.zip")],
                             cwd=REPO, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "needs the inputs" in missing.stderr
