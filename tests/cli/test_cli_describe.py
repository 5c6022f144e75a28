"""`patchsmith describe`: the readable account of a voice, as text and as JSON, and clean failures."""

from __future__ import annotations

import json

from tests.cli.cli_support import EXAMPLES, bank, cli, epiano_patch, examples, listing, proc, write_json  # noqa: F401

from patchsmith.schema.algorithms import algorithm_of
from patchsmith.synth.describe import describe_patch
from patchsmith.synth.sysex import read_sysex


def test_describe_prints_the_algorithm_and_every_operator(cli, examples):
    for ex in examples:
        r = cli("describe", ex.path)
        assert r.code == 0, r.err
        number = algorithm_of(ex.patch.modmatrix, ex.patch.outmatrix)
        assert f"Algorithm {number}" in r.out
        assert all(f"OP{k}" in r.out for k in range(1, 7))
        assert r.out == describe_patch(ex.patch, 60, 100).text() + "\n"


def test_describe_json_is_the_structured_account_at_the_asked_note(cli, epiano_patch, tmp_path):
    write_json(tmp_path / "p.json", epiano_patch)
    r = cli("describe", "p.json", "--note", "48", "--velocity", "80", "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert data["note"] == 48 and data["velocity"] == 80
    assert data == json.loads(json.dumps(describe_patch(epiano_patch, 48, 80).model_dump()))


def test_describe_one_voice_of_a_bank(cli, bank, examples):
    r = cli("describe", f"{bank}:2")
    assert r.code == 0, r.err
    assert r.out == describe_patch(read_sysex(bank.read_bytes()).voices[1]).text() + "\n"
    assert "TUBE BELL" in r.out.splitlines()[0]
    r = cli("describe", bank)
    r.assert_clean_failure()
    assert "holds 32 voices" in r.err and ":N" in r.err


def test_describe_bad_input_fails_cleanly(cli, tmp_path, epiano_patch):
    r = cli("describe", "missing.json")
    r.assert_clean_failure()
    assert "missing.json: no such file" in r.err
    epiano_patch["ol"][0] = 120
    write_json(tmp_path / "bad.json", epiano_patch)
    r = cli("describe", "bad.json")
    r.assert_clean_failure()
    assert "/ol/0: found 120" in r.err
    r = cli("describe", EXAMPLES / "epiano.json", "--note", "200")
    r.assert_clean_failure()
    assert "0..127" in r.err
    r = cli("describe", EXAMPLES / "epiano.json", "--frobnicate")
    assert r.code == 2 and "unrecognized arguments" in r.err
    assert listing(tmp_path) == ["bad.json"]


def test_describe_as_a_subprocess(proc):
    r = proc("describe", EXAMPLES / "epiano.json")
    assert r.code == 0, r.err
    assert "Algorithm 5" in r.out
    r = proc("describe", "nothing.syx")
    r.assert_clean_failure()
