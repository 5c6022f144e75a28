"""The systems the runners compare: spec parsing, tool-calling models (real HTTP), zero-shot, offline, WAVs,
and local checkpoints and served ones in the prompt profile they were trained on."""

from __future__ import annotations

import json

import numpy as np
import pytest

from patchsmith.agent.systems import (SystemOptions, make_system, outcome_from_transcript, parse_spec,
                                      split_model_url, zeroshot_prompt)
from patchsmith.evals.runner import load_rows
from patchsmith.evals.systems import RenderSpec, SystemUnavailable, WavFolderSystem
from patchsmith.synth.render import render
from patchsmith.synth.wav import write_wav
from tests.agent.fake_openai_server import FakeOpenAIServer, text_turn, tool_turn
from tests.agent.tiny_checkpoint import shared_tiny_checkpoint, shared_tokenizer, tiny_checkpoint_copy
from tests.evals.eval_fixtures import (chatty_model, correct_model, correcting_model, write_source_csvs,
                                       zeroshot_model)

FAST = RenderSpec(hold_s=0.6, release_s=0.3)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    captions, patches, truth = write_source_csvs(tmp_path_factory.mktemp("data"), 2)
    rows, _ = load_rows(captions, patches)
    return rows, truth


@pytest.mark.parametrize("spec, message", [
    ("", "allowed offline"), ("gpt:foo", "unknown kind 'gpt'"), ("openai:", "openai needs an argument"),
    ("wavs:", "wavs needs an argument"), ("openai:@http://x/v1", "no model name"),
])
def test_bad_specs_say_what_is_allowed(spec, message):
    with pytest.raises(SystemUnavailable, match=message):
        make_system(spec)


def test_spec_parts(monkeypatch):
    assert parse_spec("offline") == ("offline", "")
    assert parse_spec("zeroshot:qwen@http://h:1/v1") == ("zeroshot", "qwen@http://h:1/v1")
    assert split_model_url("org/model@v2@https://h/v1", "openai") == ("org/model@v2", "https://h/v1")
    monkeypatch.setenv("PATCHSMITH_BASE_URL", "http://env:9/v1")
    assert split_model_url("qwen", "openai") == ("qwen", "http://env:9/v1")


def test_missing_folders_and_checkpoints_are_refused(tmp_path):
    with pytest.raises(SystemUnavailable, match="no such folder"):
        make_system(f"wavs:{tmp_path / 'absent'}")
    with pytest.raises(SystemUnavailable, match="holds no .wav files"):
        make_system(f"wavs:{tmp_path}")
    with pytest.raises(SystemUnavailable, match="no such file or folder"):
        make_system(f"checkpoint:{tmp_path / 'model'}")
    with pytest.raises(SystemUnavailable, match="offline:"):
        make_system(f"offline:{tmp_path / 'nolib'}")


@pytest.mark.parametrize("model, valid, tool_called, corrections, attempts", [
    ("correct", True, True, 0, 1), ("correcting", True, True, 1, 2), ("chatty", False, False, 0, 0)])
def test_tool_calling_models_over_real_http(tiny, model, valid, tool_called, corrections, attempts):
    rows, truth = tiny
    script = {"correct": correct_model(truth), "correcting": correcting_model(truth), "chatty": chatty_model()}[model]
    with FakeOpenAIServer([script] * 10) as server:
        system = make_system(f"openai:fake-model@{server.url}")
        try:
            out = system.generate(rows[0], FAST)
        finally:
            system.close()
        tools = [t["function"]["name"] for t in server.requests[0]["tools"]]
    assert "render_patch" in tools
    assert (out.valid, out.tool_called, out.corrections, out.attempts) == (valid, tool_called, corrections, attempts)
    if valid:
        assert out.patch["ol"] == rows[0].patch["ol"] and out.error is None
    else:
        assert out.patch is None and out.error == "the model never called the render tool"
    assert system.describe()["base_url"] == server.url and system.describe()["model"] == "fake-model"


def test_a_model_that_only_makes_bad_patches_is_invalid_with_its_error(tiny):
    rows, truth = tiny
    bad = json.loads(json.dumps(rows[0].patch))
    bad["coarse"][0] = 99
    with FakeOpenAIServer([{"tool_calls": [("render_patch", {"patch": bad})]}] * 3) as server:
        system = make_system(f"openai:m@{server.url}", SystemOptions(max_turns=3))
        out = system.generate(rows[0], FAST)
        system.close()
    assert not out.valid and out.tool_called and out.attempts == 3 and out.corrections == 0
    assert "turn limit" in out.error


def test_an_unreachable_endpoint_stops_the_run():
    system = make_system("openai:m@http://127.0.0.1:9/v1", SystemOptions(timeout_s=5))
    with pytest.raises(SystemUnavailable, match="cannot reach the model"):
        system.generate(load_rows_stub(), FAST)
    system.close()
    zs = make_system("zeroshot:m@http://127.0.0.1:9/v1", SystemOptions(timeout_s=5))
    with pytest.raises(SystemUnavailable, match="cannot reach the model"):
        zs.generate(load_rows_stub(), FAST)


def load_rows_stub():
    from patchsmith.evals.systems import EvalRow

    return EvalRow(id="1", caption="a warm pad")


def test_zero_shot_asks_the_sources_way_and_reads_the_fenced_patch(tiny):
    rows, truth = tiny
    with FakeOpenAIServer([zeroshot_model(truth)] * 2) as server:
        out = make_system(f"zeroshot:m@{server.url}").generate(rows[0], FAST)
        sent = server.requests[0]
    assert "tools" not in sent and [m["role"] for m in sent["messages"]] == ["user"]
    assert sent["messages"][0]["content"].endswith(f"### Prompt: {rows[0].caption}")
    assert out.valid and not out.tool_called and out.patch["coarse"] == rows[0].patch["coarse"]
    assert "```json" in out.raw
    assert "modmatrix" in zeroshot_prompt("x", "schema") and "modmatrix" not in zeroshot_prompt("x")


def test_zero_shot_corrections_send_the_problems_back(tiny):
    rows, truth = tiny
    script = [{"content": "I think a sine."}, zeroshot_model(truth)]
    with FakeOpenAIServer(script) as server:
        out = make_system(f"zeroshot:m@{server.url}", SystemOptions(max_corrections=1)).generate(rows[0], FAST)
        second = server.requests[1]["messages"]
    assert out.valid and out.corrections == 1 and out.attempts == 2
    assert second[-1]["role"] == "user" and "could not be used" in second[-1]["content"]
    with FakeOpenAIServer([{"content": "no patch here"}]) as server:
        out = make_system(f"zeroshot:m@{server.url}").generate(rows[0], FAST)
    assert not out.valid and out.error


def test_zero_shot_in_the_source_layout_is_converted(tiny):
    from patchsmith.schema.source_research import export_source_dict
    from patchsmith.schema.validate import parse_patch

    rows, truth = tiny
    source = export_source_dict(parse_patch(rows[1].patch))
    answer = {"content": "```json\n" + json.dumps(source) + "\n```"}
    with FakeOpenAIServer([answer]) as server:
        out = make_system(f"zeroshot:m@{server.url}", SystemOptions(patch_layout="source-research")).generate(rows[1],
                                                                                                            FAST)
    assert out.valid and out.patch["ol"] == rows[1].patch["ol"]


def test_offline_system_leaves_the_captions_own_patch_out(tiny):
    rows, truth = tiny
    system = make_system("offline")
    out = system.generate(rows[0], FAST)
    assert out.valid and out.tool_called and out.patch is not None and out.corrections == 0
    assert system.describe()["leave_one_out"] is True
    edited = system.refine(out.patch, "brighter", FAST)
    assert edited.valid and edited.patch != out.patch


def test_wav_folder_system_reads_the_file_named_by_the_id(tmp_path):
    audio = render(load_rows_patch(), hold_s=0.3, release_s=0.1, sample_rate=16000)
    write_wav(tmp_path / "1.wav", np.stack([audio, audio], axis=1), 16000, gain="raw", subtype="FLOAT")
    system = make_system(f"wavs:{tmp_path}")
    assert isinstance(system, WavFolderSystem) and not system.makes_patches
    out = system.generate(load_rows_stub(), FAST)
    assert out.valid and out.sample_rate == 16000 and out.audio.ndim == 1
    assert np.allclose(out.audio, audio, atol=1e-6)
    missing = system.generate(load_rows_stub().model_copy(update={"id": "2"}), FAST)
    assert not missing.valid and "no file 2.wav" in missing.error


def load_rows_patch():
    from patchsmith.examples import load_examples

    return load_examples()[0].patch


def test_outcome_from_transcript_counts_fixed_errors():
    entries = [{"type": "model", "content": ""}, {"type": "tool", "name": "render_patch", "is_error": True},
               {"type": "model"}, {"type": "tool", "name": "validate_patch", "is_error": True},
               {"type": "tool", "name": "render_patch", "is_error": True},
               {"type": "model"}, {"type": "tool", "name": "render_patch", "is_error": False},
               {"type": "model", "content": "done"}]
    out = outcome_from_transcript(entries)
    assert (out.tool_called, out.attempts, out.corrections, out.turns, out.raw) == (True, 3, 2, 4, "done")
    assert outcome_from_transcript([{"type": "model", "content": "hi"}]).tool_called is False


def test_ground_truth_system_answers_with_the_captions_own_patch(tiny):
    rows, _ = tiny
    system = make_system("truth")
    out = system.generate(rows[0], FAST)
    assert out.valid and out.patch == rows[0].patch
    assert not system.generate(load_rows_stub(), FAST).valid  # no patch CSV, no truth
    assert system.refine(rows[0].patch, "brighter", FAST).patch == rows[0].patch
    with pytest.raises(SystemUnavailable, match="takes no argument"):
        make_system("truth:x")


# --- the prompt profiles: checkpoints and served checkpoints get the prompt they were trained on ------------


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A copy of the tiny random Qwen3 checkpoint; each test writes the patchsmith.json it needs."""
    pytest.importorskip("transformers")
    return tiny_checkpoint_copy(tmp_path_factory.mktemp("ckpt") / "ckpt")


def training_prompt(caption, think, fmt, **template):
    """The trained prompt of a first request through the checkpoint's chat template (as in training)."""
    from patchsmith.agent.trained_prompt import trained_messages, trained_tools

    return shared_tokenizer().apply_chat_template(trained_messages(caption, think, fmt),
                                                  tools=trained_tools(fmt) or None, tokenize=False,
                                                  add_generation_prompt=True, **template)


QUICK_MODEL = SystemOptions(max_tokens=4, max_turns=1)  # a random model: a few tokens, one turn


@pytest.mark.parametrize("kind, fmt, think", [("sft", "tools", False), ("grpo", "answer", True)])
def test_checkpoint_system_sends_the_trained_prompt(ckpt, kind, fmt, think):
    """``checkpoint:`` reads the record as ``design --model-path`` does and sends exactly the training prompt."""
    from patchsmith.agent.backends import OutputParsingBackend
    from patchsmith.agent.trained_prompt import write_checkpoint_record

    write_checkpoint_record(ckpt, kind, fmt, think)
    system = make_system(f"checkpoint:{ckpt}", QUICK_MODEL)
    try:
        out = system.generate(load_rows_stub(), FAST)
    finally:
        system.close()
    assert (system.prompt.fmt, system.prompt.think) == (fmt, think)
    local = system.backend.base if fmt == "answer" else system.backend
    assert isinstance(system.backend, OutputParsingBackend) == (fmt == "answer")
    # GRPO passed enable_thinking to the template, SFT nothing: the checkpoint is asked the same way.
    template = {"enable_thinking": think} if kind == "grpo" else {}
    assert local.last_prompt == training_prompt("a warm pad", think, fmt, **template)
    assert f"a warm pad {'/think' if think else '/no_think'}<|im_end|>" in local.last_prompt
    assert "You are a sound designer" not in local.last_prompt
    # A random model writes no usable patch: an invalid result with its reason, not a crash.
    assert not out.valid and out.patch is None and out.error
    described = system.describe()
    assert described["kind"] == "checkpoint" and described["prompt"].startswith(f"trained ({fmt}, ")


def test_checkpoint_system_agent_profile_and_untrained_checkpoints(ckpt):
    from patchsmith.agent.trained_prompt import write_checkpoint_record

    write_checkpoint_record(ckpt, "sft", "tools", False)
    system = make_system(f"checkpoint:{ckpt}", SystemOptions(max_tokens=4, max_turns=1, prompt="agent"))
    out = system.generate(load_rows_stub(), FAST)
    system.close()
    assert system.prompt is None and system.describe()["prompt"] == "agent" and not out.valid
    assert system.backend.last_prompt.startswith("<|im_start|>system\nYou are a sound designer")
    assert system.backend.last_prompt.count('{"type": "function"') == 8  # every MCP tool
    # A checkpoint patchsmith did not train gets the agent prompt, and the system says why.
    plain = make_system(f"checkpoint:{shared_tiny_checkpoint()}", QUICK_MODEL)
    assert plain.prompt is None and "records no patchsmith training" in plain.notes[0]
    with pytest.raises(SystemUnavailable, match="was trained to call render_patch"):
        make_system(f"checkpoint:{ckpt}", SystemOptions(prompt="trained", output_parsing=True))


def test_served_checkpoint_in_the_trained_profile_over_real_http(tiny):
    """``openai:`` with ``prompt="trained"`` (a checkpoint behind serve-model): the training prompt, one call."""
    from patchsmith.agent.output_parsing import compose_request
    from patchsmith.agent.trained_prompt import trained_messages, trained_tools
    from patchsmith.schema.compact import dumps_compact
    from patchsmith.schema.validate import parse_patch

    rows, _ = tiny
    patch = rows[0].patch
    with FakeOpenAIServer([tool_turn(("render_patch", {"patch": patch}))] * 2) as server:
        system = make_system(f"openai:m@{server.url}", SystemOptions(prompt="trained"))
        out = system.generate(rows[0], FAST)
        edited = system.refine(patch, "brighter", FAST)
        system.close()
        first, second = server.requests
    assert first["messages"] == trained_messages(rows[0].caption, False) and first["tools"] == trained_tools()
    assert second["messages"] == [{"role": "user", "content": compose_request(
        "brighter", dumps_compact(parse_patch(patch))) + " /no_think"}]
    assert out.valid and out.tool_called and out.attempts == 1 and out.patch["ol"] == patch["ol"]
    assert edited.valid and system.describe()["prompt"] == "trained (tools, /no_think)"


def test_served_checkpoint_in_the_answer_format(tiny):
    from patchsmith.agent.trained_prompt import patch_answer, trained_messages
    from patchsmith.schema.validate import parse_patch

    rows, _ = tiny
    answer = patch_answer(parse_patch(rows[1].patch), "two carriers")["content"]
    with FakeOpenAIServer([text_turn(answer)]) as server:
        system = make_system(f"openai:m@{server.url}",
                             SystemOptions(prompt="trained", output_parsing=True, thinking=True))
        out = system.generate(rows[1], FAST)
        system.close()
        sent = server.requests[0]
    assert "tools" not in sent and sent["messages"] == trained_messages(rows[1].caption, True, "answer")
    assert out.valid and out.patch["coarse"] == rows[1].patch["coarse"]


@pytest.mark.parametrize("spec, options, message", [
    ("zeroshot:m@http://127.0.0.1:9/v1", SystemOptions(prompt="trained"), "zeroshot takes minimal or schema"),
    ("offline", SystemOptions(prompt="agent"), "a prompt profile is for openai: and checkpoint:"),
    ("openai:m@http://127.0.0.1:9/v1", SystemOptions(prompt="trained", strict_tools=True), "--strict-tools"),
    ("openai:m@http://127.0.0.1:9/v1", SystemOptions(prompt="json"), "allowed one of trained, agent"),
    ("openai:m@http://127.0.0.1:9/v1", SystemOptions(max_tool_calls=-1), "--max-tool-calls: found -1, allowed an "
                                                                          "integer >= 0"),
    ("offline", SystemOptions(output_parsing=True), "--output-parsing is for openai: and checkpoint: systems, not "
                                                    "offline"),
])
def test_prompt_profile_misuse_is_refused(spec, options, message):
    with pytest.raises(SystemUnavailable, match=message):
        make_system(spec, options)
