"""`patchsmith convert`: syx <-> json <-> source-research CSV, refusals, and atomic output."""

from __future__ import annotations

import json

import pytest
from tests.cli.cli_support import EXAMPLES, bank, cli, epiano_patch, examples, listing, proc, write_json  # noqa: F401
from tests.conftest import CAPTIONS, YAMAHA, need

from patchsmith.schema.compact import dumps_compact, loads_patch
from patchsmith.schema.source_research import read_source_csv
from patchsmith.synth.sysex import read_sysex
from patchsmith.synth.sysex_reader import read_bank_file


def same_voice(a, b) -> bool:
    """Equal patches, up to the DX7's padding of names to 10 characters."""
    da, db = a.to_dict(), b.to_dict()
    return (da.pop("name", "") or "").rstrip() == (db.pop("name", "") or "").rstrip() and da == db


def test_json_to_single_voice_syx_and_back(cli, tmp_path, examples):
    for ex in examples:
        r = cli("convert", ex.path, f"{ex.key}.syx")
        assert r.code == 0, r.err
        data = (tmp_path / f"{ex.key}.syx").read_bytes()
        assert len(data) == 163 and "single voice" in r.out
        r = cli("convert", f"{ex.key}.syx", f"{ex.key}.json")
        assert r.code == 0, r.err
        text = (tmp_path / f"{ex.key}.json").read_text()
        back = loads_patch(text)
        assert same_voice(back, ex.patch)
        assert text == dumps_compact(back) + "\n"  # canonical compact JSON


def test_several_voices_make_a_bank(cli, tmp_path, epiano_patch):
    write_json(tmp_path / "two.json", [epiano_patch, dict(epiano_patch, name="SECOND")])
    r = cli("convert", "two.json", "two.syx")
    assert r.code == 0, r.err
    read = read_sysex((tmp_path / "two.syx").read_bytes())
    assert read.kind == "bank" and read.voices[1].name == "SECOND    " and read.voices[2].name == "INIT VOICE"
    r = cli("convert", EXAMPLES / "bell.json", "bell-bank.syx", "--bank")
    assert r.code == 0 and len((tmp_path / "bell-bank.syx").read_bytes()) == 4104


def test_bank_to_folder_list_and_single_voice(cli, bank, tmp_path, examples):
    r = cli("convert", bank, "patches")
    assert r.code == 0, r.err
    files = listing(tmp_path / "patches")
    assert len(files) == 32 and files[0] == "01-fm-bass.json"
    assert same_voice(loads_patch((tmp_path / "patches" / files[0]).read_text()), examples[0].patch)
    r = cli("convert", bank, "all.json")
    assert r.code == 0, r.err
    voices = json.loads((tmp_path / "all.json").read_text())
    assert isinstance(voices, list) and len(voices) == 32
    r = cli("convert", f"{bank}:3", "three.json")
    assert r.code == 0 and same_voice(loads_patch((tmp_path / "three.json").read_text()), examples[2].patch)
    # And the folder or list converts back to the same bank bytes.
    assert cli("convert", "all.json", "again.syx").code == 0
    assert (tmp_path / "again.syx").read_bytes() == bank.read_bytes()


def test_source_research_csv_round_trip(cli, bank, tmp_path, examples):
    r = cli("convert", bank, "rows.csv")
    assert r.code == 0, r.err
    assert "dropped" in r.err  # the examples use LFO, pitch EG and rate scaling, which the format cannot hold
    rows = read_source_csv(tmp_path / "rows.csv")
    assert len(rows) == 32 and all(row.error is None for row in rows)
    assert [row.patch_number for row in rows] == list(range(32))
    for row, ex in zip(rows, examples):
        assert row.patch.core() == ex.patch.core()
    header = (tmp_path / "rows.csv").read_text().splitlines()[0]
    assert header == ",index,patch_number,name,patch_data,file_path,syx_file,has_fixed_freqs,id,wav_path,inaudible"
    r = cli("convert", "rows.csv:2", "two.json")
    assert r.code == 0, r.err
    assert loads_patch((tmp_path / "two.json").read_text()).core() == examples[1].patch.core()


def test_non_dx7_topology_is_refused_for_sysex_and_nothing_changes(cli, tmp_path, epiano_patch):
    (tmp_path / "out.syx").write_bytes(b"old contents")
    epiano_patch["modmatrix"][0][5] = 1
    write_json(tmp_path / "odd.json", epiano_patch)
    r = cli("convert", "odd.json", "out.syx")
    r.assert_clean_failure()
    assert "not one of the 32 DX7 algorithms" in r.err
    assert "the nearest is algorithm 5 (1 matrix entry differs)" in r.err
    assert (tmp_path / "out.syx").read_bytes() == b"old contents"
    assert listing(tmp_path) == ["odd.json", "out.syx"]
    # Any renderable topology still converts to JSON.
    assert cli("convert", "odd.json", "odd-copy.json").code == 0


def test_every_bad_voice_of_a_list_is_reported(cli, tmp_path, epiano_patch):
    odd = json.loads(json.dumps(epiano_patch))
    odd["modmatrix"][0][5] = 1
    write_json(tmp_path / "list.json", [epiano_patch, odd, dict(epiano_patch, ol=[100] * 6)])
    r = cli("convert", "list.json", "out.syx")
    r.assert_clean_failure()  # values that do not even read come first, one line each
    assert r.error_lines == [f"error: list.json: /2/ol/{i}: found 100, allowed integer 0..99" for i in range(6)]
    write_json(tmp_path / "list.json", [odd, epiano_patch, odd])
    r = cli("convert", "list.json", "out.syx")
    r.assert_clean_failure()  # then every voice that has no sysex form
    assert [line.split(":", 2)[1] for line in r.error_lines] == [" list.json/0 (GLASS EP)", " list.json/2 (GLASS EP)"]
    assert all("nearest is algorithm 5" in line for line in r.error_lines)
    assert not (tmp_path / "out.syx").exists()


def test_more_than_32_voices_do_not_fit_a_bank(cli, tmp_path, epiano_patch):
    write_json(tmp_path / "many.json", [epiano_patch] * 33)
    r = cli("convert", "many.json", "many.syx")
    r.assert_clean_failure()
    assert "33 voices, but a DX7 bank holds 32" in r.err and not (tmp_path / "many.syx").exists()


@pytest.mark.parametrize("src, out, fragment", [
    ("missing.syx", "x.json", "missing.syx: no such file"),
    ("junk.syx", "x.json", "junk.syx: no DX7 sysex message found"),
    ("p.json", "x.wav", "unknown output type '.wav'"),
    ("p.json", "nowhere/x.json", "the folder nowhere does not exist"),
    ("bad.csv", "x.json", "missing column(s)"),
])
def test_bad_conversions_fail_cleanly(cli, tmp_path, epiano_patch, src, out, fragment):
    write_json(tmp_path / "p.json", epiano_patch)
    (tmp_path / "junk.syx").write_bytes(b"junk" * 100)
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    r = cli("convert", src, out)
    r.assert_clean_failure()
    assert fragment in r.err
    assert not (tmp_path / out).exists()
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_a_broken_csv_row_is_reported_with_its_place(cli, tmp_path):
    (tmp_path / "rows.csv").write_text("id,name,file_path,patch_number,patch_data\n7,X,f.syx,0,\"{'name': 'X'}\"\n")
    r = cli("convert", "rows.csv", "x.json")
    r.assert_clean_failure()
    assert r.error_lines[0].startswith("error: rows.csv:1 'X' (id 7): invalid source-research patch: missing key(s)")


def test_convert_as_a_subprocess(proc, tmp_path, epiano_patch):
    r = proc("convert", EXAMPLES / "organ.json", "organ.syx")
    assert r.code == 0 and (tmp_path / "organ.syx").stat().st_size == 163
    epiano_patch["outmatrix"] = [1, 1, 1, 0, 1, 0]
    write_json(tmp_path / "odd.json", epiano_patch)
    r = proc("convert", "odd.json", "odd.syx")
    r.assert_clean_failure()
    assert "nearest is algorithm" in r.err and not (tmp_path / "odd.syx").exists()


def test_factory_bank_round_trips_through_json(cli, tmp_path):
    rom = need(YAMAHA / "rom1a.syx")
    assert cli("convert", rom, "rom1a.json").code == 0
    assert cli("convert", "rom1a.json", "rom1a.syx").code == 0
    assert (tmp_path / "rom1a.syx").read_bytes() == rom.read_bytes()[: len((tmp_path / "rom1a.syx").read_bytes())]
    assert read_bank_file(tmp_path / "rom1a.syx").voices == read_bank_file(rom).voices


def test_source_research_rows_match_their_bank_voices(cli, tmp_path):
    csv_path = need(CAPTIONS / "DX7_YAMAHA_train.csv")
    rows = read_source_csv(csv_path)
    number, row = next((i + 1, r) for i, r in enumerate(rows)
                       if r.patch is not None and not any(r.patch.fixed_freq) and "rom1a" in r.file_path)
    assert cli("convert", f"{csv_path}:{number}", "row.json").code == 0
    assert cli("convert", f"{need(YAMAHA / 'rom1a.syx')}:{row.patch_number + 1}", "voice.json").code == 0
    from_row = loads_patch((tmp_path / "row.json").read_text())
    from_bank = loads_patch((tmp_path / "voice.json").read_text())
    assert from_row.core() == from_bank.core()
