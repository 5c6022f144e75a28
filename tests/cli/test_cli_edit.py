"""`patchsmith edit`: semantic flags and --set in command-line order, the printed diff, and clean failures."""

from __future__ import annotations

import json

import pytest
from tests.cli.cli_support import EXAMPLES, bank, cli, epiano_patch, examples, listing, proc, write_json  # noqa: F401

from patchsmith.schema.compact import dumps_compact, loads_patch
from patchsmith.schema.validate import parse_patch, validate
from patchsmith.synth.edits import apply_edits
from patchsmith.synth.sysex import read_sysex


def change_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("/")]


def expected_lines(result) -> list[str]:
    return [f"{c.path}: {json.dumps(c.old)} -> {json.dumps(c.new)}" for c in result.changes]


def test_semantic_flags_write_a_valid_patch_and_print_its_changes(cli, tmp_path, epiano_patch):
    write_json(tmp_path / "ep.json", epiano_patch)
    r = cli("edit", "ep.json", "--brighter", "2", "--shorter-decay", "1", "-o", "new.json")
    assert r.code == 0, r.err
    text = (tmp_path / "new.json").read_text()
    new = loads_patch(text)
    assert validate(json.loads(text)).valid and text == dumps_compact(new) + "\n"
    expected = apply_edits(parse_patch(epiano_patch), [{"op": "adjust", "quality": "brightness", "amount": 2},
                                                       {"op": "adjust", "quality": "decay", "amount": -1}])
    assert new == expected.patch
    lines = change_lines(r.out)
    assert lines and lines == expected_lines(expected)
    # The printed lines are exactly the difference between the old and the new file.
    old = parse_patch(epiano_patch).model_dump()
    for line in lines:
        pointer, values = line.split(": ", 1)
        before, after = (json.loads(v) for v in values.split(" -> "))
        node_old, node_new = old, new.model_dump()
        for key in pointer.strip("/").split("/"):
            key = int(key) if key.isdigit() else key
            node_old, node_new = node_old[key], node_new[key]
        assert (node_old, node_new) == (before, after)
    assert "note: --brighter 2:" in r.out and "note: --shorter-decay 1:" in r.out
    assert f"wrote new.json (patch JSON, {len(lines)} parameters changed)" in r.out


def test_flags_apply_in_command_line_order(cli, tmp_path, epiano_patch):
    write_json(tmp_path / "ep.json", epiano_patch)
    patch = parse_patch(epiano_patch)
    set_ol = {"op": "set", "path": "/ol/1", "value": 50}
    darker = {"op": "adjust", "quality": "brightness", "amount": -1}
    assert cli("edit", "ep.json", "--set", "/ol/1=50", "--darker", "1", "-o", "a.json").code == 0
    assert cli("edit", "ep.json", "--darker", "1", "--set", "/ol/1=50", "-o", "b.json").code == 0
    a, b = (loads_patch((tmp_path / n).read_text()) for n in ("a.json", "b.json"))
    assert a == apply_edits(patch, [set_ol, darker]).patch
    assert b == apply_edits(patch, [darker, set_ol]).patch
    assert a.ol[1] != b.ol[1] and b.ol[1] == 50


def test_every_flag_maps_to_its_quality_and_sign(cli, tmp_path, epiano_patch):
    from patchsmith.cli.edit import QUALITY_FLAGS

    write_json(tmp_path / "ep.json", epiano_patch)
    patch = parse_patch(epiano_patch)
    args, edits = [], []
    for more, less, quality, _ in QUALITY_FLAGS:
        args += [f"--{more}", "1", f"--{less}", "2"]
        edits += [{"op": "adjust", "quality": quality, "amount": 1}, {"op": "adjust", "quality": quality, "amount": -2}]
    r = cli("edit", "ep.json", *args, "--json", "-o", "all.json")
    assert r.code == 0, r.err
    expected = apply_edits(patch, edits)
    data = json.loads(r.out)
    assert data["changes"] == [c.model_dump() for c in expected.changes]
    assert parse_patch(data["patch"]) == expected.patch == loads_patch((tmp_path / "all.json").read_text())
    assert data["output"] == "all.json" and len(data["notes"]) == len(expected.notes)


def test_set_takes_json_values_and_bare_words(cli, tmp_path):
    r = cli("edit", EXAMPLES / "epiano.json", "--set", "/eg_rate/3/0=60", "--set", "/lfo/wave=sine",
            "--set", "/lfo/speed=40", "-o", "s.json")
    assert r.code == 0, r.err
    new = loads_patch((tmp_path / "s.json").read_text())
    assert new.eg_rate[3][0] == 60 and new.lfo.wave == "sine" and new.lfo.speed == 40
    assert '/lfo/wave: "triangle" -> "sine"' in r.out
    r = cli("edit", "s.json", "--set", '/lfo/wave="square"', "-o", "t.json")
    assert r.code == 0, r.err
    assert loads_patch((tmp_path / "t.json").read_text()).lfo.wave == "square"
    r = cli("edit", "t.json", "--set", "/lfo/wave=square", "-o", "u.json")  # already so: no change
    assert r.code == 0 and change_lines(r.out) == [] and "0 parameters changed" in r.out


def test_syx_output_is_a_single_voice_of_the_new_patch(cli, tmp_path, bank):
    r = cli("edit", f"{bank}:1", "--longer-release", "2", "-o", "new.syx")
    assert r.code == 0, r.err
    data = (tmp_path / "new.syx").read_bytes()
    assert len(data) == 163 and "single-voice sysex" in r.out
    read = read_sysex(data)
    source = read_sysex(bank.read_bytes()).voices[0]
    expected = apply_edits(source, [{"op": "adjust", "quality": "release", "amount": 2}])
    assert read.voices[0] == expected.patch and change_lines(r.out) == expected_lines(expected)


def test_render_prints_the_descriptor_change(cli, tmp_path):
    r = cli("edit", EXAMPLES / "epiano.json", "--brighter", "3", "--render", "-o", "b.json")
    assert r.code == 0, r.err
    assert "before -> after" in r.out
    line = next(s for s in r.out.splitlines() if s.strip().startswith("centroid_hz:"))
    before, after = (float(v.split()[0]) for v in line.split(":", 1)[1].split(" -> "))
    assert after > before  # brighter raises the spectral centroid
    r = cli("edit", EXAMPLES / "epiano.json", "--brighter", "1", "--render", "--json", "-o", "c.json")
    data = json.loads(r.out)
    assert set(data["descriptors"]) == {"before", "after"} and "centroid_hz" in data["descriptors"]["after"]


@pytest.mark.parametrize("args, lines", [
    (("--brighter", "4"), ["--brighter: found '4', allowed a number of steps 1..3"]),
    (("--darker", "0"), ["--darker: found '0', allowed"]),
    (("--softer", "-1", "--louder", "x"), ["--softer: found '-1'", "--louder: found 'x'"]),
    (("--set", "/eg_rate/9/0=60"), ['--set /eg_rate/9/0=60: path: found "/eg_rate/9/0", allowed /eg_rate/<0..3>/<0..5>']),
    (("--set", "/nothing=1"), ["--set /nothing=1: path: found"]),
    (("--set", "/eg_rate/0/0=abc", "--set", "/lfo/wave=squarish"),
     ['--set /eg_rate/0/0=abc: value: found "abc", allowed integer 0..99',
      '--set /lfo/wave=squarish: value: found "squarish", allowed one of']),
    (("--set", "/eg_rate/0/0=1.5"), ["--set /eg_rate/0/0=1.5: value: found 1.5, allowed integer 0..99"]),
    (("--set", "/ol/0=true", "--set", "/ol/1=[1]"), ["--set /ol/0=true: value: found true, allowed integer 0..99",
                                                   "--set /ol/1=[1]: value: found [1], allowed integer 0..99"]),
    (("--set", "eg_rate"), ["--set eg_rate: allowed POINTER=VALUE"]),
    ((), ["no edit given"]),
])
def test_bad_edits_fail_cleanly_and_write_nothing(cli, tmp_path, args, lines):
    r = cli("edit", EXAMPLES / "epiano.json", *args, "-o", "new.json")
    r.assert_clean_failure()
    assert len(r.error_lines) == len(lines), r.err
    for line, fragment in zip(r.error_lines, lines):
        assert fragment in line
    assert listing(tmp_path) == []


def test_bad_outputs_and_sources_fail_cleanly(cli, tmp_path, epiano_patch, bank):
    r = cli("edit", EXAMPLES / "epiano.json", "--louder", "1", "-o", "new.txt")
    r.assert_clean_failure()
    assert "allowed a .json" in r.err and ".syx" in r.err
    r = cli("edit", EXAMPLES / "epiano.json", "--louder", "1", "-o", "nowhere/new.json")
    r.assert_clean_failure()
    assert "the folder nowhere does not exist" in r.err
    r = cli("edit", "missing.json", "--louder", "1", "-o", "new.json")
    r.assert_clean_failure()
    assert "missing.json: no such file" in r.err
    r = cli("edit", bank, "--louder", "1", "-o", "new.json")
    r.assert_clean_failure()
    assert "holds 32 voices" in r.err
    r = cli("edit", EXAMPLES / "epiano.json", "--shinier", "1", "-o", "new.json")
    assert r.code == 2 and "unrecognized arguments: --shinier" in r.err
    r = cli("edit", EXAMPLES / "epiano.json", "--louder", "1")
    assert r.code == 2 and "-o" in r.err
    # A topology with no DX7 algorithm edits and saves as JSON, but not as sysex.
    epiano_patch["modmatrix"][0][5] = 1
    write_json(tmp_path / "odd.json", epiano_patch)
    r = cli("edit", "odd.json", "--louder", "1", "-o", "odd.syx")
    r.assert_clean_failure()
    assert "not one of the 32 DX7 algorithms" in r.err
    assert listing(tmp_path) == ["examples.syx", "odd.json"]
    assert cli("edit", "odd.json", "--louder", "1", "-o", "odd2.json").code == 0


def test_edit_as_a_subprocess(proc, tmp_path):
    r = proc("edit", EXAMPLES / "epiano.json", "--brighter", "2", "--shorter-decay", "1", "-o", "new.json")
    assert r.code == 0, r.err
    assert change_lines(r.out) and validate(json.loads((tmp_path / "new.json").read_text())).valid
    r = proc("edit", EXAMPLES / "epiano.json", "--brighter", "9", "-o", "bad.json")
    r.assert_clean_failure()
    assert not (tmp_path / "bad.json").exists()
