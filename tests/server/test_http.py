"""The server as a subprocess over streamable HTTP on loopback: tools, concurrency, guards, bad requests."""

from __future__ import annotations

import json

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client

from patchsmith.cli import main

from .server_support import EXAMPLES, audio_hash, exercise_tools, http_server

HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
           "MCP-Protocol-Version": "2025-11-25"}
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("http-cwd")
    with http_server(cwd=cwd) as s:
        s.cwd = cwd
        yield s


def post(url: str, body, headers=HEADERS) -> httpx2.Response:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return httpx2.post(url, content=data, headers=headers, timeout=60)


def sse_result(response: httpx2.Response) -> dict:
    """The JSON-RPC message of a one-event SSE (or plain JSON) response."""
    text = response.text
    if text.lstrip().startswith("{"):
        return json.loads(text)
    data = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]
    return json.loads(data[-1])


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_every_tool_over_http(server, mode):
    async def run():
        async with Client(server.url, mode=mode, read_timeout_seconds=120) as client:
            await exercise_tools(client)
    anyio.run(run)
    assert list(server.cwd.iterdir()) == []


def test_concurrent_clients_get_their_own_results(server):
    patches = [e.patch.to_dict() for e in EXAMPLES.values()]

    async def client_run(i: int, out: dict) -> None:
        async with Client(server.url, read_timeout_seconds=120) as client:
            hashes = set()
            for _ in range(2):
                r = await client.call_tool("render_patch", {"patch": patches[i], "hold_s": 0.4, "release_s": 0.1,
                                                            "velocity": 50 + i, "sample_rate": 16000})
                hashes.add(audio_hash(r))
            out[i] = hashes

    async def run():
        out: dict[int, set] = {}
        async with anyio.create_task_group() as tg:
            for i in range(len(patches)):
                tg.start_soon(client_run, i, out)
        return out

    out = anyio.run(run)
    assert all(len(h) == 1 for h in out.values())  # each client's two answers are identical
    assert len({next(iter(h)) for h in out.values()}) == len(patches)  # and nobody got another's audio


def test_dns_rebinding_and_origin_checks(server):
    assert post(server.url, INIT, {**HEADERS, "Host": "evil.example.com"}).status_code == 421
    assert post(server.url, INIT, {**HEADERS, "Origin": "http://evil.example.com"}).status_code == 403
    assert post(server.url, INIT, {**HEADERS, "Origin": "null"}).status_code == 403
    assert post(server.url, INIT, {**HEADERS, "Origin": "http://localhost:3000"}).status_code == 200
    assert post(server.url, INIT).status_code == 200


def test_bad_requests_get_clear_errors_and_the_server_goes_on(server):
    def tool(arguments_text: str) -> httpx2.Response:
        return post(server.url, '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"render_patch",'
                                '"arguments":' + arguments_text + '}}')

    assert post(server.url, b"\xff\xfe{{{").status_code == 400
    assert post(server.url, b"{" + b" " * (5 * 1024 * 1024) + b"}").status_code == 413
    deep = tool('{"patch":' + "[" * 100_000 + "]" * 100_000 + "}")
    assert deep.status_code == 400 and "Parse error" in deep.text
    big = tool('{"patch": {}, "velocity": 1' + "0" * 5000 + "}")
    assert big.status_code == 400
    inf = sse_result(tool('{"patch": {}, "hold_s": 1e400}'))["result"]
    assert inf["isError"] and any(p["pointer"] == "/hold_s" for p in inf["structuredContent"]["problems"])
    not_object = sse_result(tool("[1, 2]"))
    assert not_object["error"]["code"] == -32602
    unknown = sse_result(post(server.url, '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"nope"}}'))
    assert unknown["result"]["isError"] and "Unknown tool" in unknown["result"]["content"][0]["text"]
    assert sse_result(post(server.url, {"jsonrpc": "2.0", "id": 9, "method": "ping"}))["result"] == {}
    assert server.process.poll() is None


def test_bearer_token():
    with http_server("--token", "s3cret-token") as s:
        assert post(s.url, INIT).status_code == 401
        assert post(s.url, INIT).headers["www-authenticate"].startswith("Bearer")
        assert post(s.url, INIT, {**HEADERS, "Authorization": "Bearer wrong"}).status_code == 401
        assert post(s.url, INIT, {**HEADERS, "Authorization": "Bearer s3cret-token"}).status_code == 200

        async def run():
            http = create_mcp_http_client(headers={"Authorization": "Bearer s3cret-token"})
            async with Client(streamable_http_client(s.url, http_client=http)) as client:
                return [t.name for t in (await client.list_tools()).tools]

        assert "render_patch" in anyio.run(run)


def test_token_from_the_environment():
    with http_server(env={"PATCHSMITH_TOKEN": "from-env"}) as s:
        assert post(s.url, INIT).status_code == 401
        assert post(s.url, INIT, {**HEADERS, "Authorization": "Bearer from-env"}).status_code == 200


def test_non_loopback_needs_a_token(capsys, monkeypatch):
    monkeypatch.delenv("PATCHSMITH_TOKEN", raising=False)
    assert main(["serve", "--http", "0.0.0.0:8765"]) == 2
    assert "requires a bearer token" in capsys.readouterr().err
    assert main(["serve", "--http", "nonsense"]) == 2
    assert "HOST:PORT" in capsys.readouterr().err


def test_long_answers_need_the_larger_sse_event_limit(server):
    # A default evidence clip (28 s at 48 kHz) is a 3.6 MB answer: the SDK client refuses SSE events over
    # 1 MiB on handshake-era connections unless told otherwise; the connection survives either way.
    from mcp.shared.exceptions import MCPError

    from .server_support import EPIANO

    async def run(limit_lifted: bool):
        target = streamable_http_client(server.url, max_sse_event_size=None) if limit_lifted else server.url
        async with Client(target, mode="legacy", read_timeout_seconds=120) as client:
            try:
                r = await client.call_tool("render_evidence", {"patch": EPIANO})
                outcome = r.structured_content["duration_s"]
            except MCPError as err:
                outcome = str(err)
            after = await client.call_tool("validate_patch", {"patch": EPIANO})
            return outcome, after.is_error

    assert anyio.run(run, True) == (28.0, False)
    refused, after = anyio.run(run, False)
    assert "exceeded the 1048576 byte limit" in refused and after is False
