"""A small OpenAI-compatible HTTP server on loopback that replays scripted model turns (tests only).

``POST /v1/chat/completions`` (non-streaming) answers with the next scripted turn and records every
request body, so a test can check what the model was sent (the tool list, the validation error of the
previous call). A turn is a dict::

    {"content": "text", "reasoning": "...", "tool_calls": [("render_patch", {"patch": ...}), ...],
     "finish_reason": "stop", "sleep": 2.0, "status": 500, "error": "message"}

A turn may also be a function of the request body that returns such a dict (to answer with what the
previous tool result said). ``tool_calls`` items are ``(name, arguments)`` pairs or dicts with
``name``/``arguments``/``id``; a string ``arguments`` is sent as is (so a test can send malformed
JSON). ``sleep`` delays the answer (to test client timeouts); ``status`` answers with an error
instead. The server runs in a daemon thread on a free port, answers 500 once the script is used up,
and stops itself after ``lifetime_s`` in case a test forgets to stop it; a sleeping answer wakes up
when the server stops, so nothing hangs.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BODY = 8 * 1024 * 1024


def tool_turn(*calls: tuple[str, Any], content: str | None = None) -> dict[str, Any]:
    """A scripted turn that calls tools."""
    return {"content": content, "tool_calls": list(calls)}


def text_turn(content: str, reasoning: str | None = None) -> dict[str, Any]:
    """A scripted final answer."""
    return {"content": content, "reasoning": reasoning}


class FakeOpenAIServer:
    """``with FakeOpenAIServer([turn, ...]) as server: OpenAI(base_url=server.url, ...)``."""

    def __init__(self, script: list[dict[str, Any]], *, lifetime_s: float = 120.0):
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.lifetime_s = lifetime_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._calls = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None

    @property
    def url(self) -> str:
        """The base URL for the ``openai`` client (``http://127.0.0.1:PORT/v1``)."""
        assert self._httpd is not None, "start the server first"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def messages(self, i: int) -> list[dict[str, Any]]:
        """The messages of the i-th request."""
        return self.requests[i]["messages"]

    def __enter__(self) -> FakeOpenAIServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                server._handle(self)

            def do_GET(self) -> None:
                self.reply(404, {"error": {"message": "not found"}})

            def reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name="fake-openai")
        self._thread.start()
        self._timer = threading.Timer(self.lifetime_s, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop serving (idempotent); wakes any sleeping answer."""
        self._stop.set()
        if self._timer is not None:
            self._timer.cancel()
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
            self._httpd = httpd  # keep the address readable for messages after stop

    def _handle(self, h: Any) -> None:
        if h.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            h.reply(404, {"error": {"message": f"no route {h.path}"}})
            return
        length = int(h.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            h.reply(413, {"error": {"message": "request too large"}})
            return
        try:
            body = json.loads(h.rfile.read(length) or b"{}")
        except json.JSONDecodeError:
            h.reply(400, {"error": {"message": "invalid JSON body"}})
            return
        with self._lock:
            self.requests.append(body)
            self.headers.append({k.lower(): v for k, v in h.headers.items()})
            turn = self.script.pop(0) if self.script else None
            self._calls += 1
            number = self._calls
        if callable(turn):
            turn = turn(body)
        if turn is None:
            h.reply(500, {"error": {"message": "fake server: no scripted turn left"}})
            return
        if turn.get("sleep"):
            if self._stop.wait(float(turn["sleep"])):
                return
        if turn.get("status"):
            h.reply(int(turn["status"]), {"error": {"message": turn.get("error", "scripted error"),
                                                    "type": "fake", "code": None}})
            return
        try:
            h.reply(200, _completion(turn, body.get("model", "fake"), number))
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (its timeout): fine
            pass


def _completion(turn: dict[str, Any], model: str, number: int) -> dict[str, Any]:
    calls = []
    for i, call in enumerate(turn.get("tool_calls") or []):
        if isinstance(call, dict):
            name, args, cid = call["name"], call.get("arguments", {}), call.get("id")
        else:
            (name, args), cid = call, None
        calls.append({"id": cid or f"call_{number}_{i}", "type": "function",
                      "function": {"name": name, "arguments": args if isinstance(args, str) else json.dumps(args)}})
    message: dict[str, Any] = {"role": "assistant", "content": turn.get("content")}
    if calls:
        message["tool_calls"] = calls
    if turn.get("reasoning") is not None:
        message["reasoning"] = turn["reasoning"]
    finish = turn.get("finish_reason") or ("tool_calls" if calls else "stop")
    return {"id": f"chatcmpl-fake-{number}", "object": "chat.completion", "created": int(time.time()),
            "model": model, "choices": [{"index": 0, "message": message, "finish_reason": finish,
                                         "logprobs": None}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
