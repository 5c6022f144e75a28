"""The server as a subprocess over stdio: ``python -m patchsmith serve``, as Claude Desktop starts it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import anyio
from mcp import Client, StdioServerParameters

from patchsmith.cli import main

from .server_support import REPO, exercise_tools


def test_every_tool_over_stdio(tmp_path):
    params = StdioServerParameters(command=sys.executable, args=["-m", "patchsmith", "serve"], cwd=str(tmp_path),
                                   env=dict(os.environ))

    async def run():
        async with Client(params, read_timeout_seconds=120) as client:
            await exercise_tools(client)

    anyio.run(run)
    assert os.listdir(tmp_path) == []  # the server wrote nothing where it ran


def test_garbage_on_stdin_does_not_stop_the_server():
    lines = [
        "this is not json",
        '{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", '
        '"capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}}',
        '{"jsonrpc": "2.0", "method": "notifications/initialized"}',
        '{"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "validate_patch", '
        '"arguments": {"patch": ' + "[" * 3000 + "]" * 3000 + "}}}",
        '{"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "render_patch", "arguments": [1]}}',
        '{"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "validate_patch", '
        '"arguments": {"patch": {"feedback": 1e400}}}}',
        '{"jsonrpc": "2.0", "id": 5, "method": "ping"}',
    ]
    proc = subprocess.Popen([sys.executable, "-m", "patchsmith", "serve"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    answers: dict = {}
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write("\n".join(lines) + "\n")
        proc.stdin.flush()
        deadline = time.monotonic() + 120
        while 5 not in answers and time.monotonic() < deadline:  # bounded: at most one line per answer
            line = proc.stdout.readline()
            if not line:
                break
            msg = json.loads(line)
            answers[msg.get("id")] = msg
        proc.stdin.close()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    stderr = proc.stderr.read() if proc.stderr else ""
    assert answers[1]["result"]["serverInfo"]["name"] == "patchsmith"
    assert "error" in answers[3]  # arguments that are not an object: a JSON-RPC invalid-params error
    assert answers[4]["result"]["isError"] is False
    assert "Infinity" in answers[4]["result"]["content"][0]["text"]
    assert answers[5]["result"] == {}  # still answering after all of it
    assert "Traceback" not in stderr


def test_token_and_hosts_are_for_http_only(capsys):
    assert main(["serve", "--token", "abc"]) == 2
    assert "--http only" in capsys.readouterr().err
