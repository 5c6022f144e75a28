"""Addresses, binding rules and the request guard (Host, Origin, token), without a network."""

from __future__ import annotations

import anyio
import pytest

from patchsmith.server.transport import RequestGuard, TransportError, check_binding, is_loopback, parse_address


def test_parse_address():
    assert parse_address("127.0.0.1:8765") == ("127.0.0.1", 8765)
    assert parse_address("[::1]:0") == ("::1", 0)
    assert parse_address("localhost:80") == ("localhost", 80)
    for bad in ("8765", "127.0.0.1", ":8765", "127.0.0.1:x", "127.0.0.1:70000"):
        with pytest.raises(TransportError):
            parse_address(bad)


def test_loopback_and_binding():
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "::1", "localhost", "LOCALHOST"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.5", "example.com"))
    check_binding("127.0.0.1", None)
    check_binding("0.0.0.0", "token")
    with pytest.raises(TransportError, match="requires a bearer token"):
        check_binding("0.0.0.0", None)


def status(guard: RequestGuard, headers: dict[str, str]) -> int:
    """The status the guard answers a request with (200: passed on to the app)."""
    sent: list[dict] = []

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    guard.app = app
    scope = {"type": "http", "method": "POST", "path": "/mcp", "headers":
             [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    anyio.run(guard, scope, receive, send)
    return sent[0]["status"]


def test_guard_on_loopback():
    g = RequestGuard(None, allowed_hosts=["127.0.0.1"])
    assert status(g, {"Host": "127.0.0.1:8765"}) == 200
    assert status(g, {"Host": "localhost:8765", "Origin": "http://localhost:3000"}) == 200
    assert status(g, {"Host": "[::1]:8765"}) == 200
    assert status(g, {"Host": "evil.example.com"}) == 421
    assert status(g, {"Host": "evil.example.com:8765"}) == 421
    assert status(g, {}) == 421
    assert status(g, {"Host": "127.0.0.1:8765", "Origin": "http://evil.example.com"}) == 403
    assert status(g, {"Host": "127.0.0.1:8765", "Origin": "file://"}) == 403


def test_guard_with_token_names_and_origins():
    g = RequestGuard(None, allowed_hosts=["synth.example"], allowed_origins=["https://app.example"], token="t0k")
    ok = {"Host": "synth.example:8765", "Authorization": "Bearer t0k"}
    assert status(g, ok) == 200
    assert status(g, {**ok, "Origin": "https://app.example"}) == 200
    assert status(g, {**ok, "Origin": "https://other.example"}) == 403
    assert status(g, {**ok, "Host": "other.example"}) == 421
    assert status(g, {"Host": "synth.example"}) == 401
    assert status(g, {"Host": "synth.example", "Authorization": "Bearer t0kk"}) == 401
    assert status(g, {"Host": "synth.example", "Authorization": "Basic t0k"}) == 401


def test_guard_on_a_wildcard_bind_checks_origin_and_token():
    g = RequestGuard(None, allowed_hosts=None, token="t0k")
    assert status(g, {"Host": "10.0.0.7:8765", "Authorization": "Bearer t0k"}) == 200
    assert status(g, {"Host": "10.0.0.7:8765"}) == 401
    assert status(g, {"Host": "10.0.0.7", "Origin": "http://evil.example", "Authorization": "Bearer t0k"}) == 403
