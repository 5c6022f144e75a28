"""Merge: captions and CoT parts joined by shard, silent rows dropped, ``--require-cot``, ``dataset merge/info``."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from patchsmith.cli import main
from patchsmith.training.dataset.build import build
from patchsmith.training.dataset.merge import merge
from patchsmith.training.dataset.render_jobs import RenderOptions
from patchsmith.training.dataset.stages import (StageError, part_path, read_part, shard_count, shard_rows, write_part)

from .bank_fixtures import make_inputs


@pytest.fixture
def built(tmp_path: Path) -> tuple[Path, object]:
    inputs = make_inputs(tmp_path / "in")
    out = tmp_path / "out"
    build([str(p) for p in inputs.paths], out, render=RenderOptions(seconds=0.3, sample_rate=16000), shard_size=5,
          workers=1, captions="none", progress=False)
    return out, inputs


def _write_stage_parts(out: Path, cot_every: int) -> dict[str, str]:
    """Write a captions part for every shard (a model caption for each voice) and CoT parts that keep every
    ``cot_every``-th voice; returns id -> cot for the kept ones."""
    kept: dict[str, str] = {}
    for k in range(shard_count(out)):
        ids = shard_rows(out, k).column("id").to_pylist()
        write_part(part_path(out, "captions", k), pa.table({
            "id": ids, "caption": [f"Model caption of {i}." for i in ids], "caption_source": ["model:test"] * len(ids),
            "caption_error": pa.array([None] * len(ids), type=pa.string())}))
        cots = []
        for j, i in enumerate(ids):
            cot = f"\\cot{{reasoning for {i}}}" if (k * 5 + j) % cot_every == 0 else None
            cots.append(cot)
            if cot:
                kept[i] = cot
        write_part(part_path(out, "cot", k), pa.table({
            "id": ids, "cot": pa.array(cots, type=pa.string()), "cot_analysis": pa.array([None] * len(ids), pa.string()),
            "cot_source": ["model:teacher"] * len(ids),
            "cot_error": [None if c else "final JSON differs from ground truth at /ol/0" for c in cots]}))
    return kept


def test_merge_joins_captions_and_cot_and_require_cot_filters(built: tuple[Path, object]) -> None:
    out, inputs = built
    kept = _write_stage_parts(out, cot_every=3)
    counts = merge(out, progress=False)
    rows = pq.read_table(out / "data").to_pylist()
    audible = [i for i in inputs.unique_ids if i not in inputs.silent_ids]
    assert sorted(r["id"] for r in rows) == sorted(audible)
    assert all(r["caption"] == f"Model caption of {r['id']}." and r["caption_source"] == "model:test" for r in rows)
    assert {r["id"]: r["cot"] for r in rows if r["cot"]} == {i: c for i, c in kept.items() if i in audible}
    assert counts["cot_kept"] == len(kept) and counts["cot_rejected"] == len(inputs.unique_ids) - len(kept)
    assert counts["caption_sources"] == {"model:test": len(audible)} and counts["silent_voices"] == 1

    only = merge(out, require_cot=True, progress=False)
    rows = pq.read_table(out / "data").to_pylist()
    assert sorted(r["id"] for r in rows) == sorted(i for i in kept if i in audible)
    assert only["without_cot"] == len(audible) - len(rows)
    files = sorted(p.name for p in (out / "data").iterdir())
    assert files == [f"train-{i:05d}-of-{len(files):05d}.parquet" for i in range(len(files))]
    assert not list(out.glob(".data*"))  # no temporary merge folder left


def test_merge_and_info_commands(built: tuple[Path, object], capsys: pytest.CaptureFixture[str]) -> None:
    out, inputs = built
    _write_stage_parts(out, cot_every=2)
    assert main(["dataset", "merge", str(out), "--require-cot", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "cot:" in text and "kept" in text
    report = json.loads((out / "stage" / "report.json").read_text())
    assert report["merge"]["require_cot"] is True
    assert "| rows with a chain of thought |" in (out / "README.md").read_text()
    assert main(["dataset", "info", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["merge"]["rows"] == report["merge"]["rows"]
    assert main(["dataset", "merge", str(out.parent)]) == 2
    assert "not a dataset build folder" in capsys.readouterr().err


def test_stage_helpers(built: tuple[Path, object]) -> None:
    out, inputs = built
    n = shard_count(out)
    assert n == -(-len(inputs.unique_ids) // 5)
    assert shard_rows(out, n - 1).num_rows == len(inputs.unique_ids) - 5 * (n - 1)
    assert read_part(out, "captions", 0) is None and read_part(out, "renders", 0).num_rows == 5
    with pytest.raises(StageError, match="out of range"):
        shard_rows(out, n)
    with pytest.raises(StageError, match="unknown stage"):
        part_path(out, "audio", 0)


def test_manifest_row_groups_match_shards_and_audio_is_stored_as_is(built: tuple[Path, object]) -> None:
    out, inputs = built
    n = shard_count(out)
    manifest = pq.ParquetFile(out / "stage" / "manifest.parquet")
    assert manifest.metadata.num_row_groups == n  # a worker reads its shard's row group only
    table = manifest.read()
    every = table.column("id").to_pylist()
    assert [i for k in range(n) for i in shard_rows(out, k).column("id").to_pylist()] == every == inputs.unique_ids
    # A manifest in other row groups (one, or sizes unrelated to the shards) gives the same shards.
    for groups in (None, 3):
        pq.write_table(table, out / "stage" / "manifest.parquet", row_group_size=groups)
        assert [i for k in range(n) for i in shard_rows(out, k, ["id"]).column("id").to_pylist()] == every
    # FLAC bytes are written without zstd or a dictionary (they are compressed already); the rest with zstd.
    meta = pq.ParquetFile(part_path(out, "renders", 0)).metadata.row_group(0)
    codecs = {meta.column(i).path_in_schema: meta.column(i).compression for i in range(meta.num_columns)}
    assert codecs["audio.bytes"] == "UNCOMPRESSED" and codecs["descriptors"] == codecs["id"] == "ZSTD"


def test_write_part_compresses_every_column_but_binary_ones(tmp_path: Path) -> None:
    table = pa.table({"ids": [[1, 2], [3]], "blob": [b"x", b"y"], "st": [{"k": "a", "raw": b"z"}, {"k": "b", "raw": b""}],
                      "m": pa.array([[("a", 1)], [("b", 2)]], type=pa.map_(pa.string(), pa.int64()))})
    path = write_part(tmp_path / "part.parquet", table)
    meta = pq.ParquetFile(path).metadata.row_group(0)
    codecs = {meta.column(i).path_in_schema: meta.column(i).compression for i in range(meta.num_columns)}
    assert codecs == {"ids.list.element": "ZSTD", "blob": "UNCOMPRESSED", "st.k": "ZSTD", "st.raw": "UNCOMPRESSED",
                      "m.key_value.key": "ZSTD", "m.key_value.value": "ZSTD"}
    assert pq.read_table(path).equals(table)


def test_combine_builds_drops_taken_render_ids(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inputs = make_inputs(tmp_path / "in")
    fast = dict(seconds=0.3, sample_rate=16000)
    a, b = tmp_path / "a", tmp_path / "b"
    build([str(inputs.paths[0])], a, render=RenderOptions(**fast), limit=4, workers=1, captions="none",
          progress=False)
    build([str(p) for p in inputs.paths], b, render=RenderOptions(evidence=["off"], evidence_seconds=0.2, **fast),
          shard_size=4, workers=1, captions="none", progress=False)
    into = tmp_path / "both"
    assert main(["dataset", "merge", str(a), str(b), "--into", str(into), "--no-progress"]) == 0
    assert "duplicates" in capsys.readouterr().out
    rows_a = pq.read_table(a / "data").column("render_id").to_pylist()
    rows_b = pq.read_table(b / "data").column("render_id").to_pylist()
    combined = pq.read_table(into / "data")
    ids = combined.column("render_id").to_pylist()
    assert sorted(ids) == sorted(set(rows_a) | set(rows_b)) and len(ids) == len(set(ids))
    result = json.loads((into / "combine.json").read_text())
    assert result["duplicates"] == len(set(rows_a) & set(rows_b)) > 0
    assert result["rows_per_build"] == {str(a): len(rows_a), str(b): len(rows_b) - result["duplicates"]}
    # The rows from the build without evidence have null evidence columns, so one schema holds every file.
    assert "evidence_off" in combined.column_names
    assert all(r["evidence_off"] is None for r in combined.to_pylist() if r["render_id"] in rows_a)
    assert "| rows taken |" in (into / "README.md").read_text()
    assert main(["dataset", "merge", str(a), str(b)]) == 2
    assert "--into" in capsys.readouterr().err
    assert main(["dataset", "merge", str(a), str(tmp_path / "nothing"), "--into", str(into)]) == 2
    assert "not a finished build" in capsys.readouterr().err


def test_stale_temp_files_of_a_killed_run_are_removed_and_nothing_else(built: tuple[Path, object]) -> None:
    from patchsmith.training.dataset.stages import remove_stale_temp_files

    out, _ = built
    stale = [out / "stage" / "renders" / "part-00000.parquet.x1.tmp", out / "stage" / "report.json.x2.tmp",
             out / "stage" / "cache" / "captions" / "ab" / "ab12.json.x3.tmp", out / "audio" / "ab" / "ab-n60.flac.x4.tmp"]
    for p in stale:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"half")
    kept = sorted(p for p in out.rglob("*") if p.is_file() and p not in stale)
    assert remove_stale_temp_files(out) == len(stale)
    assert not any(p.exists() for p in stale)
    assert sorted(p for p in out.rglob("*") if p.is_file()) == kept
