"""A real OpenAI-compatible HTTP server on 127.0.0.1 whose answers a test scripts per request (tests only).

The dataset stages ask many questions at once from a thread pool, so answers cannot come from a list
in order: a ``responder(body, attempt)`` function decides each answer from the request itself (the
caption in a CoT prompt, the length of the audio in a caption request) and from how many times that
same request has been seen (``attempt`` counts from 1), so a test can answer "500, 500, then a
caption" to exercise retries. The responder returns a dict::

    {"content": "text", "reasoning": None, "finish_reason": "stop",   # a normal answer
     "status": 500, "error": "message", "headers": {"Retry-After": "0"},  # an HTTP error instead
     "sleep": 2.0,                                                    # answer late (client timeouts)
     "raw": "not json"}                                               # a 200 whose body is not a completion

Every request body is recorded (``requests``), so a test can check what the model was sent, and that a
rerun from the cache sent nothing. A sleeping answer wakes up when the server stops; the server stops
itself after ``lifetime_s`` in case a test forgets.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

from ...agent.fake_openai_server import FakeOpenAIServer

MAX_BODY = 32 * 1024 * 1024
Responder = Callable[[dict[str, Any], int], dict[str, Any]]


def body_digest(body: dict[str, Any]) -> str:
    """A stable digest of a request body (its messages and model), to count repeats of one request."""
    text = json.dumps({"model": body.get("model"), "messages": body.get("messages")}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


class ScriptedEndpoint(FakeOpenAIServer):
    """``with ScriptedEndpoint(responder) as ep: OpenAI(base_url=ep.url, api_key="x")``.

    The agent tests' server (start, stop, ``url``, ``requests``) answering from a responder instead of a script.
    """

    def __init__(self, responder: Responder, *, lifetime_s: float = 120.0):
        super().__init__([], lifetime_s=lifetime_s)
        self.responder = responder
        self._seen: dict[str, int] = {}

    def _handle(self, h: Any) -> None:
        if h.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            _send(h, 404, json.dumps({"error": {"message": f"no route {h.path}"}}).encode())
            return
        length = int(h.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            h.rfile.read(length)
            _send(h, 413, json.dumps({"error": {"message": "request too large"}}).encode())
            return
        try:
            body = json.loads(h.rfile.read(length) or b"{}")
        except json.JSONDecodeError:
            _send(h, 400, json.dumps({"error": {"message": "invalid JSON body"}}).encode())
            return
        digest = body_digest(body)
        with self._lock:
            self.requests.append(body)
            self._seen[digest] = attempt = self._seen.get(digest, 0) + 1
            number = len(self.requests)
        try:
            turn = self.responder(body, attempt)
        except Exception as exc:  # a broken responder is a test bug: say so over HTTP, do not hang
            _send(h, 500, json.dumps({"error": {"message": f"responder failed: {exc!r}"}}).encode())
            return
        if turn.get("sleep") and self._stop.wait(float(turn["sleep"])):
            return
        if turn.get("raw") is not None:
            _send(h, 200, str(turn["raw"]).encode())
            return
        if turn.get("status"):
            error = {"error": {"message": turn.get("error", "scripted error"), "type": "scripted", "code": None}}
            _send(h, int(turn["status"]), json.dumps(error).encode(), turn.get("headers"))
            return
        message: dict[str, Any] = {"role": "assistant", "content": turn.get("content")}
        if turn.get("reasoning") is not None:
            message["reasoning"] = turn["reasoning"]
        completion = {"id": f"chatcmpl-scripted-{number}", "object": "chat.completion", "created": int(time.time()),
                      "model": body.get("model", "scripted"),
                      "choices": [{"index": 0, "message": message, "finish_reason": turn.get("finish_reason", "stop"),
                                   "logprobs": None}],
                      "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
        _send(h, 200, json.dumps(completion).encode())


def user_text(body: dict[str, Any]) -> str:
    """All text of the request's user messages (string content or text parts)."""
    out = []
    for m in body.get("messages", []):
        if m.get("role") != "user":
            continue
        content = m.get("content")
        if isinstance(content, str):
            out.append(content)
        elif isinstance(content, list):
            out += [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
    return "\n".join(out)


def input_audio(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``input_audio`` objects of the request's user messages."""
    out = []
    for m in body.get("messages", []):
        content = m.get("content")
        if isinstance(content, list):
            out += [p["input_audio"] for p in content if isinstance(p, dict) and p.get("type") == "input_audio"]
    return out


def _send(h: Any, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
    """Answer on handler ``h`` with a JSON body and extra headers; a client that gave up (its timeout) is fine."""
    try:
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)
    except (BrokenPipeError, ConnectionResetError):
        pass
