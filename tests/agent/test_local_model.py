"""The local transformers backend on a tiny random Qwen3 checkpoint: loading, prompts, greedy turns, parsing."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("transformers")

from patchsmith.agent.backends import BackendError, OutputParsingBackend  # noqa: E402
from patchsmith.agent.local_model import LocalTransformersBackend, checkpoint_problems  # noqa: E402
from patchsmith.schema.openai_tools import openai_tools  # noqa: E402

from .test_backends import EPIANO  # noqa: E402
from .tiny_checkpoint import shared_tiny_checkpoint  # noqa: E402

RENDER = [t for t in openai_tools() if t["function"]["name"] == "render_patch"]
USER = [{"role": "system", "content": "You design DX7 patches."}, {"role": "user", "content": "warm pad"}]


@pytest.fixture(scope="module")
def ckpt():
    return shared_tiny_checkpoint()  # one per session (read-only here)


@pytest.fixture(scope="module")
def backend(ckpt):
    return LocalTransformersBackend(ckpt, max_new_tokens=12)


def test_checkpoint_problems(tmp_path, ckpt):
    assert checkpoint_problems(ckpt) == []
    assert "does not exist" in checkpoint_problems(tmp_path / "nope")[0]
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    lines = checkpoint_problems(tmp_path / "half")
    assert any("no weights" in line for line in lines) and any("no tokenizer" in line for line in lines)
    with pytest.raises(BackendError, match="does not exist"):
        LocalTransformersBackend(tmp_path / "nope")
    with pytest.raises(BackendError, match="max_new_tokens"):
        LocalTransformersBackend(ckpt, max_new_tokens=0)


def test_prompt_uses_the_checkpoint_template_tools_and_thinking(backend, ckpt):
    text = backend.prompt_text(USER, RENDER)
    assert text.startswith("<|im_start|>system\nYou design DX7 patches.\n\n# Tools")
    assert '"name": "render_patch"' in text
    assert text.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")  # enable_thinking=False
    thinking = LocalTransformersBackend(ckpt, enable_thinking=True, max_new_tokens=4)
    assert thinking.prompt_text(USER, []).endswith("<|im_start|>assistant\n")
    assert "# Tools" not in thinking.prompt_text(USER, [])


def test_history_with_tool_calls_renders_arguments_as_json(backend):
    call = {"id": "c1", "type": "function", "function": {"name": "render_patch",
                                                          "arguments": json.dumps({"patch": EPIANO})}}
    messages = USER + [{"role": "assistant", "content": None, "tool_calls": [call]},
                       {"role": "tool", "tool_call_id": "c1", "content": "Rendered: bright, 40 ms attack"},
                       {"role": "user", "content": "shorter decay"}]
    text = backend.prompt_text(messages, RENDER)
    assert '<tool_call>\n{"name": "render_patch", "arguments": {"patch": {"modmatrix": [[' in text
    assert "<tool_response>\nRendered: bright, 40 ms attack\n</tool_response>" in text


def test_greedy_turn_is_deterministic_and_well_formed(backend):
    a = backend.complete(USER, RENDER)
    b = backend.complete(USER, RENDER)
    assert a.content == b.content and a.tool_calls == b.tool_calls
    assert a.usage["completion_tokens"] <= 12 and a.usage["prompt_tokens"] > 100
    assert a.finish_reason in ("stop", "length", "tool_calls")
    assert backend.describe()["enable_thinking"] is False


def test_reply_parsing_tool_calls_text_and_thinking(backend):
    raw = ('I will render it.\n<tool_call>\n{"name": "render_patch", "arguments": {"patch": {"feedback": 3}}}\n'
           '</tool_call>\n<tool_call>\n{"name": "validate_patch", "arguments": "{not json"}\n</tool_call>')
    turn = backend.read_reply(raw, tools=True, finish_reason="stop")
    assert turn.content == "I will render it." and turn.finish_reason == "tool_calls"
    assert [c.name for c in turn.tool_calls] == ["render_patch", "validate_patch"]
    assert json.loads(turn.tool_calls[0].arguments) == {"patch": {"feedback": 3}}
    assert turn.tool_calls[1].arguments == "{not json"  # the loop tells the model what is wrong with it
    assert len({c.id for c in turn.tool_calls}) == 2
    thought = backend.read_reply("<think>\nbright and short\n</think>\n\nDone.", tools=True)
    assert thought.reasoning == "bright and short" and thought.content == "Done." and not thought.tool_calls
    # Without tools the text is left whole for OutputParsingBackend, tool-call blocks included.
    plain = backend.read_reply(raw, tools=False)
    assert not plain.tool_calls and "<tool_call>" in plain.content


def test_output_parsing_wrapper_asks_without_tools_and_reads_the_text(backend):
    wrapped = OutputParsingBackend(backend)
    turn = wrapped.complete(USER, RENDER)
    # The wrapper shows a text-answering model no tool schema: a short prompt of its own system text.
    assert turn.usage["prompt_tokens"] < 200 < backend.complete(USER, RENDER).usage["prompt_tokens"]
    # A random model writes no usable patch: no call, and either problems to send back or a plain answer.
    assert not turn.tool_calls or all(c.name == "render_patch" for c in turn.tool_calls)
