"""``serve-model``: the vLLM command line (hermes tool parser, qwen3 reasoning parser) and the checkpoint checks."""

from __future__ import annotations

import json
import shlex
import shutil

import pytest

from patchsmith.cli import main
from patchsmith.training.serve_model import ServeOptions, serve_problems, shown_command, vllm_command


def fake_checkpoint(folder, *, weights=True, template=True):
    """A checkpoint folder's files (the command is built from the folder; vLLM itself is not run here)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "qwen3"}))
    (folder / "tokenizer.json").write_text("{}")
    (folder / "tokenizer_config.json").write_text(json.dumps({"eos_token": "<|im_end|>"}))
    if weights:
        (folder / "model.safetensors").write_bytes(b"\0" * 8)
    if template:
        (folder / "chat_template.jinja").write_text("{{ messages }}")
    return folder


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_command_line_has_the_qwen3_parsers(tmp_path):
    ckpt = fake_checkpoint(tmp_path / "my-model")
    cmd = vllm_command(ServeOptions(checkpoint=ckpt, port=8123, tensor_parallel_size=2, max_model_len=8192,
                                    gpu_memory_utilization=0.85, extra_args=["--enable-prefix-caching"]))
    assert cmd == ["vllm", "serve", str(ckpt), "--enable-auto-tool-choice", "--tool-call-parser", "hermes",
                   "--reasoning-parser", "qwen3", "--served-model-name", "my-model", "--host", "127.0.0.1",
                   "--port", "8123", "--tensor-parallel-size", "2", "--max-model-len", "8192",
                   "--gpu-memory-utilization", "0.85", "--enable-prefix-caching"]


def test_reasoning_parser_can_be_left_out_and_key_is_masked(tmp_path):
    ckpt = fake_checkpoint(tmp_path / "m")
    cmd = vllm_command(ServeOptions(checkpoint=ckpt, reasoning=False, served_model_name="dx7", api_key="s3cret"))
    assert "--reasoning-parser" not in cmd and cmd[cmd.index("--served-model-name") + 1] == "dx7"
    assert cmd[cmd.index("--api-key") + 1] == "s3cret"
    assert "s3cret" not in shown_command(cmd) and "--api-key '***'" in shown_command(cmd)


def test_dry_run_prints_the_command_and_how_to_reach_it(tmp_path, capsys):
    ckpt = fake_checkpoint(tmp_path / "ckpt")
    code, out, err = run_cli(capsys, "serve-model", ckpt, "--dry-run", "--port", "8001", "--host", "0.0.0.0",
                             "--vllm-args=--max-num-seqs 8")
    assert code == 0, err
    first = out.splitlines()[0]
    argv = shlex.split(first)
    assert argv[1:3] == ["serve", str(ckpt)] and argv[0].endswith("vllm")
    assert argv[argv.index("--tool-call-parser") + 1] == "hermes"
    assert argv[argv.index("--reasoning-parser") + 1] == "qwen3"
    assert argv[-2:] == ["--max-num-seqs", "8"] and "--enable-auto-tool-choice" in argv
    assert "--model ckpt --base-url http://127.0.0.1:8001/v1" in out


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "absent", "does not exist"),
    (lambda p: fake_checkpoint(p / "c", weights=False), "no weights"),
    (lambda p: fake_checkpoint(p / "c", template=False), "no chat template"),
    (lambda p: (p / "file.bin").write_bytes(b"x") and p / "file.bin", "is a file"),
])
def test_bad_checkpoints_are_refused(tmp_path, capsys, make, message):
    ckpt = make(tmp_path)
    code, out, err = run_cli(capsys, "serve-model", ckpt, "--dry-run")
    assert code == 2 and message in err and err.startswith("error: ") and out == ""
    assert "Traceback" not in err


def test_template_in_tokenizer_config_is_enough(tmp_path):
    ckpt = fake_checkpoint(tmp_path / "c", template=False)
    (ckpt / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ messages }}"}))
    assert serve_problems(ServeOptions(checkpoint=ckpt)) == []


@pytest.mark.parametrize("args, message", [
    (["--port", "70000"], "--port: found 70000"),
    (["--tensor-parallel-size", "0"], "--tensor-parallel-size: found 0"),
    (["--gpu-memory-utilization", "1.5"], "--gpu-memory-utilization: found 1.5"),
    (["--vllm-args=--x 'unclosed"], "--vllm-args:"),
])
def test_bad_options(tmp_path, capsys, args, message):
    code, _, err = run_cli(capsys, "serve-model", fake_checkpoint(tmp_path / "c"), "--dry-run", *args)
    assert code == 2 and message in err


@pytest.mark.skipif(shutil.which("vllm") is not None, reason="vLLM is installed: this checks the message without it")
def test_without_vllm_running_is_a_clean_error(tmp_path, capsys):
    code, _, err = run_cli(capsys, "serve-model", fake_checkpoint(tmp_path / "c"))
    assert code == 2 and "vllm is not installed" in err and "patchsmith[serve]" in err


def hints(out):
    """The design and bench command lines a dry run suggests, as argv lists (without `patchsmith`)."""
    design = next(line for line in out.splitlines() if line.startswith("# then: "))[len("# then: "):]
    bench = next(line for line in out.splitlines() if line.startswith("# score: "))[len("# score: "):]
    return shlex.split(design)[1:], shlex.split(bench)[1:]


def test_untrained_checkpoint_gets_the_agent_prompt_and_no_template_default(tmp_path, capsys):
    code, out, err = run_cli(capsys, "serve-model", fake_checkpoint(tmp_path / "plain"), "--dry-run")
    assert code == 0, err
    design, bench = hints(out)
    assert "--prompt" not in design and "--prompt" not in bench
    assert "--default-chat-template-kwargs" not in shlex.split(out.splitlines()[0])


@pytest.mark.parametrize("kind, fmt, think", [("grpo", "tools", False), ("grpo", "answer", True),
                                              ("sft", "answer", True), ("sft", "tools", False)])
def test_trained_checkpoint_is_served_and_reached_as_it_was_trained(tmp_path, capsys, kind, fmt, think):
    """The server applies the template as the trainer did; the suggested design/bench send the training prompt."""
    from patchsmith.agent.trained_prompt import choose_prompt, read_checkpoint_prompt, write_checkpoint_record
    from patchsmith.cli import build_parser

    ckpt = fake_checkpoint(tmp_path / "ckpt")
    write_checkpoint_record(ckpt, kind, fmt, think)
    code, out, err = run_cli(capsys, "serve-model", ckpt, "--dry-run")
    assert code == 0, err
    argv = shlex.split(out.splitlines()[0])
    recorded = read_checkpoint_prompt(ckpt)
    if kind == "grpo":  # GRPOTrainer passed enable_thinking to the template: so does the server, by default
        assert json.loads(argv[argv.index("--default-chat-template-kwargs") + 1]) == {"enable_thinking": think}
    else:  # SFTTrainer passed nothing: neither does the server
        assert "--default-chat-template-kwargs" not in argv
    design, bench = hints(out)
    assert design[:2] == ["design", "TEXT"] and design[design.index("--prompt") + 1] == "trained"
    assert ("--output-parsing" in design) == (fmt == "answer") and ("--thinking" in design) == think
    for line in (design, bench):
        args = build_parser().parse_args(line)  # what is printed parses
        prompt = choose_prompt(args.prompt, output_parsing=args.output_parsing, thinking=args.thinking)
        assert (prompt.fmt, prompt.think) == (recorded.fmt, recorded.think)
        assert args.model == "ckpt" and args.base_url == "http://127.0.0.1:8000/v1"


def test_own_template_kwargs_are_not_doubled_and_a_bad_record_is_refused(tmp_path, capsys):
    from patchsmith.agent.trained_prompt import CHECKPOINT_FILE, write_checkpoint_record

    ckpt = fake_checkpoint(tmp_path / "ckpt")
    write_checkpoint_record(ckpt, "grpo", "tools", False)
    mine = "--default-chat-template-kwargs '{\"enable_thinking\": true}'"
    code, out, err = run_cli(capsys, "serve-model", ckpt, "--dry-run", f"--vllm-args={mine}")
    assert code == 0, err
    argv = shlex.split(out.splitlines()[0])
    assert argv.count("--default-chat-template-kwargs") == 1 and argv[-1] == '{"enable_thinking": true}'
    (ckpt / CHECKPOINT_FILE).write_text('{"prompt": {"fmt": "json"}}')
    code, out, err = run_cli(capsys, "serve-model", ckpt, "--dry-run")
    assert code == 2 and "not a patchsmith checkpoint record" in err and out == ""
