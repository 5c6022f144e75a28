"""Serving the MCP server: stdio, or stateless streamable HTTP guarded by Host/Origin checks and a token.

Over HTTP every request first passes ``RequestGuard``:

- the ``Host`` header must name this server (a loopback name, the bound address, or an ``allow_hosts``
  entry), else 421: a web page whose DNS name was rebound to 127.0.0.1 cannot reach the server;
- an ``Origin`` header, when a browser sends one, must be a loopback or allowed origin, else 403;
- with a token, ``Authorization: Bearer <token>`` must match it, else 401.

Binding to anything but loopback requires a token (``check_binding``). The HTTP transport is stateless
(no session to keep), so several processes can sit behind one load balancer; the request body is
limited to ``MAX_HTTP_BODY_BYTES`` (413 beyond it).
"""

from __future__ import annotations

import hmac
import ipaddress
import socket
import sys
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import anyio
from mcp.server import Server
from mcp.server.transport_security import TransportSecuritySettings
from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from .limits import MAX_HTTP_BODY_BYTES

MCP_PATH = "/mcp"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARDS = frozenset({"0.0.0.0", "::", ""})


class TransportError(ValueError):
    """A server address or option that cannot be used; the message says what is allowed."""


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8765`` for IPv6; port 0 picks a free one) as (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise TransportError(f"--http: found {text!r}, allowed HOST:PORT such as 127.0.0.1:8765 or [::1]:8765")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not host:
        raise TransportError(f"--http: found {text!r}: name the address to bind, e.g. 127.0.0.1:{port}")
    return host, int(port)


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_binding(host: str, token: str | None) -> None:
    """Refuse to serve a non-loopback address without a token."""
    if not is_loopback(host) and not token:
        raise TransportError(f"--http {host}: binding to an address other than loopback (127.0.0.1, ::1, localhost) "
                             "requires a bearer token: pass --token TOKEN or set PATCHSMITH_TOKEN")


def _hostname(value: str) -> str:
    """The host part of a Host header (``[::1]:8765`` -> ``::1``), lower case."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class RequestGuard:
    """ASGI middleware: Host and Origin checks against DNS rebinding, then the bearer token."""

    def __init__(self, app: ASGIApp, *, allowed_hosts: Iterable[str] | None, allowed_origins: Iterable[str] = (),
                 token: str | None = None):
        self.app = app
        # None: any Host (a wildcard bind with no names given; the token protects the server then).
        self.allowed_hosts = None if allowed_hosts is None else {h.lower() for h in allowed_hosts} | LOOPBACK_NAMES
        self.allowed_origins = {o.rstrip("/").lower() for o in allowed_origins}
        self.token = token.encode() if token else None

    def _origin_ok(self, origin: str) -> bool:
        origin = origin.rstrip("/").lower()
        if origin in self.allowed_origins:
            return True
        try:
            parts = urlsplit(origin)
            name = parts.hostname
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or not name:
            return False
        return name in (self.allowed_hosts if self.allowed_hosts is not None else LOOPBACK_NAMES)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        response = None
        if self.allowed_hosts is not None and _hostname(headers.get("host", "")) not in self.allowed_hosts:
            response = PlainTextResponse("Invalid Host header: this server answers only to its own names", 421)
        elif (origin := headers.get("origin")) is not None and not self._origin_ok(origin):
            response = PlainTextResponse("Invalid Origin header: cross-site requests are not allowed", 403)
        elif self.token is not None and not self._authorized(headers.get("authorization", "")):
            response = PlainTextResponse("Unauthorized: send Authorization: Bearer <token>", 401,
                                         headers={"WWW-Authenticate": 'Bearer realm="patchsmith"'})
        if response is not None:
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _authorized(self, header: str) -> bool:
        scheme, _, credential = header.partition(" ")
        # compare_digest: the time taken does not reveal how much of the token was right.
        return scheme.lower() == "bearer" and hmac.compare_digest(credential.strip().encode(), self.token or b"")


def http_app(server: Server[Any], host: str, *, token: str | None = None, allow_hosts: Iterable[str] = (),
             allow_origins: Iterable[str] = ()) -> ASGIApp:
    """The guarded ASGI app serving ``server`` at ``/mcp`` (stateless streamable HTTP)."""
    names = list(allow_hosts)
    if host not in WILDCARDS:
        names.append(host)
    allowed = names if (host not in WILDCARDS or allow_hosts) else None
    # The guard does the Host/Origin checks, so the SDK's own (loopback-only) copy of them is off.
    no_sdk_checks = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    app = server.streamable_http_app(streamable_http_path=MCP_PATH, stateless_http=True, host=host,
                                     max_request_body_size=MAX_HTTP_BODY_BYTES, transport_security=no_sdk_checks)
    return RequestGuard(app, allowed_hosts=allowed, allowed_origins=allow_origins, token=token)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port); port 0 picks a free port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise TransportError(f"--http {host}:{port}: cannot listen there ({err.strerror or err})") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    """The MCP endpoint URL of a listening socket."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}{MCP_PATH}"


def serve_http(server: Server[Any], host: str, port: int, *, token: str | None = None,
               allow_hosts: Iterable[str] = (), allow_origins: Iterable[str] = (),
               announce: Callable[[str], None] | None = None) -> None:
    """Serve over streamable HTTP until interrupted (SIGINT/SIGTERM)."""
    import uvicorn

    check_binding(host, token)
    app = http_app(server, host, token=token, allow_hosts=allow_hosts, allow_origins=allow_origins)
    sock = bind(host, port)
    (announce or _stderr)(f"patchsmith MCP server at {url_of(sock)} (streamable HTTP, stateless; "
                          f"{'bearer token required' if token else 'no token'})")
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=3, lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])


def serve_stdio(server: Server[Any]) -> None:
    """Serve one client over stdin/stdout until it closes them."""
    from mcp.server.stdio import stdio_server

    async def main() -> None:
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())

    anyio.run(main)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
