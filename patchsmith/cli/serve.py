"""``patchsmith serve``: the MCP server over stdio (default) or streamable HTTP (``--http HOST:PORT``)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from .common import EXIT_OK, CliError

TOKEN_ENV = "PATCHSMITH_TOKEN"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``serve`` and its options."""
    s = sub.add_parser("serve", help="serve the DX7 tools over MCP (stdio or streamable HTTP)",
                       description="Serve render_patch, render_evidence, validate_patch, describe_patch, edit_patch, "
                                   "import_sysex, export_sysex and search_presets over MCP: on stdin/stdout (for "
                                   "Claude Desktop, IDE agents and other local clients), or with --http as "
                                   "stateless streamable HTTP at http://HOST:PORT/mcp.")
    s.add_argument("--http", metavar="HOST:PORT", help="serve streamable HTTP on this address (127.0.0.1:8765; "
                                                       "port 0 picks a free one) instead of stdio")
    s.add_argument("--token", help=f"require 'Authorization: Bearer TOKEN' (default: ${TOKEN_ENV}); needed to bind "
                                   "anything but loopback")
    s.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="another Host name clients use to reach the server (repeatable); loopback names and the "
                        "bound address are always allowed")
    s.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                   help="a browser Origin to accept, e.g. https://app.example (repeatable)")
    s.add_argument("--cache-mb", type=int, default=128, metavar="MB",
                   help="memory for recent renders and exports (default 128)")
    s.set_defaults(func=run)
    return s


def run(args: argparse.Namespace) -> int:
    """Serve until the client disconnects (stdio) or the process is interrupted (HTTP)."""
    from ..server.app import build_server
    from ..server.state import ServerState
    from ..server.transport import TransportError, check_binding, parse_address, serve_http, serve_stdio

    if not 1 <= args.cache_mb <= 65536:
        raise CliError(f"--cache-mb: found {args.cache_mb}, allowed 1..65536")
    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV) or None
    try:
        address = parse_address(args.http) if args.http else None
        if address is not None:
            check_binding(address[0], token)
        elif args.allow_host or args.allow_origin or args.token:
            raise TransportError("--token, --allow-host and --allow-origin apply to --http only")
    except TransportError as err:
        raise CliError(str(err)) from None
    server = build_server(ServerState(cache_bytes=args.cache_mb * 1024 * 1024))
    try:
        if address is None:
            serve_stdio(server)
        else:
            serve_http(server, *address, token=token, allow_hosts=args.allow_host, allow_origins=args.allow_origin)
    except TransportError as err:
        raise CliError(str(err)) from None
    except KeyboardInterrupt:
        pass
    return EXIT_OK
