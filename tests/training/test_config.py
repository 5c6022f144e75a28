"""Training configs: the packaged ones load; every mistake is named with its key and what is allowed."""

from __future__ import annotations

import pytest

pytest.importorskip("trl")

from patchsmith.cli import main  # noqa: E402
from patchsmith.training.config import ConfigError, load_config, packaged_configs, parse_config, trl_arguments  # noqa: E402

SFT = """
kind = "sft"
output_dir = "runs/x"
[model]
path = "tiny-qwen3"
[data]
path = "train-data"
[trl]
max_steps = 1
use_cpu = true
bf16 = false
"""

GRPO = """
kind = "grpo"
output_dir = "runs/g"
[model]
path = "runs/x"
[data]
path = "train-data"
[rewards]
format = 1.0
gated_distance = 3
[trl]
num_generations = 2
use_cpu = true
bf16 = false
"""


def problems(text: str, overrides=None) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_config(text, "t.toml", overrides)
    return err.value.problems


def test_packaged_configs_all_load():
    names = set(packaged_configs())
    assert {"tiny-cpu-sft", "tiny-cpu-grpo", "qwen3-8b-sft", "qwen3-8b-grpo"} <= names
    for name in names:
        config = load_config(name)
        assert config.kind in name and config.source == f"{name} (packaged)"


def test_h100_configs_are_bf16_full_finetunes_and_grpo_uses_vllm_colocate():
    sft = load_config("qwen3-8b-sft")
    assert sft.model.dtype == "bfloat16" and sft.trl["bf16"] is True and "peft_config" not in sft.trl
    grpo = load_config("qwen3-8b-grpo")
    assert grpo.vllm.enabled and grpo.vllm.mode == "colocate"
    # The GRPOConfig they stand for, built here with the CPU switched on (bf16 needs a GPU).
    args = trl_arguments(load_config("qwen3-8b-grpo", {"trl.bf16": False, "trl.use_cpu": True,
                                                        "trl.optim": "adamw_torch"}))
    assert args.use_vllm and args.vllm_mode == "colocate" and args.vllm_enable_sleep_mode
    assert args.vllm_gpu_memory_utilization == 0.3
    assert args.reward_weights == [1.0, 0.5, 3.0] and args.remove_unused_columns is False
    with pytest.raises(ConfigError, match="for a GPU: on CPU set trl.bf16 = false"):
        trl_arguments(sft)


def test_vllm_settings_reach_trl_only_when_enabled():
    off = trl_arguments(parse_config(GRPO, "t.toml", {"vllm.gpu_memory_utilization": 0.9}))
    assert off.use_vllm is False and off.vllm_gpu_memory_utilization != 0.9
    on = trl_arguments(parse_config(GRPO, "t.toml", {"vllm.enabled": True, "vllm.gpu_memory_utilization": 0.5}))
    assert on.use_vllm is True and on.vllm_gpu_memory_utilization == 0.5


def test_grpo_weights_and_owned_arguments():
    args = trl_arguments(parse_config(GRPO))
    assert args.reward_weights == [1.0, 3.0] and args.output_dir == "runs/g" and args.seed == 42


def test_bad_toml():
    [line] = problems("kind = ")
    assert line.startswith("t.toml: not valid TOML")


def test_unknown_key_with_suggestion_and_allowed_list():
    lines = problems(SFT.replace('path = "train-data"', 'path = "train-data"\nfromat = "tools"'))
    assert lines == ["t.toml: data.fromat: unknown key (did you mean 'format'?); allowed: format, max_prompt_tokens, "
                     "max_rows, path"]


def test_missing_and_wrong_types():
    lines = problems('kind = "dpo"\noutput_dir = 3\n[data]\npath = "x"')
    text = "\n".join(lines)
    assert "kind: Input should be 'sft' or 'grpo' (found 'dpo')" in text
    assert "output_dir: Input should be a valid string (found 3)" in text
    assert "model: missing; it is required" in text


def test_unknown_trl_field_with_suggestion():
    [line] = problems(SFT + "learning_rat = 1e-5\n")
    assert line.startswith("t.toml: trl.learning_rat: not a SFTConfig field; did you mean 'learning_rate'?")


def test_max_prompt_length_is_explained():
    [line] = problems(GRPO + "max_prompt_length = 512\n")
    assert "GRPOConfig has no max_prompt_length" in line
    assert line.startswith("t.toml: trl.max_prompt_length: not a GRPOConfig field")


@pytest.mark.parametrize("key, where", [
    ("reward_weights = [1.0]", "[rewards]"),
    ("output_dir = 'x'", "top-level output_dir"),
    ("chat_template_kwargs = {enable_thinking = true}", "[reasoning] enable_thinking"),
    ("use_vllm = true", "[vllm]"),
    ("vllm_mode = 'server'", "[vllm] table"),
])
def test_trl_keys_owned_by_other_tables(key, where):
    [line] = problems(GRPO + key + "\n")
    assert where in line and line.startswith("t.toml: trl.")


def test_rewards_checked():
    [line] = problems(GRPO.replace("gated_distance = 3", "gated_distnce = 3"))
    assert line.startswith("t.toml: rewards.gated_distnce: unknown reward (did you mean 'gated_distance'?); allowed: ")
    assert "weight 'heavy' is not a finite number" in "\n".join(problems(GRPO.replace("= 3\n", "= 'heavy'\n")))
    assert "is not a finite number" in "\n".join(problems(GRPO.replace("= 3\n", "= nan\n")))
    assert "needs a [rewards] table" in "\n".join(problems(GRPO.split("[rewards]")[0] + "[trl]\nuse_cpu = true\n"))
    assert "an SFT run has no rewards" in "\n".join(problems(SFT + "[rewards]\nformat = 1\n"))


def test_sft_cannot_enable_vllm_and_bounds_are_checked():
    assert "SFT does not generate" in "\n".join(problems(SFT + "[vllm]\nenabled = true\n"))
    text = "\n".join(problems(GRPO + "[vllm]\ngpu_memory_utilization = 1.5\n"))
    assert "vllm.gpu_memory_utilization: Input should be less than or equal to 1 (found 1.5)" in text


def test_trl_refusing_a_value_is_a_config_error():
    with pytest.raises(ConfigError, match=r"GRPOConfig refused the arguments: .*at least 2 generations"):
        trl_arguments(parse_config(GRPO.replace("num_generations = 2", "num_generations = 1")))


# --- through the command line ---------------------------------------------------------------------------


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_bad_config_exits_2_with_error_lines(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(SFT + "learning_rat = 1\n" + "[extra]\nx = 1\n")
    code, out, err = run_cli(capsys, "train", "sft", "--config", bad)
    assert code == 2 and "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert any("extra: unknown key" in line for line in lines), err


def test_cli_missing_config_lists_packaged(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "train", "grpo", "--config", "nope.toml")
    assert code == 2 and "no such config file" in err and "tiny-cpu-grpo" in err


def test_cli_kind_mismatch_and_bad_set(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "train", "grpo", "--config", "tiny-cpu-sft")
    assert code == 2 and "run it with `patchsmith train sft`" in err
    code, _, err = run_cli(capsys, "train", "sft", "--config", "tiny-cpu-sft", "--set", "novalue")
    assert code == 2 and "--set novalue: expected KEY=VALUE" in err
    code, _, err = run_cli(capsys, "train", "sft", "--config", "tiny-cpu-sft", "--max-steps", "0")
    assert code == 2 and "--max-steps: found 0" in err


def test_cli_missing_data_is_named(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "train", "sft", "--config", "tiny-cpu-sft", "--data", "nowhere")
    assert code == 2 and "data.path nowhere: no sft.jsonl in it" in err and "patchsmith train prepare" in err


def test_cli_configs_lists_and_prints(capsys):
    code, out, _ = run_cli(capsys, "train", "configs")
    assert code == 0 and "qwen3-8b-grpo:" in out and "tiny-cpu-sft:" in out
    code, out, _ = run_cli(capsys, "train", "configs", "qwen3-8b-grpo")
    assert code == 0 and 'mode = "colocate"' in out
