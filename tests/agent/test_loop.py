"""The tool-calling loop against scripted model turns: real HTTP, the real ``openai`` client, real MCP tools.

The fake server (``fake_openai_server``) replays the turns and records every request, so each test can
check what reached the model: the tool list, the tool results, a validation error, a parse error.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import pytest

from patchsmith.agent.backends import OpenAICompatibleBackend
from patchsmith.agent.conversation import Conversation
from patchsmith.agent.loop import Agent, AgentError, AgentLimitError, LoopLimits, system_message
from patchsmith.agent.mcp_client import ToolClient, read_tool_message
from patchsmith.schema.validate import parse_patch

from tests.agent.fake_openai_server import FakeOpenAIServer, text_turn, tool_turn

REPO = Path(__file__).resolve().parents[2]
EPIANO = json.loads((REPO / "examples" / "epiano.json").read_text())["patch"]
TOOL_NAMES = {"render_patch", "render_evidence", "validate_patch", "describe_patch", "edit_patch", "import_sysex",
              "export_sysex", "search_presets"}


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("renders")


@pytest.fixture(scope="module")
def tools(audio_dir):
    """One in-process MCP connection for the module (the server warms its kernels once)."""
    with ToolClient(audio_dir=audio_dir) as client:
        yield client


def backend(server, **kw):
    return OpenAICompatibleBackend("fake-qwen3", server.url, api_key="test-key", **kw)


def start(text="glassy electric piano"):
    return [system_message(), {"role": "user", "content": text}]


def last_tool_message(request):
    return read_tool_message([m for m in request["messages"] if m["role"] == "tool"][-1]["content"])


def test_valid_tool_call_then_final_answer(tools, audio_dir):
    script = [tool_turn(("render_patch", {"patch": EPIANO, "notes": [60]})),
              text_turn("A glassy electric piano with a bell-like attack.", reasoning="It rendered fine.")]
    with FakeOpenAIServer(script) as server:
        agent = Agent(backend(server), tools)
        reply = agent.run(start())
    assert reply.text.startswith("A glassy electric piano")
    assert reply.turns == 2 and reply.tool_calls == 1
    assert parse_patch(reply.patch) == parse_patch(EPIANO)
    # What the model was offered and what it got back.
    first, second = server.requests
    offered = {t["function"]["name"] for t in first["tools"]}
    assert offered == TOOL_NAMES and all(t["type"] == "function" for t in first["tools"])
    assert first["tool_choice"] == "auto" and server.headers[0]["authorization"] == "Bearer test-key"
    [tool_msg] = [m for m in second["messages"] if m["role"] == "tool"]
    assert tool_msg["tool_call_id"] == second["messages"][-2]["tool_calls"][0]["id"]
    result = read_tool_message(tool_msg["content"])
    assert result["ok"] and "Rendered 1 note" in result["summary"]
    assert result["result"]["notes"][0]["descriptors"]["peak_dbfs"] is not None
    # Audio stays out of the model's messages: it is a file in the session folder.
    assert "UklGR" not in json.dumps(second["messages"])  # base64 of "RIFF"
    assert reply.last_render.audio and Path(reply.last_render.audio[0].path).parent == audio_dir
    assert Path(reply.last_render.audio[0].path).read_bytes()[:4] == b"RIFF"
    types = [e["type"] for e in agent.transcript.entries]
    assert types == ["model", "tool", "model", "final"]
    assert agent.transcript.entries[2]["reasoning"] == "It rendered fine."
    json.loads(agent.transcript.to_json())  # serialisable as is


def test_invalid_patch_then_corrected_after_the_error_comes_back(tools):
    bad = copy.deepcopy(EPIANO)
    bad["ol"][0] = 120
    bad["eg_rate"][3][5] = -1
    script = [tool_turn(("render_patch", {"patch": bad})), tool_turn(("render_patch", {"patch": EPIANO})),
              text_turn("Fixed the output level and the rate.")]
    with FakeOpenAIServer(script) as server:
        agent = Agent(backend(server), tools)
        reply = agent.run(start())
    assert reply.turns == 3 and reply.tool_calls == 2
    assert parse_patch(reply.patch) == parse_patch(EPIANO)  # the failed call never became the patch
    error = last_tool_message(server.requests[1])
    assert error["ok"] is False
    assert "/patch/ol/0: found 120, allowed integer 0..99" in error["error"]
    assert "/patch/eg_rate/3/5: found -1" in error["error"]
    assert last_tool_message(server.requests[2])["ok"] is True
    tool_entries = [e for e in agent.transcript.entries if e["type"] == "tool"]
    assert [e["is_error"] for e in tool_entries] == [True, False]


def _render_the_edited_patch(body):
    """A model turn that renders the patch edit_patch just returned (read from the tool message)."""
    edited = last_tool_message(body)["result"]["patch"]
    return tool_turn(("render_patch", {"patch": edited, "notes": [60]}))


def test_refinement_turn_uses_edit_patch(tools):
    script = [tool_turn(("render_patch", {"patch": EPIANO})), text_turn("An electric piano."),
              tool_turn(("edit_patch", {"patch": EPIANO, "edits": [{"op": "adjust", "quality": "decay",
                                                                     "amount": -1}]})),
              _render_the_edited_patch, text_turn("Shortened the decay.")]
    with FakeOpenAIServer(script) as server:
        conv = Conversation(Agent(backend(server), tools))
        conv.request("electric piano")
        exchange = conv.request("shorter decay")
    refine_request = server.requests[2]["messages"][-1]
    assert refine_request["role"] == "user" and refine_request["content"].startswith("shorter decay")
    assert "The current patch:" in refine_request["content"]
    version = exchange.version
    assert version.number == 2 and version.changes
    assert all(c["path"].startswith("/eg_rate/") for c in version.changes)
    assert exchange.reply.text == "Shortened the decay." and exchange.reply.tool_calls == 2
    assert conv.undo().number == 1 and conv.current == parse_patch(EPIANO)


def test_malformed_tool_calls_are_answered_not_fatal(tools):
    script = [tool_turn(("render_patch", '{"patch": {"feedback": 3,,}')),            # not JSON
              tool_turn(("render_patch", "[1, 2]")),                                  # not an object
              tool_turn(("play_music", {"patch": EPIANO})),                           # no such tool
              {"content": '<tool_call>\n{"name": "render_patch", "arguments": ' + json.dumps({"patch": EPIANO})
                          + "}\n</tool_call>"},                                       # Qwen text, no parser
              text_turn("Done.")]
    with FakeOpenAIServer(script) as server:
        agent = Agent(backend(server), tools)
        reply = agent.run(start())
    errors = [last_tool_message(server.requests[i])["error"] for i in (1, 2, 3)]
    assert "not valid JSON" in errors[0] and "line 1" in errors[0]
    assert "must be a JSON object" in errors[1]
    assert "play_music" in errors[2]
    assert last_tool_message(server.requests[4])["ok"] is True
    assert reply.text == "Done." and parse_patch(reply.patch) == parse_patch(EPIANO)


def test_model_timeout_is_a_clear_error_and_does_not_hang(tools):
    with FakeOpenAIServer([{"sleep": 10, "content": "too late"}]) as server:
        agent = Agent(backend(server, timeout_s=0.5), tools)
        began = time.monotonic()
        with pytest.raises(AgentError) as err:
            agent.run(start())
        took = time.monotonic() - began
    assert not isinstance(err.value, AgentLimitError)
    assert "did not answer within 0.5 s" in str(err.value)
    assert took < 5
    assert agent.transcript.entries[-1]["type"] == "error"


def test_wall_time_limit_cuts_a_slow_model_short(tools):
    with FakeOpenAIServer([{"sleep": 10, "content": "too late"}]) as server:
        agent = Agent(backend(server, timeout_s=30), tools, limits=LoopLimits(max_seconds=0.5))
        began = time.monotonic()
        with pytest.raises(AgentLimitError) as err:
            agent.run(start())
    assert err.value.limit == "seconds" and "--max-seconds" in str(err.value)
    assert time.monotonic() - began < 5


def test_turn_and_tool_call_limits(tools):
    validate = ("validate_patch", {"patch": EPIANO})
    with FakeOpenAIServer([tool_turn(validate)] * 5) as server:
        agent = Agent(backend(server), tools, limits=LoopLimits(max_turns=3))
        with pytest.raises(AgentLimitError) as err:
            agent.run(start())
    assert err.value.limit == "turns" and "3 turns" in str(err.value) and len(server.requests) == 3
    with FakeOpenAIServer([tool_turn(validate, validate, validate)]) as server:
        agent = Agent(backend(server), tools, limits=LoopLimits(max_tool_calls=2))
        with pytest.raises(AgentLimitError) as err:
            agent.run(start())
    assert err.value.limit == "tool_calls" and "--max-tool-calls" in str(err.value)


def test_server_error_and_strict_tools(tools):
    with FakeOpenAIServer([{"status": 503, "error": "model is loading"}]) as server:
        with pytest.raises(AgentError, match="HTTP 503: model is loading"):
            Agent(backend(server), tools).run(start())
    with FakeOpenAIServer([text_turn("hello")]) as server:
        reply = Agent(backend(server, strict_tools=True), tools).run(start())
    assert reply.text == "hello" and reply.patch is None
    offered = server.requests[0]["tools"]
    assert all(t["function"]["strict"] is True for t in offered)
    params = offered[0]["function"]["parameters"]
    assert params["additionalProperties"] is False and set(params["required"]) == set(params["properties"])


def test_unreachable_model(tools):
    with FakeOpenAIServer([]) as server:
        url = server.url
    with pytest.raises(AgentError, match="cannot reach"):
        Agent(OpenAICompatibleBackend("m", url, api_key="k", timeout_s=2), tools).run(start())


def test_stdio_transport_from_the_agent_side(audio_dir):
    """The same loop over a ``patchsmith serve`` subprocess."""
    script = [tool_turn(("render_patch", {"patch": EPIANO, "notes": [60, 72], "hold_s": 0.5, "release_s": 0.2})),
              text_turn("ok")]
    with ToolClient("stdio", audio_dir=audio_dir / "stdio") as tools, FakeOpenAIServer(script) as server:
        assert set(tools.tool_names()) == TOOL_NAMES
        reply = Agent(backend(server), tools).run(start())
    assert reply.tool_calls == 1 and len(reply.last_render.structured["notes"]) == 2
    assert Path(reply.last_render.audio[0].path).read_bytes()[:4] == b"RIFF"


def test_streamable_http_transport_from_the_agent_side(tmp_path):
    """The loop against ``patchsmith serve --http`` on loopback (a real HTTP MCP server)."""
    import re
    import subprocess
    import sys
    import threading

    server_proc = subprocess.Popen([sys.executable, "-m", "patchsmith", "serve", "--http", "127.0.0.1:0"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    found: list[str] = []
    ready = threading.Event()

    def watch():
        for line in server_proc.stderr:
            m = re.search(r"http://127\.0\.0\.1:\d+/mcp", line)
            if m and not found:
                found.append(m.group(0))
                ready.set()

    threading.Thread(target=watch, daemon=True).start()
    try:
        assert ready.wait(60), "the HTTP server did not announce its address"
        script = [tool_turn(("render_patch", {"patch": EPIANO})), text_turn("ok")]
        with ToolClient(found[0], audio_dir=tmp_path / "renders") as tools, FakeOpenAIServer(script) as server:
            assert tools.label == found[0] and set(tools.tool_names()) == TOOL_NAMES
            reply = Agent(backend(server), tools).run(start())
        assert reply.tool_calls == 1 and reply.last_render.audio[0].bytes > 1000
    finally:
        server_proc.terminate()
        try:
            server_proc.wait(10)
        except subprocess.TimeoutExpired:
            server_proc.kill()
            server_proc.wait(10)
