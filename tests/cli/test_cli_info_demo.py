"""`patchsmith info`, `patchsmith demo`, `--version`, and the console script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from patchsmith import __version__
from patchsmith.synth.wav import read_wav
from tests.cli.cli_support import EXAMPLES, bank, cli, examples, listing, proc  # noqa: F401
from tests.conftest import YAMAHA, need


def test_info_lists_number_name_and_algorithm(cli, bank, examples):
    r = cli("info", bank)
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].endswith("examples.syx: 32 voices")
    assert lines[2].split() == ["1", *examples[0].patch.name.split(), "16"]
    assert lines[-1].split() == ["32", "INIT", "VOICE", "1"]
    assert "tolerated" not in r.out
    data = json.loads(cli("info", bank, "--json").out)
    assert [v["algorithm"] for v in data["voices"][:7]] == ["16", "5", "22", "5", "5", "32", "5"]


def test_info_says_what_was_tolerated(cli, bank, tmp_path):
    data = bytearray(bank.read_bytes())
    data[-2] ^= 0x01  # a wrong checksum
    (tmp_path / "stale.syx").write_bytes(bytes(data))
    r = cli("info", "stale.syx")
    assert r.code == 0, r.err
    assert "tolerated:" in r.out and "checksum mismatch" in r.out


def test_render_and_convert_mention_what_was_tolerated(cli, bank, tmp_path):
    data = bytearray(bank.read_bytes())
    data[-2] ^= 0x01
    (tmp_path / "stale.syx").write_bytes(bytes(data))
    r = cli("convert", "stale.syx:2", "two.json")
    assert r.code == 0 and "note: stale.syx: tolerated" in r.err and "checksum mismatch" in r.err


@pytest.mark.parametrize("content, fragment", [
    (None, "no such file"),
    (b"", "empty file"),
    (b"\xf0\x43\x00\x09\x20\x00" + bytes(100), "truncated"),
    (b"MThd not a bank at all", "no DX7 sysex message found"),
])
def test_info_refusals(cli, tmp_path, content, fragment):
    if content is not None:
        (tmp_path / "b.syx").write_bytes(content)
    r = cli("info", "b.syx")
    r.assert_clean_failure()
    assert fragment in r.err


def test_info_as_a_subprocess(proc, bank):
    r = proc("info", bank)
    assert r.code == 0 and "SOFT BRASS" in r.out and "22" in r.out
    r = proc("info", f"{bank}:40")
    r.assert_clean_failure()
    assert "out of range" in r.err


def test_info_on_a_factory_bank(cli):
    r = cli("info", need(YAMAHA / "rom1a.syx"))
    assert r.code == 0
    assert r.out.splitlines()[2].split() == ["1", "BRASS", "1", "22"]


def test_demo_renders_every_example(cli, tmp_path, examples):
    r = cli("demo", "--out", "out")
    assert r.code == 0, r.err
    names = listing(tmp_path / "out")
    assert names == sorted([f"{ex.key}.wav" for ex in examples] + ["examples.syx"])
    table = r.out.splitlines()
    assert table[0].split()[:3] == ["name", "file", "note"]
    for ex in examples:
        assert any(line.startswith(ex.name) for line in table)
        audio, sr = read_wav(tmp_path / "out" / f"{ex.key}.wav")
        assert sr == 48000 and 20 * np.log10(np.max(np.abs(audio))) == pytest.approx(-1.0, abs=0.01)
    assert len((tmp_path / "out" / "examples.syx").read_bytes()) == 4104


def test_demo_with_a_bad_examples_folder(cli, tmp_path):
    folder = tmp_path / "ex"
    folder.mkdir()
    (folder / "broken.json").write_text('{"name": "x", "captions": [], "patch": {}}')
    r = cli("demo", "--examples", folder, "--out", "out")
    r.assert_clean_failure()
    assert "error: broken.json: /captions: found [], allowed a non-empty list of strings" in r.error_lines
    assert any(line.startswith("error: broken.json: /patch/modmatrix: found missing") for line in r.error_lines)
    assert not (tmp_path / "out").exists()
    r = cli("demo", "--examples", tmp_path / "none", "--out", "out")
    r.assert_clean_failure()
    assert "no such folder" in r.err


def test_demo_as_a_subprocess(proc, tmp_path):
    r = proc("demo", "--out", "d")
    assert r.code == 0, r.err
    assert "Glass electric piano" in r.out and (tmp_path / "d" / "epiano.wav").exists()


def test_version_in_process_and_as_the_console_script(cli, proc):
    r = cli("--version")
    assert r.code == 0 and r.out.strip() == f"patchsmith {__version__}"
    assert proc("--version").out.strip() == f"patchsmith {__version__}"
    script = Path(sys.executable).parent / "patchsmith"
    if not script.exists():
        pytest.skip("the console script is not installed beside this interpreter")
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == f"patchsmith {__version__}"


def test_help_lists_the_subcommands(cli):
    r = cli("--help")
    assert r.code == 0
    for command in ("render", "validate", "convert", "info", "demo"):
        assert command in r.out
    r = cli("render", "--help")
    assert "BANK.syx:N picks voice N (1..32)" in " ".join(r.out.split())
    r = cli("frobnicate")
    assert r.code == 2 and "invalid choice" in r.err
