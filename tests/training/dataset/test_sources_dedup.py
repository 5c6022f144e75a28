"""The dataset builder's inputs and dedup: folders, zips (nested), CSVs with captions, bad files, identity."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchsmith.examples import load_examples
from patchsmith.schema.patch import Patch
from patchsmith.training.dataset.dedup import dedup, manifest_table, voice_id
from patchsmith.training.dataset.sources import read_inputs

from ...conftest import YAMAHA, need
from .bank_fixtures import make_inputs


def test_inputs_are_read_counted_and_deduplicated(tmp_path: Path) -> None:
    inputs = make_inputs(tmp_path)
    voices, report = read_inputs(inputs.paths)
    assert len(voices) == inputs.voices
    assert (report.files_read, report.files_refused, report.files_ignored) == (
        inputs.files_read, inputs.files_refused, inputs.files_ignored)
    assert report.files_clean == inputs.files_read - inputs.files_refused
    refused = {r.file: r.detail for r in report.refused}
    assert list(refused) == [str(tmp_path / "banks" / "junk.syx")]
    assert "no DX7 sysex message" in refused[str(tmp_path / "banks" / "junk.syx")][0]
    files = {v.source_file for v in voices}
    assert f"{tmp_path / 'more.zip'}!/inner.zip!/deep/d.syx" in files  # a zip inside a zip
    assert f"{tmp_path / 'more.zip'}!/c.syx" in files

    rows, dreport = dedup(voices)
    assert [r.id for r in rows] == inputs.unique_ids
    assert (dreport.voices, dreport.unique) == (inputs.voices, len(inputs.unique_ids))
    assert dreport.duplicates == inputs.voices - len(inputs.unique_ids)
    by_id = {r.id: r for r in rows}
    # The examples occur in a.syx, again in b.syx under other names, and (two of them) in the CSV.
    first = by_id[voice_id(load_examples()[0].patch)]
    assert first.n_occurrences == 3 and first.source_file.endswith("a.syx") and first.source_index == 0
    assert {r.id for r in rows if r.caption} == inputs.captioned_ids
    assert {r.caption_source for r in rows if r.caption} == {"source-research"}
    assert sum(r.n_occurrences for r in rows) == inputs.voices
    table = manifest_table(rows)
    assert table.column_names == ["id", "name", "patch", "source_file", "source_index", "n_occurrences", "caption",
                                  "caption_source"]
    assert all(len(i) == 16 and int(i, 16) >= 0 for i in table.column("id").to_pylist())


def test_bad_inputs_are_reported_not_raised(tmp_path: Path) -> None:
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 not really a zip")
    (tmp_path / "empty.syx").write_bytes(b"")
    bad_csv = tmp_path / "DX7_bad.csv"
    bad_csv.write_text("id,name\n1,x\n")
    voices, report = read_inputs([tmp_path / "nope", tmp_path / "broken.zip", tmp_path / "empty.syx", bad_csv])
    assert voices == []
    reasons = {Path(r.file).name: " ".join(r.detail) for r in report.refused}
    assert set(reasons) == {"nope", "broken.zip", "empty.syx", "DX7_bad.csv"}
    assert "no such file" in reasons["nope"]
    assert "not a readable zip" in reasons["broken.zip"]
    assert "empty file" in reasons["empty.syx"]
    assert "missing column" in reasons["DX7_bad.csv"]


def test_identity_ignores_the_name_and_core_ignores_voice_keys() -> None:
    p = load_examples()[0].patch
    renamed = Patch(**(p.to_dict(full=True) | {"name": "OTHER"}))
    assert voice_id(renamed) == voice_id(p) and voice_id(renamed, "full") == voice_id(p, "full")
    lfo = p.to_dict(full=True)
    lfo["lfo"] = dict(lfo["lfo"]) | {"speed": (lfo["lfo"]["speed"] + 7) % 100}
    other = Patch(**lfo)
    assert voice_id(other) == voice_id(p)  # core identity: the 12 core keys only
    assert voice_id(other, "full") != voice_id(p, "full")
    coarse = p.to_dict(full=True)
    coarse["coarse"] = [(c + 1) % 32 for c in coarse["coarse"]]
    assert voice_id(Patch(**coarse)) != voice_id(p)
    with pytest.raises(ValueError, match="allowed core or full"):
        voice_id(p, "names")


def test_factory_bank_reads_clean() -> None:
    bank = need(YAMAHA) / "rom1a.syx"
    voices, report = read_inputs([bank])
    assert len(voices) == 32 and report.files_clean == 1 and report.files_refused == 0
    rows, dreport = dedup(voices)
    assert dreport.unique == len(rows) == 32
    assert rows[0].name.strip() and rows[0].source_index == 0


def test_tolerated_repairs_are_counted_by_kind(tmp_path: Path) -> None:
    from patchsmith.synth.sysex import write_vmem

    data = bytearray(write_vmem([e.patch for e in load_examples()]))
    data[-2] ^= 0x01  # a stale checksum, as in many real files
    (tmp_path / "stale.syx").write_bytes(bytes(data))
    voices, report = read_inputs([tmp_path])
    assert len(voices) == 32 and report.files_tolerated == 1 and report.files_clean == 0
    assert report.tolerated_kinds == {"checksum mismatch": 1}
    assert "checksum mismatch" in report.not_clean[0].detail[0]


def test_a_csv_inside_a_zip_is_read_with_its_captions_and_bad_text_is_refused(tmp_path: Path) -> None:
    import zipfile

    inputs = make_inputs(tmp_path / "in")
    csv_dir = tmp_path / "in" / "csv"
    with zipfile.ZipFile(tmp_path / "research.zip", "w") as z:
        for f in sorted(csv_dir.iterdir()):
            z.write(f, f"research/{f.name}")
        z.writestr("research/DX7_bad.csv", b"id,name,file_path,patch_number,patch_data\n1,\xff\xfe,x,1,{}\n")
    voices, report = read_inputs([tmp_path / "research.zip"])
    zipped = {v.source_index: v for v in voices}
    on_disk, _ = read_inputs([csv_dir])
    assert [v.patch for v in voices] == [v.patch for v in on_disk] and len(voices) == 3
    assert all(v.source_file == f"{tmp_path / 'research.zip'}!/research/DX7_T.csv" for v in voices)
    assert {voice_id(v.patch) for v in zipped.values() if v.caption} == inputs.captioned_ids
    refused = {Path(r.file).name: r.detail[0] for r in report.refused}
    assert list(refused) == ["DX7_bad.csv"]
    assert refused["DX7_bad.csv"].startswith(f"{tmp_path / 'research.zip'}!/research/DX7_bad.csv: not a readable CSV "
                                             "file ('utf-8' codec can't decode byte 0xff")
