"""The trained prompt profile: what the agent sends a trained model equals what training showed it.

Training examples (``training.sft_data``) and the agent's conversation (``agent.loop`` + ``conversation``,
through a real scripted OpenAI-compatible server and the real MCP tools) are both rendered with the
offline tokenizer's Qwen3 chat template and compared byte for byte, in both formats, for a first request
and for a refinement.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from patchsmith.agent.backends import OpenAICompatibleBackend, OutputParsingBackend
from patchsmith.agent.conversation import Conversation
from patchsmith.agent.loop import Agent, system_message
from patchsmith.agent.mcp_client import ToolClient
from patchsmith.agent.output_parsing import compose_request
from patchsmith.agent.trained_prompt import (CHECKPOINT_FILE, TrainedPrompt, read_checkpoint_prompt, trained_messages,
                                             trained_tools, write_checkpoint_record)
from patchsmith.schema.compact import dumps_compact
from patchsmith.schema.openai_tools import openai_tools
from patchsmith.schema.validate import parse_patch
from patchsmith.synth.edits import adjust
from patchsmith.training.sft_data import (RefinementTurn, SftRow, answer_example, grpo_prompt, tool_example)

from tests.agent.fake_openai_server import FakeOpenAIServer, text_turn, tool_turn
from tests.agent.tiny_checkpoint import shared_tokenizer

REPO = Path(__file__).resolve().parents[2]
EPIANO = json.loads((REPO / "examples" / "epiano.json").read_text())["patch"]
CAPTION = "glassy electric piano, soft attack"


@pytest.fixture(scope="module")
def tokenizer():
    pytest.importorskip("transformers")
    return shared_tokenizer()


@pytest.fixture(scope="module")
def tools(tmp_path_factory):
    with ToolClient(audio_dir=tmp_path_factory.mktemp("renders")) as client:
        yield client


def render(tok, messages, tools=None, **kwargs):
    return tok.apply_chat_template(messages, tools=tools or None, tokenize=False, add_generation_prompt=True, **kwargs)


def edited():
    return adjust(parse_patch(EPIANO), "decay", -2).patch


def row(cot=None, history=False):
    turns = [RefinementTurn(instruction="shorter decay", patch=edited())] if history else None
    return SftRow(caption=CAPTION, patch=EPIANO, cot=cot, history=turns, id="r1")


def agent_for(server, tools, prompt):
    base = OpenAICompatibleBackend("trained-qwen3", server.url, api_key="k")
    backend = OutputParsingBackend(base, as_given=True) if prompt.fmt == "answer" else base
    return Agent(backend, tools, prompt=prompt)


def test_trained_messages_and_tools():
    assert trained_messages("bass", False) == [{"role": "user", "content": "bass /no_think"}]
    assert trained_messages("bass", True, "answer") == [{"role": "user", "content": "bass /think"}]
    assert [t["function"]["name"] for t in trained_tools()] == ["render_patch"]
    assert trained_tools() == [t for t in openai_tools() if t["function"]["name"] == "render_patch"]
    assert trained_tools("answer") == []
    with pytest.raises(ValueError, match="allowed one of answer, tools"):
        trained_tools("json")


@pytest.mark.parametrize("think", [False, True])
def test_first_request_tools_format_is_the_training_prompt(tokenizer, tools, think):
    """A design request in the trained profile reaches the model exactly as SFT's prompt part (tools format)."""
    with FakeOpenAIServer([tool_turn(("render_patch", {"patch": EPIANO}))]) as server:
        conv = Conversation(agent_for(server, tools, TrainedPrompt(fmt="tools", think=think)))
        exchange = conv.request(CAPTION)
    sent = server.requests[0]
    assert [t["function"]["name"] for t in sent["tools"]] == ["render_patch"]
    assert all(m["role"] != "system" for m in sent["messages"])
    example = tool_example(row(cot="two carriers" if think else None), think)
    assert sent["messages"] == example["messages"][:1]
    assert render(tokenizer, sent["messages"], sent["tools"]) == render(tokenizer, example["messages"][:1],
                                                                        example["tools"])
    # One render_patch call ends the request, as in training; no answer turn is asked for.
    assert len(server.requests) == 1 and exchange.version is not None
    assert conv.transcript.meta["prompt"]["profile"] == "trained"
    assert conv.transcript.meta["prompt"]["offered_tools"] == ["render_patch"]


@pytest.mark.parametrize("think", [False, True])
def test_first_request_answer_format_is_the_training_prompt(tokenizer, tools, think):
    reply = "<think>\n\n</think>\n\n```json\n" + dumps_compact(parse_patch(EPIANO)) + "\n```"
    with FakeOpenAIServer([text_turn(reply)]) as server:
        conv = Conversation(agent_for(server, tools, TrainedPrompt(fmt="answer", think=think)))
        exchange = conv.request(CAPTION)
    sent = server.requests[0]
    assert "tools" not in sent
    example = answer_example(row(cot="two carriers" if think else None), think)
    assert sent["messages"] == example["messages"][:1]
    assert render(tokenizer, sent["messages"]) == render(tokenizer, example["messages"][:1])
    assert exchange.version is not None and conv.current == parse_patch(EPIANO)


@pytest.mark.parametrize("fmt", ["tools", "answer"])
def test_refinement_is_the_training_conversation(tokenizer, tools, fmt):
    """After a design, a refinement is sent as a training example's second prompt, byte for byte."""
    new = edited()
    if fmt == "tools":
        # The model writes its patch in its own layout; the history shows it as training wrote it.
        script = [tool_turn(("render_patch", {"patch": parse_patch(EPIANO).to_dict()})),
                  tool_turn(("render_patch", {"patch": new.to_dict()}))]
        example = tool_example(row(history=True), False)
        upto = 4  # user, call, tool result, refinement
    else:
        script = [text_turn("```json\n" + json.dumps(parse_patch(EPIANO).to_dict()) + "\n```"),
                  text_turn("```json\n" + dumps_compact(new) + "\n```")]
        example = answer_example(row(history=True), False)
        upto = 3  # user, answer, refinement
    with FakeOpenAIServer(script) as server:
        conv = Conversation(agent_for(server, tools, TrainedPrompt(fmt=fmt)))
        conv.request(CAPTION)
        conv.request("shorter decay")
    assert len(server.requests) == 2 and conv.current == new
    sent = server.requests[1]
    want = render(tokenizer, example["messages"][:upto], example.get("tools"))
    assert render(tokenizer, sent["messages"], sent.get("tools")) == want
    assert sent["messages"][-1]["content"] == compose_request("shorter decay", dumps_compact(parse_patch(EPIANO))) \
        + " /no_think"


def test_grpo_prompt_is_the_trained_prompt_with_the_template_switch(tokenizer):
    for think in (False, True):
        prompt = TrainedPrompt(fmt="tools", think=think, template_thinking=think)
        agent_view = prompt.model_messages([system_message(), {"role": "user", "content": CAPTION}])
        grpo = grpo_prompt(row(), "tools", think=think)["prompt"]
        assert render(tokenizer, agent_view, prompt.tools(), **prompt.template_kwargs()) == render(
            tokenizer, grpo, None, enable_thinking=think)


def test_agent_profile_is_unchanged(tools):
    with FakeOpenAIServer([tool_turn(("render_patch", {"patch": EPIANO})), text_turn("done")]) as server:
        Conversation(Agent(OpenAICompatibleBackend("m", server.url, api_key="k"), tools)).request(CAPTION)
    first = server.requests[0]
    assert first["messages"][0]["role"] == "system" and first["messages"][1]["content"] == CAPTION
    assert len(first["tools"]) == 8 and len(server.requests) == 2


def test_checkpoint_record_round_trip(tmp_path):
    assert read_checkpoint_prompt(tmp_path) is None
    write_checkpoint_record(tmp_path, "sft", "answer", True)
    got = read_checkpoint_prompt(tmp_path)
    assert (got.fmt, got.think, got.template_thinking) == ("answer", True, None)
    write_checkpoint_record(tmp_path, "grpo", "tools", False)
    got = read_checkpoint_prompt(tmp_path)
    assert (got.fmt, got.think, got.template_thinking) == ("tools", False, False)
    assert got.source.endswith(CHECKPOINT_FILE)
    (tmp_path / CHECKPOINT_FILE).write_text('{"prompt": {"fmt": "json"}}')
    with pytest.raises(ValueError, match="not a patchsmith checkpoint record"):
        read_checkpoint_prompt(tmp_path)
    with pytest.raises(ValueError, match="allowed one of answer, tools"):
        write_checkpoint_record(tmp_path, "sft", "json", False)


def test_model_card_fallback(tmp_path):
    from patchsmith.training.model_card import CardInfo, write_model_card

    write_model_card(tmp_path, CardInfo(kind="grpo", base_model="b", data="d", data_format="tools",
                                        enable_thinking=True, versions={"python": "3"}))
    got = read_checkpoint_prompt(tmp_path)
    assert (got.fmt, got.think, got.template_thinking) == ("tools", True, True)


def test_thinking_for_an_endpoint_under_the_agent_profile_is_noted_as_unused(tmp_path):
    from patchsmith.agent.trained_prompt import choose_prompt

    for thinking in (True, False):
        notes: list[str] = []
        assert choose_prompt("agent", thinking=thinking, notes=notes) is None
        assert notes == ["--thinking is for the trained prompt or a checkpoint; an endpoint's thinking is set by its "
                         "server, so it is not used"]
    quiet: list[str] = []
    assert choose_prompt(None, notes=quiet) is None and quiet == []  # no --thinking given: nothing to say
    assert choose_prompt("agent", checkpoint=tmp_path, thinking=True, notes=quiet) is None
    assert quiet == []  # a checkpoint's template takes it as enable_thinking
    trained = choose_prompt("trained", thinking=True, notes=quiet)
    assert trained is not None and trained.think and not any("--thinking" in n for n in quiet)
