"""The model backends: OpenAI-compatible (keys, reasoning, text tool calls), output parsing, offline designer."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from patchsmith.agent.backends import (
    BackendError,
    ModelTurn,
    OfflineDesignerBackend,
    OpenAICompatibleBackend,
    OutputParsingBackend,
)
from patchsmith.agent.conversation import Conversation
from patchsmith.agent.loop import Agent, system_message
from patchsmith.agent.mcp_client import ToolClient, ToolOutcome, read_tool_message
from patchsmith.schema.source_research import export_source_dict
from patchsmith.schema.validate import parse_patch

from tests.agent.fake_openai_server import FakeOpenAIServer, text_turn

REPO = Path(__file__).resolve().parents[2]
EPIANO = json.loads((REPO / "examples" / "epiano.json").read_text())["patch"]
USER = [{"role": "user", "content": "bell"}]


@pytest.fixture(scope="module")
def tools(tmp_path_factory):
    with ToolClient(audio_dir=tmp_path_factory.mktemp("renders")) as client:
        yield client


# --- OpenAI-compatible -----------------------------------------------------------------------------------


def test_api_key_from_the_environment(monkeypatch):
    monkeypatch.delenv("PATCHSMITH_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(BackendError, match="PATCHSMITH_API_KEY or OPENAI_API_KEY"):
        OpenAICompatibleBackend("gpt-x")
    with pytest.raises(BackendError, match="--model"):
        OpenAICompatibleBackend("", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "from-openai-var")
    monkeypatch.setenv("PATCHSMITH_API_KEY", "from-patchsmith-var")
    with FakeOpenAIServer([text_turn("hi"), text_turn("hi")]) as server:
        OpenAICompatibleBackend("m", server.url).complete(USER, [])
        monkeypatch.delenv("PATCHSMITH_API_KEY")
        monkeypatch.delenv("OPENAI_API_KEY")
        OpenAICompatibleBackend("m", server.url).complete(USER, [])  # a local server needs no key
    assert server.headers[0]["authorization"] == "Bearer from-patchsmith-var"
    assert "tools" not in server.requests[0]  # no tools offered: none sent, no tool_choice either
    assert "sekrit" not in json.dumps(OpenAICompatibleBackend("m", server.url, api_key="sekrit").describe())


def test_reasoning_and_think_blocks_are_split_off():
    script = [text_turn("the answer", reasoning="vLLM's reasoning field"),
              {"content": "<think>\ninline reasoning\n</think>\n\nanswer two"}]
    with FakeOpenAIServer(script) as server:
        b = OpenAICompatibleBackend("m", server.url, api_key="k")
        one, two = b.complete(USER, []), b.complete(USER, [])
    assert (one.content, one.reasoning) == ("the answer", "vLLM's reasoning field")
    assert (two.content, two.reasoning) == ("answer two", "inline reasoning")


def test_qwen_tool_call_text_without_a_server_parser():
    text = ('<think>\nrender it\n</think>\n\nLet me render.\n<tool_call>\n{"name": "render_patch", "arguments": '
            '{"patch": {"feedback": 1}}}\n</tool_call>')
    with FakeOpenAIServer([{"content": text}]) as server:
        turn = OpenAICompatibleBackend("m", server.url, api_key="k").complete(USER, [])
    assert turn.reasoning == "render it" and turn.content == "Let me render."
    [call] = turn.tool_calls
    assert call.name == "render_patch" and json.loads(call.arguments) == {"patch": {"feedback": 1}}


def test_assistant_message_round_trip():
    turn = ModelTurn(content="", tool_calls=[{"id": "c1", "name": "render_patch", "arguments": "{}"}])
    assert turn.assistant_message() == {"role": "assistant", "content": "", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "render_patch", "arguments": "{}"}}]}


# --- output parsing --------------------------------------------------------------------------------------


def fenced(data) -> str:
    return "```json\n" + json.dumps(data) + "\n```"


def test_source_research_layout_becomes_a_render_call(tools):
    source = export_source_dict(parse_patch(EPIANO))
    assert source["ol"] != EPIANO["ol"]  # the layouts really differ (OP6 first)
    script = [text_turn(fenced(source), reasoning="A tine piano: algorithm 5.")]
    with FakeOpenAIServer(script) as server:
        base = OpenAICompatibleBackend("llmforfm-qwen3", server.url, api_key="k")
        agent = Agent(OutputParsingBackend(base, patch_layout="source-research",
                                           render_args={"notes": [60], "velocity": 100}), tools)
        reply = agent.run([system_message(), {"role": "user", "content": "glassy electric piano /think"}])
    assert parse_patch(reply.patch).core() == parse_patch(EPIANO).core()
    assert reply.tool_calls == 1 and reply.turns == 2 and reply.text.startswith("Rendered the patch.")
    assert len(server.requests) == 1  # one patch per prompt: the render ends the request
    sent = server.requests[0]
    assert "tools" not in sent and "OP6 first" in sent["messages"][0]["content"]
    assert [m["role"] for m in sent["messages"]] == ["system", "user"]
    model_entry = next(e for e in agent.transcript.entries if e["type"] == "model")
    assert model_entry["reasoning"] == "A tine piano: algorithm 5."


def test_unusable_then_invalid_then_valid_answers(tools):
    bad = copy.deepcopy(EPIANO)
    bad["feedback"] = 9
    script = [text_turn("```json\n{\"feedback\": [1, 2\n```"),                                      # broken JSON
              text_turn(fenced(bad)),                                                          # invalid value
              text_turn("<think>\nfix feedback\n</think>\n\n" + fenced(EPIANO))]
    with FakeOpenAIServer(script) as server:
        base = OpenAICompatibleBackend("m", server.url, api_key="k")
        reply = Agent(OutputParsingBackend(base), tools).run([system_message(), {"role": "user", "content": "ep"}])
    assert parse_patch(reply.patch) == parse_patch(EPIANO) and reply.turns == 4
    second, third = server.requests[1]["messages"], server.requests[2]["messages"]
    assert "could not be used" in second[-1]["content"] and "does not parse" in second[-1]["content"]
    assert second[-1]["role"] == "user" and second[-2]["role"] == "assistant"
    assert "/patch/feedback: found 9, allowed integer 0..7" in third[-1]["content"]


def test_source_research_shape_errors_go_back_to_the_model(tools):
    broken = export_source_dict(parse_patch(EPIANO))
    del broken["eg_rate"]
    script = [text_turn(fenced(broken)), text_turn(fenced(export_source_dict(parse_patch(EPIANO))))]
    with FakeOpenAIServer(script) as server:
        base = OpenAICompatibleBackend("m", server.url, api_key="k")
        reply = Agent(OutputParsingBackend(base, patch_layout="source-research"), tools).run(
            [system_message(), {"role": "user", "content": "ep"}])
    assert "missing key(s): eg_rate" in server.requests[1]["messages"][-1]["content"]
    assert reply.patch is not None


def test_bad_layout_name():
    with pytest.raises(ValueError, match="source-research"):
        OutputParsingBackend(OfflineDesignerBackend(designer=object()), patch_layout="op6-first")


# --- the offline designer --------------------------------------------------------------------------------


class StubDesigner:
    """The designer's interface with fixed answers."""

    def design(self, text):
        return SimpleNamespace(patch=parse_patch(EPIANO), edits=[{"op": "adjust", "quality": "attack", "amount": 1}],
                               match=SimpleNamespace(name="Tine piano", caption="Electric piano, bell-like", score=0.7),
                               changes=[], notes=[])

    def refine(self, patch, text, render=None):
        return [{"op": "adjust", "quality": "decay", "amount": -1}] if "decay" in text else []


def test_offline_backend_emits_the_tool_calls_an_llm_would():
    b = OfflineDesignerBackend(StubDesigner(), note=64, velocity=90)
    messages = [system_message(), {"role": "user", "content": "glassy electric piano"}]
    turn = b.complete(messages, [])
    [call] = turn.tool_calls
    args = json.loads(call.arguments)
    assert call.name == "render_patch" and args["notes"] == [64] and args["velocity"] == 90
    assert parse_patch(args["patch"]) == parse_patch(EPIANO)
    rendered = ToolOutcome(name="render_patch", is_error=False, text="Rendered 1 note")
    messages += [turn.assistant_message(),
                 {"role": "tool", "tool_call_id": call.id, "content": rendered.message_content()}]
    final = b.complete(messages, [])
    assert not final.tool_calls and "Tine piano" in final.content and "attack +1" in final.content


def test_offline_backend_reports_words_it_cannot_act_on():
    from patchsmith.agent.output_parsing import compose_request
    from patchsmith.schema.compact import dumps_compact

    b = OfflineDesignerBackend(StubDesigner())
    turn = b.complete([{"role": "user", "content": compose_request("make it purple", dumps_compact(EPIANO))}], [])
    assert not turn.tool_calls and "make it purple" in turn.content


def test_offline_backend_design_and_refine_through_the_tools(tools):
    conv = Conversation(Agent(OfflineDesignerBackend(StubDesigner()), tools))
    first = conv.request("glassy electric piano")
    assert first.reply.tool_calls == 1 and first.version.number == 1
    second = conv.request("shorter decay")
    names = [e["name"] for e in conv.transcript.entries if e["type"] == "tool"]
    assert names == ["render_patch", "edit_patch", "render_patch"]
    assert second.version.number == 2 and second.version.changes
    assert read_tool_message(conv.messages[-2]["content"])["ok"]
    assert "decay -1" in second.reply.text
