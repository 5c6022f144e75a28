"""The CPU smoke test, end to end through the command line: prepare → SFT → GRPO → the agent on the checkpoint.

A tiny random Qwen3 with a tokenizer built offline (nothing downloaded) does two SFT steps and two GRPO
steps with the patch rewards on rows made from the project's own examples, saves a checkpoint, and
``patchsmith design --model-path`` loads it: a random model writes no usable patch, so the command must
say so cleanly (or, if it ever does write one, save a valid patch).
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("trl")

from patchsmith.cli import main  # noqa: E402
from patchsmith.examples import load_examples  # noqa: E402
from patchsmith.schema.compact import dumps_compact  # noqa: E402
from patchsmith.schema.validate import parse_patch  # noqa: E402
from patchsmith.training.tiny_model import qwen3_chat_template  # noqa: E402

from ..conftest import REPO  # noqa: E402


def write_rows(path, reasoning=0):
    """The examples/*.json captions as a dataset Parquet (columns id, patch, caption, cot); returns the row count.

    The first ``reasoning`` rows get a short reasoning text (``cot``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"id": f"{ex.key}-{i}", "patch": dumps_compact(ex.patch), "caption": caption, "cot": None}
            for ex in load_examples(REPO / "examples") for i, caption in enumerate(ex.captions)]
    for row in rows[:reasoning]:
        row["cot"] = f"{row['caption'].split(',')[0]}: two carriers, a bright modulator."
    schema = pa.schema([(c, pa.string()) for c in ("id", "patch", "caption", "cot")])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return len(rows)


@pytest.fixture
def cli(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)

    def run(*args):
        code = main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def test_prepare_sft_grpo_then_design_with_the_checkpoint(cli, tmp_path):
    n = write_rows(tmp_path / "examples.parquet")

    code, out, err = cli("train", "prepare", "examples.parquet", "-o", "train-data")
    assert code == 0, err
    assert sum(1 for _ in open(tmp_path / "train-data" / "sft.jsonl")) == n
    assert f"({n} GRPO prompts)" in out

    code, out, err = cli("train", "sft", "--config", "tiny-cpu-sft")
    assert code == 0, err
    sft = tmp_path / "runs" / "tiny-sft"
    assert "trained SFT: 2 step(s)" in out and f"saved {sft.relative_to(tmp_path)}" in out
    assert json.loads((sft / "patchsmith_train.json").read_text())["steps"] == 2
    # The stock template is saved, not TRL's training copy with {% generation %} markers.
    assert (sft / "chat_template.jinja").read_text() == qwen3_chat_template()
    card = (sft / "README.md").read_text()
    assert 'base_model: "tiny-qwen3"' in card and "- trl 1.16" in card and "answer format: `answer`" in card
    # How its prompts looked, for the agent's trained profile: SFTTrainer passes no enable_thinking.
    assert json.loads((sft / "patchsmith.json").read_text()) == {
        "kind": "sft", "prompt": {"fmt": "answer", "think": False, "template_thinking": None}}

    code, out, err = cli("train", "grpo", "--config", "tiny-cpu-grpo")
    assert code == 0, err
    grpo = tmp_path / "runs" / "tiny-grpo"
    result = json.loads((grpo / "patchsmith_train.json").read_text())
    assert result["steps"] == 2 and result["kind"] == "grpo"
    # Every configured reward ran on the completions with the ground-truth column.
    for name in ("format_reward", "keys_reward", "gated_distance_reward", "toolrl_exact_reward"):
        assert f"rewards/{name}/mean" in result["metrics"], result["metrics"]
    card = (grpo / "README.md").read_text()
    assert 'base_model: "runs/tiny-sft"' in card and "`gated_distance`: 3" in card
    assert json.loads((grpo / "patchsmith.json").read_text())["prompt"] == {
        "fmt": "answer", "think": False, "template_thinking": False}
    assert {"model.safetensors", "tokenizer.json", "chat_template.jinja", "config.json"} <= {
        p.name for p in grpo.iterdir()}

    code, out, err = cli("design", "warm pad with slow attack", "-o", "out", "--model-path", grpo,
                         "--output-parsing", "--max-new-tokens", "48", "--max-turns", "2")
    assert "Traceback" not in err
    # --model-path means the trained profile, with the format and thinking the checkpoint records.
    assert f"prompt: trained profile (format answer, /no_think; from {grpo / 'patchsmith.json'})" in err
    if code == 0:  # a patch came out: it was rendered, so it is valid
        parse_patch(json.loads((tmp_path / "out" / "patch.json").read_text()))
    else:
        assert code == 2
        errors = [line for line in err.splitlines() if line.startswith("error: ")]
        assert errors and errors[0].startswith("error: the model produced no valid patch: "), err
        assert not (tmp_path / "out").exists()


def test_model_path_option_errors(cli, tmp_path):
    code, _, err = cli("design", "bass", "-o", "out", "--model-path", tmp_path / "nope")
    assert code == 2 and "error: --model-path" in err and "does not exist" in err
    code, _, err = cli("design", "bass", "-o", "out", "--model-path", tmp_path, "--model", "m")
    assert code == 2 and "give one or the other" in err
    code, _, err = cli("chat", "--model-path", tmp_path / "nope")
    assert code == 2 and "does not exist" in err and "Traceback" not in err
    code, _, err = cli("design", "bass", "-o", "out", "--model-path", tmp_path, "--max-new-tokens", "0")
    assert code == 2 and "--max-new-tokens: found 0" in err


def test_prepare_errors_are_clean(cli, tmp_path):
    code, _, err = cli("train", "prepare", "nowhere.csv", "-o", "data")
    assert code == 2 and "nowhere.csv: no such file or folder" in err and "Traceback" not in err
    write_rows(tmp_path / "rows.parquet")
    code, _, err = cli("train", "prepare", "rows.parquet", "--max-length", "100")
    assert code == 2 and "--max-length needs --tokenizer" in err
    (tmp_path / "afile").write_text("x")
    code, _, err = cli("train", "prepare", "rows.parquet", "-o", "afile")
    assert code == 2 and "exists and is not a folder" in err


def test_reasoning_ratio_of_the_config_samples_plain_examples(cli, tmp_path):
    from patchsmith.training.config import load_config
    from patchsmith.training.sft import sft_dataset, thinks

    n = write_rows(tmp_path / "rows.parquet", reasoning=3)
    assert cli("train", "prepare", "rows.parquet", "-o", "train-data")[0] == 0
    everything = sft_dataset(load_config("tiny-cpu-sft"))
    assert len(everything) == n and sum(thinks(r) for r in everything) == 3
    half = sft_dataset(load_config("tiny-cpu-sft", {"reasoning.reasoning_ratio": 0.5}))
    assert len(half) == 6 and sum(thinks(r) for r in half) == 3
    again = sft_dataset(load_config("tiny-cpu-sft", {"reasoning.reasoning_ratio": 0.5}))
    assert again.to_list() == half.to_list()  # seeded: the same sample every time
    code, _, err = cli("train", "sft", "--config", "tiny-cpu-sft", "--set", "reasoning.reasoning_ratio=0")
    assert code == 2 and "reasoning.reasoning_ratio: Input should be greater than 0" in err
