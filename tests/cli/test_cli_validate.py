"""`patchsmith validate`: one line per problem with its JSON pointer, exit 2 when invalid, lenient mode."""

from __future__ import annotations

import json

from tests.cli.cli_support import EXAMPLES, bank, cli, epiano_patch, examples, proc, write_json  # noqa: F401


def test_valid_example_and_patch(cli, tmp_path, epiano_patch):
    r = cli("validate", EXAMPLES / "epiano.json")
    assert r.code == 0 and r.out.strip().endswith("epiano.json: valid (DX7 algorithm 5)") and r.err == ""
    write_json(tmp_path / "p.json", epiano_patch)
    assert cli("validate", "p.json").out.strip() == "p.json: valid (DX7 algorithm 5)"


def test_problems_one_per_line_on_stderr(cli, tmp_path, epiano_patch):
    epiano_patch["eg_rate"][2][4] = 120
    epiano_patch["detune"] = [0, 0, 0]
    del epiano_patch["transpose"]
    epiano_patch["colour"] = "red"
    write_json(tmp_path / "p.json", epiano_patch)
    r = cli("validate", "p.json")
    r.assert_clean_failure()
    assert r.out == ""
    assert r.error_lines[0].startswith("error: p.json: /detune: found [0,0,0]")
    assert len(r.error_lines) == 4
    assert any(line.startswith("error: p.json: /transpose: found missing") for line in r.error_lines)
    assert any(line.startswith("error: p.json: /colour: found \"red\"") for line in r.error_lines)
    assert "error: p.json: /eg_rate/2/4: found 120, allowed integer 0..99" in r.error_lines


def test_example_wrapper_problems_point_into_the_file(cli, tmp_path):
    data = json.loads((EXAMPLES / "bell.json").read_text())
    data["captions"] = ["ok", ""]
    data["render"]["note"] = 300
    data["patch"]["feedback"] = 9
    write_json(tmp_path / "ex.json", data)
    r = cli("validate", "ex.json")
    r.assert_clean_failure()
    assert r.error_lines == [
        "error: ex.json: /captions/1: found '', allowed a non-empty string",
        "error: ex.json: /render/note: found 300, allowed integer 0..127",
        "error: ex.json: /patch/feedback: found 9, allowed integer 0..7",
    ]


def test_lenient_mode_accepts_and_reports_coercions(cli, tmp_path, epiano_patch):
    epiano_patch["feedback"] = 5.0
    epiano_patch["transpose"] = "0"
    write_json(tmp_path / "p.json", epiano_patch)
    strict = cli("validate", "p.json")
    strict.assert_clean_failure()
    assert len(strict.error_lines) == 2
    lenient = cli("validate", "p.json", "--lenient")
    assert lenient.code == 0, lenient.err
    lines = lenient.out.splitlines()
    assert lines[0] == "p.json: valid (DX7 algorithm 5)" and len(lines) == 3
    assert all(line.startswith("  lenient: /") for line in lines[1:])


def test_json_report(cli, tmp_path, epiano_patch):
    epiano_patch["modmatrix"][0][5] = 1  # OP6 -> OP1 as well: no longer a DX7 algorithm
    epiano_patch["ol"][3] = 100
    write_json(tmp_path / "p.json", epiano_patch)
    r = cli("validate", "p.json", "--json")
    assert r.code == 2
    report = json.loads(r.out)
    item = report["items"][0]
    assert report["valid"] is False and item["algorithm"] is None
    assert item["nearest_algorithm"] == 5 and item["nearest_distance"] == 1
    assert item["problems"] == [{"pointer": "/ol/3", "found": "100", "allowed": "integer 0..99",
                                 "message": "out of range", "line": "/ol/3: found 100, allowed integer 0..99"}]


def test_a_list_reports_each_item_by_index(cli, tmp_path, epiano_patch):
    bad = dict(epiano_patch, feedback=8)
    write_json(tmp_path / "list.json", [epiano_patch, bad])
    r = cli("validate", "list.json")
    r.assert_clean_failure()
    assert r.error_lines == ["error: list.json: /1/feedback: found 8, allowed integer 0..7"]
    assert "list.json/0: valid (DX7 algorithm 5)" in r.out
    assert cli("validate", "list.json:1").code == 0


def test_non_dx7_topology_is_valid_but_says_so(cli, tmp_path, epiano_patch):
    epiano_patch["modmatrix"][0][5] = 1
    write_json(tmp_path / "p.json", epiano_patch)
    r = cli("validate", "p.json")
    assert r.code == 0 and "not a DX7 algorithm; nearest is 5" in r.out


def test_sysex_and_garbage(cli, bank, tmp_path):
    r = cli("validate", bank)
    assert r.code == 0 and "valid (32 voices)" in r.out
    (tmp_path / "junk.syx").write_bytes(b"\x00" * 10)
    r = cli("validate", "junk.syx")
    r.assert_clean_failure()
    assert "junk.syx: no DX7 sysex message found" in r.err
    for args, fragment in [(["missing.json"], "missing.json: no such file"),
                           ([f"{bank}:40"], "voice number 40 is out of range")]:
        r = cli("validate", *args)
        r.assert_clean_failure()
        assert fragment in r.err


def test_bad_json_text(cli, tmp_path):
    (tmp_path / "p.json").write_text('{"feedback": 1,}')
    r = cli("validate", "p.json")
    r.assert_clean_failure()
    assert r.error_lines == ["error: p.json: invalid JSON: Expecting property name enclosed in double quotes at line 1 "
                             "column 16"]


def test_validate_as_a_subprocess(proc, tmp_path, epiano_patch):
    epiano_patch["ol"] = [99, 99, 99, 99, 99, 100]
    epiano_patch["feedback"] = -1
    write_json(tmp_path / "p.json", epiano_patch)
    r = proc("validate", "p.json")
    r.assert_clean_failure()
    assert r.err.splitlines() == ["error: p.json: /feedback: found -1, allowed integer 0..7",
                                  "error: p.json: /ol/5: found 100, allowed integer 0..99"]
    good = proc("validate", EXAMPLES / "organ.json")
    assert good.code == 0 and "valid (DX7 algorithm 32)" in good.out


def test_repeated_keys_are_problems_not_silently_merged(cli, tmp_path):
    text = (EXAMPLES / "organ.json").read_text().replace('"feedback": 0,', '"feedback": 0, "feedback": 7,')
    (tmp_path / "dup.json").write_text(text)
    r = cli("validate", "dup.json")
    r.assert_clean_failure()
    assert r.error_lines == ["error: dup.json: /patch/feedback: found duplicate key, allowed each key once"]
    r = cli("validate", "dup.json", "--lenient")
    assert r.code == 0 and "  lenient: /patch/feedback: read duplicate key" in r.out
    assert cli("render", "dup.json").code == 2
