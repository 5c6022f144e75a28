"""``patchsmith design`` and ``patchsmith chat`` end to end: the offline designer, a scripted model, pipes."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from patchsmith.schema.validate import parse_patch
from patchsmith.synth.wav import read_wav

from tests.agent.fake_openai_server import FakeOpenAIServer, text_turn, tool_turn
from tests.agent.tiny_checkpoint import shared_tiny_checkpoint, shared_tokenizer, tiny_checkpoint_copy
from tests.cli.cli_support import EXAMPLES, cli, listing, proc  # noqa: F401  (fixtures)

EPIANO = json.loads((EXAMPLES / "epiano.json").read_text())["patch"]
OUTPUTS = ["patch.json", "sound.wav", "transcript.json", "voice.syx"]


@pytest.fixture(autouse=True)
def no_model_env(monkeypatch):
    """The offline designer unless a test names a model (a developer's own settings must not leak in)."""
    for var in ("PATCHSMITH_MODEL", "PATCHSMITH_BASE_URL", "PATCHSMITH_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)


def check_outputs(folder):
    assert listing(folder) == OUTPUTS
    patch = parse_patch(json.loads((folder / "patch.json").read_text()))
    audio, sr = read_wav(folder / "sound.wav")
    assert sr == 48000 and len(audio) > sr and abs(audio).max() > 0.1
    assert (folder / "voice.syx").read_bytes()[:2] == b"\xf0\x43"
    transcript = json.loads((folder / "transcript.json").read_text())
    return patch, transcript


# --- design --------------------------------------------------------------------------------------------


def test_design_offline_in_process(cli, tmp_path):
    r = cli("design", "glassy electric piano, soft attack", "-o", "out")
    assert r.code == 0, r.err
    patch, transcript = check_outputs(tmp_path / "out")
    types = [e["type"] for e in transcript["entries"]]
    assert types[0] == "request" and "final" in types and "version" in types
    tools = [e["name"] for e in transcript["entries"] if e["type"] == "tool"]
    assert tools and tools[-1] == "render_patch"
    assert transcript["meta"]["backend"]["backend"] == "OfflineDesignerBackend"
    assert transcript["meta"]["mcp"] == "in-process"
    assert "designed 'glassy electric piano, soft attack'" in r.out and "wrote " in r.out and "sound:" in r.out


def test_design_as_a_subprocess(proc, tmp_path):
    r = proc("design", "deep punchy bass", "-o", "bass", "--note", "36", "--velocity", "110")
    assert r.code == 0, r.err
    _, transcript = check_outputs(tmp_path / "bass")
    render = next(e for e in transcript["entries"] if e["type"] == "tool" and e["name"] == "render_patch")
    assert render["arguments"]["notes"] == [36] and render["arguments"]["velocity"] == 110


def test_design_over_stdio_mcp(cli, tmp_path):
    r = cli("design", "slow warm pad with vibrato", "-o", "pad", "--mcp", "stdio")
    assert r.code == 0, r.err
    _, transcript = check_outputs(tmp_path / "pad")
    assert transcript["meta"]["mcp"] == "stdio"


def test_design_with_a_scripted_model(cli, tmp_path, monkeypatch):
    script = [tool_turn(("render_patch", {"patch": EPIANO, "notes": [60]})), text_turn("A tine electric piano.")]
    with FakeOpenAIServer(script) as server:
        monkeypatch.setenv("PATCHSMITH_BASE_URL", server.url)
        r = cli("design", "electric piano", "-o", "ep", "--model", "qwen3-dx7", "--strict-tools")
    assert r.code == 0, r.err
    patch, transcript = check_outputs(tmp_path / "ep")
    assert patch == parse_patch(EPIANO)
    assert transcript["meta"]["backend"]["model"] == "qwen3-dx7"
    assert server.requests[0]["tools"][0]["function"]["strict"] is True
    assert "A tine electric piano." in r.out


def test_design_source_research_layout(cli, tmp_path):
    from patchsmith.schema.source_research import export_source_dict

    answer = "<think>\n\n</think>\n\n```json\n" + json.dumps(export_source_dict(parse_patch(EPIANO))) + "\n```"
    with FakeOpenAIServer([text_turn(answer)]) as server:
        r = cli("design", "electric piano", "-o", "ep", "--base-url", server.url, "--model", "llmforfm",
                "--patch-layout", "source-research")
    assert r.code == 0, r.err
    patch, _ = check_outputs(tmp_path / "ep")
    assert patch.core() == parse_patch(EPIANO).core()


def test_design_without_a_patch_writes_nothing(cli, tmp_path):
    with FakeOpenAIServer([text_turn("I would rather not.")]) as server:
        r = cli("design", "electric piano", "-o", "ep", "--base-url", server.url, "--model", "m")
    r.assert_clean_failure()
    assert "without producing a patch: I would rather not." in r.err
    assert not (tmp_path / "ep").exists()


def test_design_model_timeout_is_a_clean_error(cli, tmp_path):
    with FakeOpenAIServer([{"sleep": 10, "content": "late"}]) as server:
        r = cli("design", "electric piano", "-o", "ep", "--base-url", server.url, "--model", "m", "--timeout", "0.5")
    r.assert_clean_failure()
    assert "did not answer within 0.5 s" in r.err and not (tmp_path / "ep").exists()


def test_design_keeps_an_existing_folder_intact_on_failure(cli, tmp_path):
    out = tmp_path / "ep"
    out.mkdir()
    (out / "patch.json").write_text("old")
    with FakeOpenAIServer([tool_turn(("validate_patch", {"patch": EPIANO}))] * 3) as server:
        r = cli("design", "ep", "-o", "ep", "--base-url", server.url, "--model", "m", "--max-turns", "2")
    r.assert_clean_failure()
    assert "turn limit reached" in r.err and listing(out) == ["patch.json"]
    assert (out / "patch.json").read_text() == "old"


@pytest.mark.parametrize("args, message", [
    (["--note", "200"], "note"),
    (["--velocity", "0"], "velocity"),
    (["--patch-layout", "source-research"], "need a model"),
    (["--base-url", "http://127.0.0.1:9/v1"], "--model"),
    (["--mcp", "carrier-pigeon"], "--mcp"),
    (["--max-turns", "0"], "--max-turns"),
    (["--max-turns", "100000"], "--max-turns: found 100000, allowed an integer >= 1 and <= 1000"),
    (["--max-seconds", "1e400"], "--max-seconds: found inf, allowed a number of seconds > 0 and <= 86400"),
])
def test_design_bad_arguments(cli, args, message):
    r = cli("design", "bass", "-o", "out", *args)
    r.assert_clean_failure()
    assert message in r.err


def test_design_output_is_a_file(cli, tmp_path):
    (tmp_path / "taken").write_text("x")
    cli("design", "bass", "-o", "taken").assert_clean_failure()
    cli("design", "bass", "-o", "no/such/dir").assert_clean_failure()
    cli("design", "  ", "-o", "out").assert_clean_failure()


# --- chat ------------------------------------------------------------------------------------------------

SESSION = """\
glassy electric piano
shorter decay
a bit brighter
undo
redo
history
save
save final.json
describe
quit
this line is never read
"""


def versions(out):
    return [line for line in out.splitlines() if line.startswith(("version ", "undo:", "redo:"))]


def test_chat_piped_session(cli, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(SESSION))
    r = cli("chat", "-o", "session")
    assert r.code == 0, r.err
    lines = versions(r.out)
    assert lines[0].startswith("version 1 of 1") and "glassy electric piano" in lines[0]
    assert lines[1].startswith("version 2 of 2") and lines[2].startswith("version 3 of 3")
    assert lines[3].startswith("undo: now at version 2 of 3") and lines[4].startswith("redo: now at version 3 of 3")
    assert "changed " in r.out and not any(l.startswith(">") for l in r.out.splitlines())  # no prompts: not a TTY
    patch, transcript = check_outputs(tmp_path / "session")
    assert parse_patch(json.loads((tmp_path / "final.json").read_text())) == patch
    assert "OP1" in r.out  # describe
    kinds = [e["type"] for e in transcript["entries"]]
    assert kinds.count("request") == 3 and kinds.count("version") == 3 and "undo" in kinds and "redo" in kinds
    tools = [e["name"] for e in transcript["entries"] if e["type"] == "tool"]
    assert tools[:3] == ["render_patch", "edit_patch", "render_patch"]


def test_chat_as_a_subprocess_from_a_pipe(tmp_path):
    script = "deep punchy bass\nshorter decay\nundo\nsave out\n"
    done = subprocess.run([sys.executable, "-m", "patchsmith", "chat"], input=script, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert versions(done.stdout)[-1].startswith("undo: now at version 1 of 2")
    check_outputs(tmp_path / "out")


def test_chat_errors_do_not_end_the_session(cli, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("undo\nsave\ndescribe\nwarm pad\nredo\nsave x/y/z.json\n"))
    r = cli("chat")
    assert r.code == 2
    assert r.error_lines == ["error: nothing to undo", "error: no patch yet: describe a sound first",
                             "error: no patch yet: describe a sound first", "error: nothing to redo",
                             r.error_lines[-1]]
    assert "does not exist" in r.error_lines[-1]
    assert versions(r.out)[0].startswith("version 1 of 1")
    assert "Traceback" not in r.err


def test_design_plays_the_sound_where_the_library_patch_is_heard(cli, tmp_path):
    r = cli("design", "deep punchy bass", "-o", "bass")
    assert r.code == 0, r.err
    _, transcript = check_outputs(tmp_path / "bass")
    args = next(e for e in transcript["entries"] if e["type"] == "tool" and e["name"] == "render_patch")["arguments"]
    assert args["notes"][0] <= 48  # a bass is auditioned low, not at middle C
    audio, sr = read_wav(tmp_path / "bass" / "sound.wav")
    assert len(audio) == round((args["hold_s"] + args["release_s"]) * sr)
    assert f"note {args['notes'][0]}," in r.out


def test_design_with_another_library(cli, tmp_path):
    from patchsmith.agent import library

    presets = Path(library.__file__).parent / "presets"
    r = cli("design", "church bell", "-o", "bell", "--library", str(presets))
    assert r.code == 0, r.err
    check_outputs(tmp_path / "bell")
    bad = cli("design", "church bell", "-o", "bell2", "--library", "no-such-library")
    bad.assert_clean_failure()
    assert "--library" in bad.err and not (tmp_path / "bell2").exists()


def test_design_text_the_designer_refuses(cli, tmp_path):
    r = cli("design", "bass " * 1000, "-o", "out")
    r.assert_clean_failure()
    assert "offline designer" in r.err and not (tmp_path / "out").exists()


# --- the trained prompt profile ---------------------------------------------------------------------------


def training_prompt(caption, fmt, think=False, tokenizer=None):
    """A training example's prompt part for ``caption``: its messages and tools, or rendered with ``tokenizer``."""
    from patchsmith.training.sft_data import SftRow, answer_example, tool_example

    row = SftRow(caption=caption, patch=EPIANO, cot="two carriers" if think else None)
    ex = tool_example(row, think) if fmt == "tools" else answer_example(row, think)
    if tokenizer is None:
        return ex["messages"][:1], ex.get("tools")
    return tokenizer.apply_chat_template(ex["messages"][:1], tools=ex.get("tools"), tokenize=False,
                                         add_generation_prompt=True)


def test_design_trained_prompt_with_a_served_model(cli, tmp_path):
    """``--prompt trained`` with an endpoint (a checkpoint behind `patchsmith serve-model`): the training prompt."""
    with FakeOpenAIServer([tool_turn(("render_patch", {"patch": EPIANO}))]) as server:
        r = cli("design", "electric piano", "-o", "ep", "--base-url", server.url, "--model", "m",
                "--prompt", "trained")
    assert r.code == 0, r.err
    assert "prompt: trained profile (format tools, /no_think" in r.err
    messages, tools = training_prompt("electric piano", "tools")
    assert server.requests[0]["messages"] == messages and server.requests[0]["tools"] == tools
    assert len(server.requests) == 1  # one render_patch call ends the request, as trained
    _, transcript = check_outputs(tmp_path / "ep")
    assert transcript["meta"]["prompt"]["profile"] == "trained"


def test_chat_trained_prompt_refinement_turn(cli, tmp_path, monkeypatch):
    from patchsmith.agent.output_parsing import compose_request
    from patchsmith.schema.compact import dumps_compact

    monkeypatch.setattr(sys, "stdin", io.StringIO("electric piano\nshorter decay\n"))
    script = [tool_turn(("render_patch", {"patch": EPIANO}))] * 2
    with FakeOpenAIServer(script) as server:
        r = cli("chat", "--base-url", server.url, "--model", "m", "--prompt", "trained", "--thinking")
    assert r.code == 0, r.err
    first, second = (req["messages"] for req in server.requests)
    assert first == [{"role": "user", "content": "electric piano /think"}]
    assert second[-1] == {"role": "user", "content": compose_request("shorter decay", dumps_compact(
        parse_patch(EPIANO))) + " /no_think"}


@pytest.mark.parametrize("args, message", [
    (["--prompt", "trained"], "--prompt trained is for a patchsmith-trained model"),
    (["--prompt", "trained", "--model", "m", "--base-url", "http://127.0.0.1:9/v1", "--strict-tools"],
     "--strict-tools"),
])
def test_trained_prompt_bad_arguments(cli, args, message):
    r = cli("design", "bass", "-o", "out", *args)
    r.assert_clean_failure()
    assert message in r.err


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A tiny random Qwen3 checkpoint (as `patchsmith train` saves one) recording the tools format."""
    pytest.importorskip("transformers")
    from patchsmith.agent.trained_prompt import write_checkpoint_record

    path = tiny_checkpoint_copy(tmp_path_factory.mktemp("tiny") / "ckpt")
    write_checkpoint_record(path, "sft", "tools", False)
    return path


def conversation_args(*args):
    from patchsmith.cli import build_parser

    return build_parser().parse_args(["design", "warm pad", "-o", "out", "--max-new-tokens", "4",
                                      "--max-turns", "1", *[str(a) for a in args]])


def ask(conversation):
    from patchsmith.agent.backends import BackendError
    from patchsmith.agent.loop import AgentError

    try:
        conversation.request("warm pad")
    except (AgentError, BackendError):
        pass  # a random model writes no usable answer; what it was sent is what is checked


def test_model_path_defaults_to_the_trained_profile(tiny_checkpoint, capsys):
    """``design --model-path`` sends the checkpoint exactly its training prompt (after the chat template)."""
    from patchsmith.agent.local_model import LocalTransformersBackend
    from patchsmith.cli.design import open_conversation
    with open_conversation(conversation_args("--model-path", tiny_checkpoint)) as conv:
        backend = conv.agent.backend
        assert isinstance(backend, LocalTransformersBackend) and conv.agent.prompt.fmt == "tools"
        ask(conv)
    assert backend.last_prompt == training_prompt("warm pad", "tools", tokenizer=shared_tokenizer())
    assert "<|im_start|>user\nwarm pad /no_think<|im_end|>" in backend.last_prompt
    assert "prompt: trained profile" in capsys.readouterr().err

    with open_conversation(conversation_args("--model-path", tiny_checkpoint, "--prompt", "agent")) as conv:
        assert conv.agent.prompt is None
        ask(conv)
    assert conv.agent.backend.last_prompt.startswith("<|im_start|>system\nYou are a sound designer")
    assert conv.agent.backend.last_prompt.count('{"type": "function"') == 8

    # A checkpoint patchsmith did not train (no patchsmith.json, no patchsmith model card) gets the agent prompt.
    capsys.readouterr()
    with open_conversation(conversation_args("--model-path", shared_tiny_checkpoint())) as conv:
        assert conv.agent.prompt is None
    assert "records no patchsmith training" in capsys.readouterr().err


def test_model_path_answer_format_checkpoint(tiny_checkpoint, tmp_path, cli):
    """A checkpoint trained in the answer format is asked without tools and read as a fenced patch."""
    import shutil

    from patchsmith.agent.backends import OutputParsingBackend
    from patchsmith.agent.trained_prompt import write_checkpoint_record
    from patchsmith.cli.design import open_conversation

    ckpt = tmp_path / "answer-ckpt"
    shutil.copytree(tiny_checkpoint, ckpt)
    write_checkpoint_record(ckpt, "sft", "answer", True)
    with open_conversation(conversation_args("--model-path", ckpt)) as conv:
        backend = conv.agent.backend
        assert isinstance(backend, OutputParsingBackend) and backend.as_given
        ask(conv)
    assert backend.base.last_prompt == training_prompt("warm pad", "answer", think=True, tokenizer=shared_tokenizer())

    r = cli("design", "bass", "-o", "out", "--model-path", ckpt, "--output-parsing", "--prompt", "trained",
            "--max-new-tokens", "4", "--max-turns", "1")
    assert r.code == 2 and "Traceback" not in r.err  # answer format + --output-parsing agree; the model fails
    write_checkpoint_record(ckpt, "sft", "tools", False)
    r = cli("design", "bass", "-o", "out", "--model-path", ckpt, "--output-parsing")
    r.assert_clean_failure()
    assert "was trained to call render_patch" in r.err
