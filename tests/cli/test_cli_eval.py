"""``patchsmith eval``, ``bench`` and ``eval-refine`` end to end: real HTTP models, the offline designer, WAVs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import jsonschema
import pytest

from patchsmith.evals.bench import bench_json_schema, load_split
from patchsmith.synth.render import render
from patchsmith.synth.wav import write_wav
from tests.agent.fake_openai_server import FakeOpenAIServer
from tests.cli.cli_support import cli  # noqa: F401  (fixture)
from tests.evals.eval_fixtures import (FAST_RENDER, chatty_model, correct_model, correcting_model,
                                       write_source_csvs)

from ..conftest import CAPTIONS, need

QUICK = (*FAST_RENDER, "--bootstrap", "50", "--set-bootstrap", "0", "--no-plots", "--examples", "0", "--quiet")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_source_csvs(tmp_path_factory.mktemp("data"), 3)


@pytest.fixture(scope="module")
def split_file(tmp_path_factory):
    """A split over the fixture's ids, in the shipped format."""
    from patchsmith.evals.bench import ids_sha256

    ids = ["100", "101", "102", "999"]
    path = tmp_path_factory.mktemp("split") / "tiny-v1.json"
    path.write_text(json.dumps({"split": "tiny-v1", "version": 1, "description": "d", "selection": "s", "data": "d",
                                "format": "f", "id_column": "id", "count": 4, "ids_sha256": ids_sha256(ids),
                                "ids": ids}))
    return path


def bench_json(out: Path) -> dict:
    data = json.loads((out / "bench.json").read_text())
    jsonschema.validate(data, bench_json_schema())
    return data


@pytest.mark.parametrize("model, tool_rate, valid_rate, corrections", [
    ("correct", 1.0, 1.0, 0.0), ("correcting", 1.0, 1.0, 1.0), ("never", 0.0, 0.0, None)])
def test_bench_against_an_openai_compatible_server(cli, tiny, split_file, tmp_path, model, tool_rate, valid_rate,
                                                   corrections):
    captions, patches, truth = tiny
    script = {"correct": correct_model(truth), "correcting": correcting_model(truth), "never": chatty_model()}[model]
    with FakeOpenAIServer([script] * 30) as server:
        r = cli("bench", "--captions", captions, "--patches", patches, "--split", split_file, "--base-url",
                server.url, "--model", f"{model}-model", "--out", tmp_path / "b", *QUICK)
    assert r.code == 0, r.err
    data = bench_json(tmp_path / "b")
    agg = data["aggregates"]
    assert agg["n"] == 3 and data["split"]["missing_ids"] == ["999"] and data["split"]["id"] == "tiny-v1"
    assert (agg["tool_call_rate"]["value"], agg["validity_rate"]["value"]) == (tool_rate, valid_rate)
    assert agg["corrections_when_valid"]["value"] == corrections
    assert data["model"] == {"system": f"openai:{model}-model@{server.url}", "kind": "openai",
                             "name": f"{model}-model", "base_url": server.url, "settings": data["model"]["settings"]}
    assert {f["name"] for f in data["split"]["data_files"]} == {captions.name, patches.name}
    if model == "never":
        assert agg["toolrl_exact"]["value"] == -3.0 and all(not i["valid"] for i in data["items"])
        assert data["items"][0]["metrics"]["rms"] == 0.0  # it made no sound
    else:
        assert agg["toolrl_exact"]["value"] == 3.0 and agg["distance"]["value"] == 1.0
        assert data["items"][0]["metrics"]["rms"] == pytest.approx(1.0)
    board = (tmp_path / "b" / "leaderboard.md").read_text().splitlines()
    assert board[2] == data["leaderboard_row"] and board[2] in r.out
    assert (tmp_path / "b" / "report.md").exists()


def test_eval_of_the_offline_designer_writes_the_report(cli, tiny, tmp_path):
    captions, patches, _ = tiny
    r = cli("eval", "--captions", captions, "--patches", patches, "--system", "offline", "--out", tmp_path / "e",
            *QUICK)
    assert r.code == 0, r.err
    assert "valid patch: 1.000" in r.out and "rms: " in r.out
    with open(tmp_path / "e" / "results.csv", newline="") as f:
        assert [row["id"] for row in csv.DictReader(f)] == ["100", "101", "102"]
    summary = json.loads((tmp_path / "e" / "summary.json").read_text())
    assert summary["config"]["system"]["kind"] == "offline"


def test_eval_of_a_wav_folder(cli, tiny, tmp_path):
    captions, patches, truth = tiny
    wavs = tmp_path / "wavs"
    wavs.mkdir()
    for pid, patch in zip(("100", "101", "102"), truth.values()):
        write_wav(wavs / f"{pid}.wav", render(patch, hold_s=0.6, release_s=0.3, sample_rate=22050), 22050)
    r = cli("eval", "--captions", captions, "--patches", patches, "--system", f"wavs:{wavs}", "--out",
            tmp_path / "w", *QUICK)
    assert r.code == 0, r.err
    assert "items with audio: 1.000" in r.out and "valid patch" not in r.out
    summary = json.loads((tmp_path / "w" / "summary.json").read_text())
    rms = {m["column"]: m["value"] for m in summary["metrics"]}["rms"]
    assert rms > 0.95  # peak-normalised and resampled, the same envelopes


def test_eval_refine_with_the_offline_designer(cli, tmp_path):
    r = cli("eval-refine", "--system", "offline", "--limit", "1", "--out", tmp_path / "r", "--hold-s", "0.8",
            "--release-s", "0.4", "--bootstrap", "50", "--quiet")
    assert r.code == 0, r.err
    result = json.loads((tmp_path / "r" / "refine.json").read_text())
    assert result["aggregates"]["overall"]["n"] == 11 and "direction accuracy" in r.out
    assert result["system"]["kind"] == "offline"
    assert (tmp_path / "r" / "report.md").read_text().startswith("# eval-refine")


def test_bad_input_exits_2_and_writes_nothing(cli, tiny, tmp_path):
    captions, patches, _ = tiny
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("id,text\n1,hi\n")
    out = tmp_path / "never"
    cases = [
        (("eval", "--captions", tmp_path / "absent.csv", "--out", out), "no such file"),
        (("eval", "--captions", wrong, "--out", out), "missing column(s) caption"),
        (("eval", "--captions", captions, "--system", "gpt4", "--out", out), "unknown kind 'gpt4'"),
        (("eval", "--captions", captions, "--system", "openai:m@http://127.0.0.1:9/v1", "--timeout", "5", "--out",
          out, *QUICK), "cannot reach the model"),
        (("eval", "--captions", captions, "--split", "nope", "--out", out), "unknown split"),
        (("eval", "--captions", captions, "--embedder", "word2vec", "--out", out), "--embedder word2vec: unknown"),
        (("eval", "--captions", captions, "--hold-s", "-1", "--out", out), "hold"),
        (("eval", "--captions", captions, "--out", tmp_path / "no" / "such"), "does not exist"),
        (("eval", "--captions", captions, "--out", wrong), f"--out {wrong}: exists and is not a folder"),
        (("eval", "--captions", captions, "--max-tokens", "0", "--out", out), "--max-tokens: found 0, allowed an "
                                                                             "integer >= 1"),
        (("eval", "--captions", captions, "--max-turns", "5000", "--out", out), "--max-turns: found 5000, allowed an "
                                                                               "integer >= 1 and <= 1000"),
        (("bench", "--captions", captions, "--out", out), "bench needs --patches"),
        (("bench", "--captions", captions, "--patches", patches, "--out", out), "name the system"),
        (("bench", "--captions", captions, "--patches", patches, "--out", out, "--system", "offline", "--model", "m"),
         "not both"),
        (("bench", "--captions", captions, "--patches", patches, "--out", out, "--model", "m", *QUICK),
         "none of the selected ids"),
        (("eval-refine", "--system", "wavs:" + str(tmp_path), "--out", out), "no .wav files"),
        (("eval-refine", "--instructions", wrong, "--out", out), "not a JSON file"),
    ]
    for args, message in cases:
        r = cli(*args)
        r.assert_clean_failure()
        assert message in r.err, (args, r.err)
    assert not out.exists()


def test_bench_prints_its_schema(cli):
    r = cli("bench", "--print-schema")
    assert r.code == 0 and json.loads(r.out) == bench_json_schema()


def test_bench_of_the_offline_designer_on_the_real_dev_split(cli, tmp_path):
    folder = need(CAPTIONS)
    r = cli("bench", "--captions", folder / "DX7_YAMAHA_train_captions.csv", "--patches",
            folder / "DX7_YAMAHA_train.csv", "--split", "dev-v1", "--system", "offline", "--limit", "2", "--out",
            tmp_path / "d", *QUICK)
    assert r.code == 0, r.err
    data = bench_json(tmp_path / "d")
    assert data["split"]["ids_sha256"] == load_split("dev-v1").ids_sha256 and data["aggregates"]["n"] == 2
    assert data["aggregates"]["validity_rate"]["value"] == 1.0


def test_bench_zero_shot_records_no_tool_use_but_valid_patches(cli, tiny, split_file, tmp_path):
    from tests.evals.eval_fixtures import zeroshot_model

    captions, patches, truth = tiny
    with FakeOpenAIServer([zeroshot_model(truth)] * 5) as server:
        r = cli("bench", "--captions", captions, "--patches", patches, "--split", split_file, "--base-url",
                server.url, "--model", "zs", "--zeroshot", "--limit", "1", "--out", tmp_path / "z", *QUICK)
        assert "tools" not in server.requests[0]
    assert r.code == 0, r.err
    data = bench_json(tmp_path / "z")
    assert data["model"]["kind"] == "zeroshot" and data["split"]["limit"] == 1
    assert (data["aggregates"]["tool_call_rate"]["value"], data["aggregates"]["validity_rate"]["value"]) == (0.0, 1.0)
    assert data["items"][0]["toolrl_exact"] == 3.0 and ", 1 of 4" in data["leaderboard_row"]


def test_bench_of_a_served_checkpoint_in_the_trained_prompt(cli, tiny, split_file, tmp_path):
    """``bench --model M --base-url URL --prompt trained`` (as serve-model prints): the training prompt, recorded."""
    from patchsmith.agent.trained_prompt import trained_messages, trained_tools
    from tests.agent.fake_openai_server import tool_turn

    captions, patches, truth = tiny
    caption = next(iter(truth))
    with FakeOpenAIServer([tool_turn(("render_patch", {"patch": truth[caption]}))]) as server:
        r = cli("bench", "--captions", captions, "--patches", patches, "--split", split_file, "--base-url",
                server.url, "--model", "served", "--prompt", "trained", "--limit", "1", "--out", tmp_path / "t",
                *QUICK)
        sent = server.requests
    assert r.code == 0, r.err
    assert len(sent) == 1 and sent[0]["messages"] == trained_messages(caption, False)
    assert sent[0]["tools"] == trained_tools()
    assert "prompt: trained profile (format tools, /no_think" in r.err
    data = bench_json(tmp_path / "t")
    assert data["model"]["settings"]["prompt"] == "trained (tools, /no_think)"
    assert data["aggregates"]["validity_rate"]["value"] == 1.0


def test_prompt_options_that_do_not_fit_the_system_are_refused(cli, tiny, tmp_path):
    captions, _, _ = tiny
    out = tmp_path / "never"
    cases = [
        (("--system", "openai:m@http://127.0.0.1:9/v1", "--prompt", "schema"), "is the zero-shot prompt"),
        (("--system", "zeroshot:m@http://127.0.0.1:9/v1", "--prompt", "trained"), "zeroshot takes minimal or schema"),
        (("--system", "offline", "--prompt", "agent"), "a prompt profile is for openai: and checkpoint:"),
        (("--system", "zeroshot:m@http://127.0.0.1:9/v1", "--output-parsing"), "--output-parsing is for openai:"),
        (("--system", "openai:m@http://127.0.0.1:9/v1", "--prompt", "trained", "--strict-tools"), "--strict-tools"),
    ]
    for args, message in cases:
        r = cli("eval", "--captions", captions, "--out", out, *args)
        r.assert_clean_failure()
        assert message in r.err, (args, r.err)
    assert not out.exists()


def test_eval_without_scipy_refuses_and_names_the_extra(tiny, tmp_path):
    """A core install has no scipy: the run stops before any work instead of reporting empty metric columns."""
    import subprocess
    import sys

    from ..conftest import REPO

    captions, patches, _ = tiny
    code = ("import sys; sys.modules['scipy.signal'] = None; from patchsmith.cli import main; "
            "sys.exit(main(sys.argv[1:]))")
    r = subprocess.run([sys.executable, "-c", code, "eval", "--captions", captions, "--patches", patches, "--system",
                        "offline", "--out", str(tmp_path / "e"), *QUICK], cwd=REPO, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2, r.stderr
    assert "pip install 'patchsmith[eval]'" in r.stderr
    assert not (tmp_path / "e").exists()
